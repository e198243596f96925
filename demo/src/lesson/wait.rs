//! What a lesson's step waits for: an event on the network that makes the
//! step's point, checked against the facts the lesson gathers
//! ([`super::watch`]), and what this run's figures were when it came.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use toycoin_attack::Verdict as AttackVerdict;
use toycoin_common::hash::Txid;

use super::watch::Facts;

/// The event a step waits for.
#[derive(Clone, Debug)]
pub enum Wait {
    /// This many more blocks on the best chain.
    Blocks(usize),
    /// A block by this node heard and left off the best chain: it lost the
    /// race for its height.
    LostRace(&'static str),
    /// This node, which waits `delay` targets after each proof of work,
    /// has found this many blocks since the lesson began: how many it
    /// lost, against the odds that a rival block comes within its delay.
    RaceOdds {
        node: &'static str,
        delay: f64,
        found: usize,
    },
    /// Each of these nodes mined a block since the step began (as its log
    /// says: while the relay holds every message, nobody else hears it).
    Mined(Vec<&'static str>),
    /// A side branch: two blocks heard at one height.
    Fork,
    /// A side branch since the step began whose blocks carry payments,
    /// two blocks or more behind the best chain.
    SideWithPayments,
    /// Every running node says it is on the listener's best tip, past the
    /// height the step began at: the fork is settled.
    Settled,
    /// Payments of blocks left off the best chain are in it again.
    Remined,
    /// The bits the next block needs rose.
    BitsRise,
    /// A payment mined since the step began reaches this many
    /// confirmations.
    Confirmations(usize),
    /// The step's attacks ran, and the network held.
    Attacks,
    /// The step's attacks got through the original's known flaws.
    Flaw,
    /// This many frames refused (blocks, payments, undecodable).
    Refused(usize),
    /// This node sends nothing (no status) while the others mine on.
    Silent(&'static str),
    /// A node sending one old block again and again.
    Stuck,
    /// A block refused as invalid.
    InvalidBlock,
    /// A status that is plainly a lie.
    Lie,
    /// pBFT moved to another view (a new primary).
    ViewChange,
    /// This many more pBFT batches final.
    Final(usize),
    /// This node says how fast it hashes.
    Rate(&'static str),
    /// This node's hash rate, on more threads than when the step began, is
    /// at least this many times what it was.
    HashRate(&'static str, f64),
    /// All of them.
    All(Vec<Wait>),
}

/// The facts when a step began: what "more" and "since" count from.
#[derive(Clone, Debug)]
pub struct Mark {
    pub at: f64,
    pub height: usize,
    pub next_bits: u32,
    pub forks: usize,
    pub invalid_blocks: usize,
    pub refused: usize,
    pub stuck: usize,
    pub lies: usize,
    pub view: u64,
    pub new_views: u64,
    pub finals: usize,
    pub side: usize,
    pub rates: HashMap<String, (f64, u32)>,
    /// Races each node said it lost, and blocks it mined (its log's
    /// lines).
    pub lost_races: HashMap<String, usize>,
    pub mined: HashMap<String, usize>,
}

impl Mark {
    pub fn of(f: &Facts, logs: &Path, nodes: &[String]) -> Mark {
        Mark {
            at: f.now(),
            height: f.height(),
            next_bits: f.next_bits,
            forks: f.forks,
            invalid_blocks: f.invalid_blocks,
            refused: f.refused,
            stuck: f.stuck.len(),
            lies: f.lies.len(),
            view: f.pbft.view,
            new_views: f.pbft.new_views,
            finals: f.pbft.finals,
            side: f.side_blocks().len(),
            rates: f
                .statuses
                .iter()
                .map(|(n, (s, _))| (n.clone(), (s.hash_rate, s.threads)))
                .collect(),
            lost_races: nodes
                .iter()
                .map(|n| (n.clone(), lost_races(logs, n).len()))
                .collect(),
            mined: nodes.iter().map(|n| (n.clone(), mined(logs, n))).collect(),
        }
    }
}

/// What a check needs beside the facts.
#[derive(Debug)]
pub struct Context<'a> {
    pub mark: &'a Mark,
    /// The nodes running now, by name.
    pub running: &'a [String],
    /// The verdicts of the step's attacks.
    pub attacks: &'a [(String, AttackVerdict)],
    /// The network's target, seconds.
    pub target: f64,
    /// Replicas (pBFT), for the message count's theory.
    pub replicas: usize,
    /// Where the programs' logs are.
    pub logs: &'a Path,
    /// A payment the step follows (`Confirmations`).
    pub tracked: Option<(Txid, usize)>,
    /// Figures a step keeps for later ones (a lesson's whole run): the
    /// seconds from a payment heard to its sixth confirmation, for pBFT's
    /// step to set beside its own.
    pub kept: &'a mut HashMap<&'static str, f64>,
}

/// [`Context::kept`]'s key for proof of work's time to final.
const POW_FINAL: &str = "pow_final_s";

/// The lines of `node`'s log from where `what` starts in them.
fn said(logs: &Path, node: &str, what: &str) -> Vec<String> {
    std::fs::read_to_string(logs.join(format!("{node}.log")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.find(what).map(|i| l[i..].to_owned()))
        .collect()
}

/// The races `node` said it lost, from its log.
fn lost_races(logs: &Path, node: &str) -> Vec<String> {
    said(logs, node, "Lost the race for block")
}

/// The blocks `node` said it mined and the chain took, from its log.
fn mined_lines(logs: &Path, node: &str) -> Vec<String> {
    said(logs, node, "Mined block")
}

fn mined(logs: &Path, node: &str) -> usize {
    mined_lines(logs, node).len()
}

/// The step's attack verdicts, a line each, when it ran some and every
/// one of them is `ok`.
fn attacks_all(cx: &Context<'_>, ok: impl Fn(&AttackVerdict) -> bool) -> Option<String> {
    (!cx.attacks.is_empty() && cx.attacks.iter().all(|(_, v)| ok(v))).then(|| {
        cx.attacks
            .iter()
            .map(|(name, v)| format!("{name}: {}", v.line))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn short(txid: &Txid) -> String {
    txid.to_hex()[..8].to_owned()
}

fn shares_text(f: &Facts, from: usize) -> String {
    f.shares(from)
        .iter()
        .map(|(who, n)| format!("{who} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Wait {
    /// In words, for "waiting for ...".
    pub fn describe(&self) -> String {
        match self {
            Wait::Blocks(1) => "a block".into(),
            Wait::Blocks(n) => format!("{n} blocks"),
            Wait::LostRace(node) => format!("a block by {node} left off the best chain"),
            Wait::RaceOdds { node, found, .. } => {
                format!("{node} to find {found} blocks, won or lost")
            }
            Wait::Mined(nodes) => format!("a block from each of {}", nodes.join(", ")),
            Wait::Fork => "a side branch".into(),
            Wait::SideWithPayments => "a side branch carrying payments".into(),
            Wait::Settled => "every node on one tip".into(),
            Wait::Remined => "the losing branch's payments mined again".into(),
            Wait::BitsRise => "the bits to rise".into(),
            Wait::Confirmations(n) => format!("a payment with {n} confirmations"),
            Wait::Attacks => "the attack's verdict".into(),
            Wait::Flaw => "the original's flaw shown".into(),
            Wait::Refused(1) => "a refusal".into(),
            Wait::Refused(n) => format!("{n} refusals"),
            Wait::Silent(node) => format!("{node} to fall silent while the others mine"),
            Wait::Stuck => "a node stuck on one block".into(),
            Wait::InvalidBlock => "an invalid block refused".into(),
            Wait::Lie => "a status caught lying".into(),
            Wait::ViewChange => "a view change".into(),
            Wait::Final(1) => "a batch final".into(),
            Wait::Final(n) => format!("{n} batches final"),
            Wait::Rate(node) => format!("{node}'s hash rate"),
            Wait::HashRate(node, r) => format!("{node}'s hash rate {r}x"),
            Wait::All(all) => all
                .iter()
                .map(Wait::describe)
                .collect::<Vec<_>>()
                .join(" and "),
        }
    }

    /// Whether it happened: this run's figures when it did.
    pub fn check(&self, f: &Facts, cx: &mut Context<'_>) -> Option<String> {
        let mark = cx.mark;
        match self {
            Wait::Blocks(n) => {
                let height = f.height();
                (height >= mark.height + n).then(|| {
                    let added = height - mark.height;
                    let mut s = format!(
                        "{added} block{} in {:.1} s (now {height} on the best chain; mined by {})",
                        if added == 1 { "" } else { "s" },
                        f.now() - mark.at,
                        shares_text(f, mark.height + 1),
                    );
                    if let Some(mean) = f.mean_interval(mark.height) {
                        let _ = write!(
                            s,
                            "; one every {mean:.1} s against a target of {:.1} s",
                            cx.target
                        );
                    }
                    s
                })
            }
            Wait::LostRace(node) => {
                // The node's own account (a lost block is never sent: the
                // others had theirs first).
                let lost = lost_races(cx.logs, node);
                let before = mark.lost_races.get(*node).copied().unwrap_or(0);
                let line = lost.get(before)?;
                let height: usize = line
                    .split("block ")
                    .nth(1)
                    .and_then(|s| s.split(':').next())
                    .and_then(|s| s.trim().parse().ok())?;
                Some(format!(
                    "{node} found a block {height} too, but {}'s was there first: {node} says \"{}\". Blocks on the best chain so far: {}",
                    f.miner_at(height),
                    line.trim(),
                    shares_text(f, 1),
                ))
            }
            Wait::RaceOdds { node, delay, found } => {
                let lost = lost_races(cx.logs, node).len();
                let won = mined(cx.logs, node);
                if lost + won < *found {
                    return None;
                }
                // The rival's mean interval, as it mined: its blocks on
                // the best chain over the lesson's time.
                let rival: usize = f
                    .shares(1)
                    .iter()
                    .filter(|(who, _)| who != node)
                    .map(|(_, n)| n)
                    .sum();
                let interval = f.now() / rival.max(1) as f64;
                let delay_s = delay * cx.target;
                let odds = 1.0 - (-delay_s / interval).exp();
                Some(format!(
                    "{node} found {} blocks and lost {lost} of them ({:.0}%); theory: a rival block within its {delay_s:.1} s delay, 1 - e^(-delay/interval) with the others' block every {interval:.1} s = {:.0}%",
                    lost + won,
                    100.0 * lost as f64 / (lost + won) as f64,
                    100.0 * odds,
                ))
            }
            Wait::Mined(nodes) => {
                let mut said = Vec::new();
                for node in nodes {
                    let before = mark.mined.get(*node).copied().unwrap_or(0);
                    let lines = mined_lines(cx.logs, node);
                    let line = lines.get(before)?;
                    said.push(format!("{node}: \"{}\"", line.trim()));
                }
                Some(format!(
                    "{}; neither has heard the other's",
                    said.join("; ")
                ))
            }
            Wait::Fork => {
                let side = f.side_blocks();
                (f.forks > mark.forks || side.len() > mark.side).then(|| {
                    match side.iter().rev().find(|(_, b)| b.at >= mark.at) {
                        Some((_, b)) => format!(
                            "two blocks at height {}: {}'s on the best chain, {}'s on a side branch",
                            b.height,
                            f.miner_at(b.height),
                            f.name_of(b.miner.as_deref())
                        ),
                        None => "a side branch".into(),
                    }
                })
            }
            Wait::SideWithPayments => {
                let side: Vec<_> = f
                    .side_blocks()
                    .into_iter()
                    .filter(|(_, b)| b.at >= mark.at)
                    .collect();
                let payments: usize = side.iter().map(|(_, b)| b.txids.len()).sum();
                // Two blocks behind at least: a lead the heal will not undo.
                let side_tip = side.iter().map(|(_, b)| b.height).max().unwrap_or(0);
                (payments > 0 && f.height() > mark.height && f.height() >= side_tip + 2).then(|| {
                    let miners: std::collections::BTreeSet<String> = side
                        .iter()
                        .map(|(_, b)| f.name_of(b.miner.as_deref()))
                        .collect();
                    format!(
                        "two branches: the best chain at {} blocks, and a side branch of {} block(s) by {} carrying {payments} payment(s)",
                        f.height(),
                        side.len(),
                        miners.into_iter().collect::<Vec<_>>().join(", "),
                    )
                })
            }
            Wait::Settled => {
                let tip = *f.best.last()?;
                if f.height() <= mark.height || cx.running.is_empty() {
                    return None;
                }
                let agreed = cx.running.iter().all(|n| {
                    f.statuses
                        .get(n)
                        .is_some_and(|(s, at)| *at > mark.at && s.tip == Some(tip))
                });
                agreed.then(|| {
                    let lost: Vec<_> = f
                        .side_blocks()
                        .into_iter()
                        .filter(|(_, b)| b.height > mark.height.saturating_sub(20))
                        .map(|(_, b)| f.name_of(b.miner.as_deref()))
                        .collect();
                    format!(
                        "all {} nodes are on block {} ({}); {} block(s) heard are off the best chain{}",
                        cx.running.len(),
                        f.height(),
                        &tip.to_hex()[..8],
                        lost.len(),
                        if lost.is_empty() {
                            String::new()
                        } else {
                            format!(" (mined by {})", lost.join(", "))
                        }
                    )
                })
            }
            Wait::Remined => {
                let in_best = f.best_txids();
                let since = f.partitioned_at.unwrap_or(0.0);
                let lost: Vec<Txid> = f
                    .side_blocks()
                    .into_iter()
                    .filter(|(_, b)| b.at >= since)
                    .flat_map(|(_, b)| b.txids.iter().copied())
                    .collect();
                if lost.is_empty() {
                    // Blocks were left off, none with a payment: the half
                    // with the payments had the heavier branch this time
                    // (hash power wins on average, not every race).
                    let left_off: Vec<String> = f
                        .side_blocks()
                        .into_iter()
                        .filter(|(_, b)| b.at >= since)
                        .map(|(_, b)| f.name_of(b.miner.as_deref()))
                        .collect();
                    return (!left_off.is_empty()).then(|| {
                        format!(
                            "this time the branch with the payments had more work: the {} block(s) left off the best chain (mined by {}) held none, so no payment waits to be mined again",
                            left_off.len(),
                            left_off.join(", ")
                        )
                    });
                }
                let back: Vec<(Txid, usize)> = lost
                    .iter()
                    .filter_map(|t| in_best.get(t).map(|h| (*t, *h)))
                    .collect();
                (!back.is_empty()).then(|| {
                    format!(
                        "{} of the {} payments in blocks left off the best chain are in it again (e.g. {} at height {})",
                        back.len(),
                        lost.len(),
                        short(&back[0].0),
                        back[0].1
                    )
                })
            }
            Wait::BitsRise => (f.next_bits > mark.next_bits).then(|| {
                let mut s = format!(
                    "the bits rose from {} to {} in {} blocks ({:.1} s)",
                    mark.next_bits,
                    f.next_bits,
                    f.height().saturating_sub(mark.height),
                    f.now() - mark.at
                );
                if let Some(mean) = f.mean_interval(mark.height) {
                    let _ = write!(
                        s,
                        "; meanwhile a block every {mean:.1} s against a target of {:.1} s",
                        cx.target
                    );
                }
                s
            }),
            Wait::Confirmations(n) => {
                let in_best = f.best_txids();
                if cx.tracked.is_none() {
                    // The first payment mined after the step began.
                    cx.tracked = in_best
                        .iter()
                        .filter(|(_, h)| **h > mark.height)
                        .min_by_key(|(t, h)| (**h, t.to_hex()))
                        .map(|(t, h)| (*t, *h));
                }
                let (txid, _) = cx.tracked?;
                let height = *in_best.get(&txid)?;
                let confirmations = f.best.len() - height;
                (confirmations >= *n).then(|| {
                    let mined_at = f
                        .best
                        .get(height)
                        .and_then(|h| f.blocks.get(h))
                        .map(|b| b.at)
                        .unwrap_or(mark.at);
                    let deep_at = f
                        .best
                        .get(height + n - 1)
                        .and_then(|h| f.blocks.get(h))
                        .map(|b| b.at)
                        .unwrap_or_else(|| f.now());
                    let heard = f.heard.get(&txid).copied();
                    cx.kept
                        .insert(POW_FINAL, deep_at - heard.unwrap_or(mined_at));
                    format!(
                        "payment {} went into block {height}{}; {n} confirmations {:.1} s after that (theory: {n} x the {:.1} s target = {:.1} s)",
                        short(&txid),
                        heard
                            .map(|h| format!(" {:.1} s after it was heard", mined_at - h))
                            .unwrap_or_default(),
                        deep_at - mined_at,
                        cx.target,
                        *n as f64 * cx.target,
                    )
                })
            }
            Wait::Attacks => attacks_all(cx, |v| v.held),
            Wait::Flaw => attacks_all(cx, AttackVerdict::shows_flaw),
            Wait::Refused(n) => (f.refused >= mark.refused + n).then(|| {
                let reasons: Vec<&String> = {
                    let mut seen = Vec::new();
                    for r in f.reasons.iter().skip(mark.refused) {
                        if !seen.contains(&r) && seen.len() < 3 {
                            seen.push(r);
                        }
                    }
                    seen
                };
                format!(
                    "{} frames refused, e.g. {}",
                    f.refused - mark.refused,
                    reasons
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }),
            Wait::Silent(node) => {
                let quiet_for = f.now() - mark.at;
                let last = f.statuses.get(*node).map(|(_, at)| *at).unwrap_or(0.0);
                // A status on its way when the order came may still land.
                (quiet_for >= 10.0 && last < mark.at + 2.0 && f.height() > mark.height).then(
                    || {
                        format!(
                            "{node} has said nothing for {:.0} s; the others mined {} block(s) without it",
                            f.now() - last.max(mark.at),
                            f.height() - mark.height
                        )
                    },
                )
            }
            Wait::Stuck => (f.stuck.len() > mark.stuck)
                .then(|| format!("the listener saw {}", f.stuck[mark.stuck..].join("; "))),
            Wait::InvalidBlock => (f.invalid_blocks > mark.invalid_blocks).then(|| {
                let reason = f
                    .reasons
                    .iter()
                    .skip(mark.refused)
                    .find(|r| r.starts_with("a block"))
                    .cloned()
                    .unwrap_or_default();
                format!(
                    "{} invalid block(s) refused: {reason}",
                    f.invalid_blocks - mark.invalid_blocks
                )
            }),
            Wait::Lie => (f.lies.len() > mark.lies).then(|| {
                let (who, lie) = &f.lies[mark.lies];
                format!("{who}'s status: {lie}")
            }),
            Wait::ViewChange => (f.pbft.new_views > mark.new_views || f.pbft.view > mark.view)
                .then(|| {
                    format!(
                        "view {} → {} (primary now {}), {:.1} s after the step began",
                        mark.view,
                        f.pbft.view,
                        f.pbft.primary.as_deref().unwrap_or("?"),
                        f.pbft.new_view_at.unwrap_or_else(|| f.now()) - mark.at
                    )
                }),
            Wait::Final(n) => (f.pbft.finals >= mark.finals + n).then(|| {
                let last = f
                    .pbft
                    .batches
                    .iter()
                    .rev()
                    .find(|(_, b)| b.final_at.is_some_and(|t| t >= mark.at));
                let mut s = format!("{} batch(es) final", f.pbft.finals - mark.finals);
                if let Some((seq, b)) = last {
                    let _ = write!(
                        s,
                        ". Batch {seq} ({} payment{}): final {:.2} s after its pre-prepare",
                        b.txns,
                        if b.txns == 1 { "" } else { "s" },
                        b.final_at.unwrap_or(0.0) - b.proposed_at.unwrap_or(0.0),
                    );
                    // From the payment heard (its TXN) to final, beside
                    // proof of work's measured 6 confirmations, or its
                    // theory.
                    let heard = b
                        .txids
                        .iter()
                        .filter_map(|t| f.heard.get(t))
                        .copied()
                        .reduce(f64::min);
                    if let (Some(heard), Some(done)) = (heard, b.final_at) {
                        let _ = write!(s, ", {:.2} s after it was sent", done - heard);
                    }
                    match cx.kept.get(POW_FINAL) {
                        Some(pow) => {
                            let _ = write!(
                                s,
                                ", against {pow:.1} s to proof of work's 6 confirmations in this lesson"
                            );
                        }
                        None => {
                            let _ = write!(
                                s,
                                ", against proof of work's 6 x {:.1} s = {:.0} s",
                                cx.target,
                                6.0 * cx.target
                            );
                        }
                    }
                    let n = cx.replicas.max(1) as u32;
                    let p2p =
                        (b.pre_prepares + b.prepares + b.commits) * (n - 1) + b.replies;
                    let theory = 2 * n * (n - 1) + n;
                    let _ = write!(
                        s,
                        ". Its messages: {} pre-prepare, {} prepares, {} commits, {} replies — {p2p} deliveries replica to replica, against 2n(n-1)+n = {theory} for n = {n}",
                        b.pre_prepares, b.prepares, b.commits, b.replies,
                    );
                }
                s
            }),
            Wait::Rate(node) => {
                let (now, _) = f.statuses.get(*node)?;
                (now.hash_rate > 0.0).then(|| {
                    format!(
                        "{node} hashes {:.0} H/s on {} thread(s)",
                        now.hash_rate, now.threads
                    )
                })
            }
            Wait::HashRate(node, ratio) => {
                let (before, threads_before) = mark.rates.get(*node).copied()?;
                let (now, at) = f.statuses.get(*node)?;
                // On more threads than before: until the node has restarted,
                // its old process may still say a higher rate on as many.
                let restarted = now.threads > threads_before;
                let faster = before > 0.0 && now.hash_rate >= ratio * before;
                (*at > mark.at && restarted && faster).then(|| {
                    format!(
                        "{node}: {:.0} H/s on {threads_before} thread(s), now {:.0} H/s on {} ({:.2}x)",
                        before,
                        now.hash_rate,
                        now.threads,
                        now.hash_rate / before
                    )
                })
            }
            Wait::All(all) => {
                let mut said = Vec::new();
                for w in all {
                    said.push(w.check(f, cx)?);
                }
                Some(said.join("\n"))
            }
        }
    }
}

/// Where things stand, for a step whose event did not come.
pub fn situation(f: &Facts, mark: &Mark, wait: &Wait) -> String {
    let mut extra = String::new();
    if let Wait::HashRate(node, _) = wait {
        let before = mark.rates.get(*node).map(|r| r.0).unwrap_or(0.0);
        let now = f.statuses.get(*node);
        let _ = write!(
            extra,
            "; {node} said {before:.0} H/s when the step began, {}",
            match now {
                Some((s, at)) => format!(
                    "{:.0} H/s on {} thread(s) {:.0} s ago",
                    s.hash_rate,
                    s.threads,
                    f.now() - at
                ),
                None => "nothing since".into(),
            }
        );
    }
    format!(
        "{} blocks since the step began (mined by {}), {} side branch(es), {} refusal(s), pBFT view {} with {} batch(es) final",
        f.height().saturating_sub(mark.height),
        if f.height() > mark.height {
            shares_text(f, mark.height + 1)
        } else {
            "nobody".into()
        },
        f.side_blocks().len().saturating_sub(mark.side),
        f.refused - mark.refused,
        f.pbft.view,
        f.pbft.finals - mark.finals,
    ) + &extra
}
