//! The teacher's commands (`$ctl`, sent by `toycoin-ctl`): who may give
//! them, and carrying them out on the hub's [`crate::nemesis::Nemesis`].
//! The frames are in [`toycoin_common::control`] and `docs/control.md`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use toycoin_common::control::{encode_order, proof, Command, Order, Reply, FAULTS};

use crate::hub::Hub;
use crate::nemesis::{MAX_DELAY, MAX_HELD};

/// Who may command the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Teacher {
    /// The token a command must carry.
    pub token: String,
    /// Accept commands from other machines too (by default only from the
    /// relay's own machine).
    pub anywhere: bool,
}

impl Teacher {
    /// A teacher with a fresh random token (128 bits).
    pub fn new() -> Teacher {
        Teacher {
            token: uuid::Uuid::new_v4().simple().to_string(),
            anywhere: false,
        }
    }

    /// Whether `peer` may give a command carrying `token`; if not, why.
    pub fn allows(&self, peer: SocketAddr, token: &str) -> Result<(), String> {
        if !self.anywhere && !peer.ip().is_loopback() {
            return Err(format!(
                "commands are taken only from this machine (the relay runs without --control-from-anywhere), not from {}",
                peer.ip()
            ));
        }
        // Compared in full whatever the first difference: how long the
        // comparison takes tells nothing about the token.
        let (a, b) = (self.token.as_bytes(), token.as_bytes());
        let same =
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
        if same {
            Ok(())
        } else {
            Err("wrong token".into())
        }
    }
}

impl Default for Teacher {
    fn default() -> Teacher {
        Teacher::new()
    }
}

pub fn ok(message: impl Into<String>) -> Reply {
    Reply {
        ok: true,
        message: message.into(),
        status: None,
    }
}

pub fn refused(message: impl Into<String>) -> Reply {
    Reply {
        ok: false,
        message: message.into(),
        status: None,
    }
}

/// The reply as the data frame sent back.
pub fn encode_reply(reply: &Reply) -> Bytes {
    Bytes::from(serde_json::to_vec(reply).unwrap_or_default())
}

/// Carries out a command allowed by `teacher`.
pub fn execute(hub: &Hub, teacher: &Teacher, command: Command) -> Reply {
    let nemesis = &hub.nemesis;
    match command {
        Command::Status => {
            let status = nemesis.status();
            let mut reply = ok(format!(
                "{} clients; {}; {}",
                status.clients.len(),
                if status.groups.is_empty() {
                    "no partition".to_string()
                } else {
                    format!("partitioned into {} groups", status.groups.len())
                },
                if status.holding {
                    format!("holding {} messages", status.held)
                } else {
                    "delivering".to_string()
                }
            ));
            reply.status = Some(status);
            reply
        }
        Command::Partition { groups } => {
            if groups.len() < 2 || groups.iter().any(Vec::is_empty) {
                return refused("a partition needs at least two groups, none of them empty");
            }
            let mut seen: Vec<&String> = Vec::new();
            for who in groups.iter().flatten() {
                if seen.contains(&who) {
                    return refused(format!("{who} is in two groups"));
                }
                seen.push(who);
            }
            let absent: Vec<&str> = seen
                .iter()
                .filter(|who| !nemesis.knows(who))
                .map(|who| who.as_str())
                .collect();
            let shown = groups
                .iter()
                .map(|g| g.join(","))
                .collect::<Vec<_>>()
                .join(" | ");
            nemesis.partition(groups.clone());
            let mut message = format!("partitioned: {shown}; clients in no group hear everyone");
            if !absent.is_empty() {
                message += &format!(" (not connected now: {})", absent.join(", "));
            }
            ok(message)
        }
        Command::Heal => {
            nemesis.heal();
            ok("healed: every client hears every other")
        }
        Command::Hold => {
            nemesis.hold();
            ok("holding: every message waits for step or release")
        }
        Command::Step { count } => {
            if !nemesis.status().holding {
                return refused("not holding: send hold first");
            }
            if count == 0 || count > MAX_HELD {
                return refused(format!("step 1 to {MAX_HELD} messages"));
            }
            let n = nemesis.step(count);
            let left = nemesis.status().held;
            ok(format!(
                "delivered {n} message{}; {left} still held",
                if n == 1 { "" } else { "s" }
            ))
        }
        Command::Release => {
            let n = nemesis.release();
            ok(format!("released {n} held messages; delivering again"))
        }
        Command::Delay { client, ms } => {
            let delay = Duration::from_millis(ms);
            if delay > MAX_DELAY {
                return refused(format!("a delay is at most {} ms", MAX_DELAY.as_millis()));
            }
            nemesis.set_rule(&client, Some(delay), None);
            ok(format!(
                "messages to and from {client} now wait {ms} ms{}",
                absent_note(hub, &client)
            ))
        }
        Command::Drop { client, rate } => {
            if !(0.0..=1.0).contains(&rate) {
                return refused("a drop rate is between 0 and 1");
            }
            nemesis.set_rule(&client, None, Some(rate));
            ok(format!(
                "{:.0}% of messages to and from {client} are now lost{}",
                rate * 100.0,
                absent_note(hub, &client)
            ))
        }
        Command::Fault { client, mode } => {
            if !FAULTS.contains(&mode.as_str()) {
                return refused(format!("no fault {mode:?}; one of {}", FAULTS.join(", ")));
            }
            let queues = nemesis.queues_of(&client);
            if queues.is_empty() {
                return refused(format!("no client is called {client}"));
            }
            let order = Bytes::from(encode_order(&Order {
                fault: mode.clone(),
                proof: proof(&teacher.token),
            }));
            let sent = queues.iter().filter(|q| hub.send_direct(q, &order)).count();
            ok(format!(
                "ordered {client} to play {mode} ({sent} connection{}); a node obeys when started with the token",
                if sent == 1 { "" } else { "s" }
            ))
        }
    }
}

fn absent_note(hub: &Hub, who: &str) -> &'static str {
    if hub.nemesis.knows(who) {
        ""
    } else {
        " (no such client connected now; the rule waits for it)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_from_this_machine_commands() {
        let teacher = Teacher::new();
        let here: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let there: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        assert!(teacher.allows(here, &teacher.token).is_ok());
        assert_eq!(teacher.allows(here, "guess"), Err("wrong token".into()));
        assert!(teacher.allows(there, &teacher.token).is_err());
        let anywhere = Teacher {
            anywhere: true,
            ..teacher.clone()
        };
        assert!(anywhere.allows(there, &teacher.token).is_ok());
        assert_ne!(Teacher::new().token, teacher.token);
    }
}
