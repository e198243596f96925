//! The teacher's commands (`$ctl`, sent by `toycoin-ctl`): who may give
//! them, and carrying them out on the hub's [`crate::nemesis::Nemesis`].
//! The frames are in [`toycoin_common::control`] and `docs/control.md`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use toycoin_common::control::{
    check_mac, encode_order, proof, Command, Order, Reply, Request, FAULTS,
};

use crate::hub::Hub;
use crate::nemesis::{MAX_DELAY, MAX_HELD};
use crate::replay::Timeline;
use toycoin_common::per_address::AddressBuckets;

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

    /// Whether `peer` may give `request`, which answers `challenge` (the
    /// connection's, spent by this request); if not, why.
    pub fn allows(
        &self,
        peer: SocketAddr,
        challenge: &str,
        request: &Request,
    ) -> Result<(), String> {
        if !self.anywhere && !peer.ip().is_loopback() {
            return Err(format!(
                "commands are taken only from this machine (the relay runs without --control-from-anywhere), not from {}",
                peer.ip()
            ));
        }
        // Compared in constant time: how long it takes tells nothing.
        if check_mac(&self.token, challenge, &request.command, &request.mac) {
            Ok(())
        } else {
            Err("wrong token (or a command answering another challenge)".into())
        }
    }
}

/// Wrong guesses slowed per address: each address may have
/// [`GUESS_BURST`] commands refused at once, then one per
/// [`GUESS_EVERY`]; past that its commands are refused unread until it
/// waits. The teacher's own commands (from this machine, where no
/// student is unless the relay takes commands from anywhere) are not
/// slowed by a student's guesses from another address.
#[derive(Debug)]
pub struct Guesses(AddressBuckets);

/// Refused commands an address may send at once.
pub const GUESS_BURST: f64 = 10.0;
/// Then one refused command per this long.
pub const GUESS_EVERY: Duration = Duration::from_secs(1);

impl Default for Guesses {
    fn default() -> Guesses {
        Guesses(AddressBuckets::new(GUESS_BURST, GUESS_EVERY))
    }
}

impl Guesses {
    /// How long `addr` must wait before a command of its is read again;
    /// `None` when it may send one now.
    pub fn wait(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        self.0.wait(addr, now)
    }

    /// Counts a refused command from `addr`.
    pub fn refused(&self, addr: IpAddr, now: Instant) {
        self.0.take(addr, now);
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
        challenge: None,
    }
}

pub fn refused(message: impl Into<String>) -> Reply {
    Reply {
        ok: false,
        message: message.into(),
        status: None,
        challenge: None,
    }
}

/// The reply as the data frame sent back.
pub fn encode_reply(reply: &Reply) -> Bytes {
    Bytes::from(serde_json::to_vec(reply).unwrap_or_default())
}

/// Carries out a command allowed by `teacher`; on a replay, `hold`,
/// `step` and `release` move its `timeline` (nobody but the replay
/// publishes there), as do `seek` and `speed`.
pub fn execute(
    hub: &Hub,
    teacher: &Teacher,
    timeline: Option<&Timeline>,
    command: Command,
) -> Reply {
    let nemesis = &hub.nemesis;
    let done = |result: Result<String, String>| match result {
        Ok(message) => ok(message),
        Err(why) => refused(why),
    };
    match (timeline, &command) {
        (Some(t), Command::Hold) => return ok(t.pause()),
        (Some(t), Command::Release) => return ok(t.play()),
        (Some(t), Command::Step { count }) => return done(t.step(*count)),
        (Some(t), Command::Seek { secs }) => return done(t.seek(*secs)),
        (Some(t), Command::Speed { speed }) => return done(t.set_speed(*speed)),
        _ => {}
    }
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
            if let Some(t) = timeline {
                let position = t.position();
                reply.message = format!("replay: {}; {}", position.describe(), reply.message);
                reply.status = Some(toycoin_common::control::NetworkStatus {
                    replay: Some(position),
                    ..status
                });
            } else {
                reply.status = Some(status);
            }
            reply
        }
        Command::Seek { .. } | Command::Speed { .. } => refused(
            "this relay is a live class, not a replay: seek and speed move a replay (toycoin-replay)",
        ),
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

    fn request(token: &str, challenge: &str) -> Request {
        Request {
            mac: toycoin_common::control::mac(token, challenge, &Command::Heal),
            command: Command::Heal,
        }
    }

    #[test]
    fn only_the_token_from_this_machine_commands() {
        let teacher = Teacher::new();
        let here: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let there: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        let challenge = toycoin_common::control::new_challenge();
        let good = request(&teacher.token, &challenge);
        assert!(teacher.allows(here, &challenge, &good).is_ok());
        let guess = request("guess", &challenge);
        assert!(teacher
            .allows(here, &challenge, &guess)
            .unwrap_err()
            .starts_with("wrong token"));
        assert!(teacher.allows(here, "another challenge", &good).is_err());
        assert!(teacher.allows(there, &challenge, &good).is_err());
        let anywhere = Teacher {
            anywhere: true,
            ..teacher.clone()
        };
        assert!(anywhere.allows(there, &challenge, &good).is_ok());
        assert_ne!(Teacher::new().token, teacher.token);
    }

    #[test]
    fn wrong_guesses_are_slowed_per_address() {
        let guesses = Guesses::default();
        let (student, teacher): (IpAddr, IpAddr) =
            ("10.0.0.7".parse().unwrap(), "127.0.0.1".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..GUESS_BURST as usize {
            assert_eq!(guesses.wait(student, t0), None);
            guesses.refused(student, t0);
        }
        let wait = guesses.wait(student, t0).expect("slowed");
        assert!(wait <= GUESS_EVERY, "{wait:?}");
        assert_eq!(guesses.wait(teacher, t0), None, "another address");
        assert_eq!(
            guesses.wait(student, t0 + GUESS_EVERY),
            None,
            "one more later"
        );
    }
}
