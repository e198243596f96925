//! Lessons (`toycoin-demo --lesson NAME`): the demo network driven through
//! one lecture point after another. A lesson is data ([`Lesson`]): how the
//! network starts ([`Setup`]), then steps, each saying what to watch,
//! acting on the real network ([`Act`]: start or stop a node, more
//! threads, a fault, a partition and its healing, holding every message,
//! an attack, another network), waiting for the event that makes its
//! point ([`Wait`]) within a time limit, and saying what happened with
//! this run's figures. Between steps it waits for the teacher (Enter, or
//! the web view's Next), or goes straight on (`--auto`).
//!
//! - `class.rs`: the programs, started and stopped, their logs;
//! - `watch.rs`: the facts, from a client of the relay that judges every
//!   frame as the listener does;
//! - `wait.rs`: what a step can wait for, and its figures.
//!
//! The lessons themselves are in [`crate::lessons`], a file each.

mod class;
mod wait;
mod watch;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use toycoin_common::cli::Consensus;
use toycoin_common::control::Command as Ctl;
use toycoin_common::log::{fit_to, terminal_width, Output};
use toycoin_node::Fault;

use crate::Args;
use class::Class;
use serde_json::json;
use toycoin_listener::lesson_panel;
pub use wait::Wait;
use wait::{situation, Context, Mark};

/// A lesson: a network and the steps that make its points.
#[derive(Debug)]
pub struct Lesson {
    /// What `--lesson` takes.
    pub name: &'static str,
    pub title: &'static str,
    /// The lecture's points it makes, in a line.
    pub about: &'static str,
    pub setup: Setup,
    pub steps: Vec<Step>,
}

/// How a lesson's network starts.
#[derive(Clone, Debug)]
pub struct Setup {
    pub nodes: usize,
    /// Nodes (1-based) not started until a step starts them.
    pub late: Vec<usize>,
    /// Seconds each node sleeps after a proof of work, in targets (the
    /// last repeats).
    pub delays: Vec<f64>,
    /// Each node's hash power, in shares: 1 mines a block a target at the
    /// steady profile's starting bits; 0 as fast as its threads go (the
    /// last repeats).
    pub shares: Vec<f64>,
    pub threads: Vec<usize>,
    pub profile: &'static str,
    pub consensus: Consensus,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            nodes: 2,
            late: Vec::new(),
            delays: vec![0.0],
            shares: vec![0.5],
            threads: vec![1],
            profile: "steady",
            consensus: Consensus::Pow,
        }
    }
}

/// What a step does to the network before it waits.
#[derive(Clone, Debug)]
pub enum Act {
    StartNode(usize),
    StopNode(usize),
    /// Restart a node with this many mining threads.
    Threads(usize, usize),
    /// Make a node play a fault (`None`: honest again).
    Fault(usize, Option<Fault>),
    /// Make pBFT's primary of the moment play a fault.
    FaultPrimary(Fault),
    /// Cut the network into groups of clients (`node1`, `oracle`).
    Partition(Vec<Vec<&'static str>>),
    Heal,
    /// Hold every message at the relay until `Release`.
    Hold,
    Release,
    /// Run an attack scenario ([`toycoin_attack`]), narrated here.
    Attack(toycoin_attack::Scenario),
    /// Stop the whole network and start another.
    Restart(Setup),
}

impl Act {
    fn describe(&self) -> String {
        match self {
            Act::StartNode(n) => format!("starting node{n}"),
            Act::StopNode(n) => format!("stopping node{n}"),
            Act::Threads(n, t) => format!("restarting node{n} with {t} mining threads"),
            Act::Fault(n, Some(f)) => format!("toycoin-ctl fault node{n} {f}"),
            Act::Fault(n, None) => format!("toycoin-ctl fault node{n} honest"),
            Act::FaultPrimary(f) => {
                format!("toycoin-ctl fault PRIMARY {f} (whichever replica leads now)")
            }
            Act::Partition(groups) => format!(
                "toycoin-ctl partition {}",
                groups
                    .iter()
                    .map(|g| g.join(","))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Act::Heal => "toycoin-ctl heal".into(),
            Act::Hold => "toycoin-ctl hold".into(),
            Act::Release => "toycoin-ctl release".into(),
            Act::Attack(s) => format!(
                "toycoin-attack {}",
                clap::ValueEnum::to_possible_value(s)
                    .map(|v| v.get_name().to_owned())
                    .unwrap_or_default()
            ),
            Act::Restart(setup) => format!(
                "a new network: {} nodes, profile {}, {}",
                setup.nodes,
                setup.profile,
                match setup.consensus {
                    Consensus::Pow => "proof of work",
                    Consensus::Pbft => "pBFT",
                }
            ),
        }
    }
}

/// One step of a lesson.
#[derive(Clone, Debug)]
pub struct Step {
    pub title: &'static str,
    /// What to watch, in the terminal and the web view.
    pub watch: &'static str,
    pub act: Vec<Act>,
    pub wait: Wait,
    /// Longest wait, in targets (beside a fixed [`SLACK`]).
    pub within: f64,
    /// What it shows, said once it happened.
    pub then: &'static str,
}

/// Time every step is given beside its targets: programs starting,
/// statuses every few seconds.
const SLACK: Duration = Duration::from_secs(20);

/// Where a lesson keeps the programs' logs and its state for the web
/// view's panel: beside the keys (a private directory).
pub fn dir(args: &Args) -> std::path::PathBuf {
    args.keys.join("lesson-logs")
}

/// Where the lesson stands, for the web view's lesson panel
/// ([`toycoin_listener::lesson_panel`]).
#[derive(Debug)]
struct Panel {
    dir: std::path::PathBuf,
    state: serde_json::Map<String, serde_json::Value>,
}

impl Panel {
    fn new(dir: &std::path::Path, lesson: &Lesson) -> Panel {
        let _ = std::fs::remove_file(dir.join(lesson_panel::NEXT_FILE));
        let mut panel = Panel {
            dir: dir.to_owned(),
            state: serde_json::Map::new(),
        };
        panel.set(&[
            ("lesson", json!(lesson.name)),
            ("title", json!(lesson.title)),
            ("steps", json!(lesson.steps.len())),
            ("step", json!(0)),
            ("step_title", json!("Starting the network")),
            ("watch", json!(lesson.about)),
            ("state", json!("starting")),
        ]);
        panel
    }

    /// Sets these fields and shows the state (a panel that cannot be
    /// written is only a panel missing).
    fn set(&mut self, fields: &[(&str, serde_json::Value)]) {
        for (k, v) in fields {
            self.state.insert((*k).to_owned(), v.clone());
        }
        let _ =
            lesson_panel::write_state(&self.dir, &serde_json::Value::Object(self.state.clone()));
    }
}

/// Prints the lessons there are.
pub fn list() {
    println!("Lessons (toycoin-demo --lesson NAME; --auto runs straight through):");
    for l in crate::lessons::all() {
        println!("  {:<14} {} — {}", l.name, l.title, l.about);
    }
}

/// Prints `text` fitted to the terminal, each line after `indent`.
fn say(indent: &str, text: &str) {
    let width = std::io::stdout()
        .is_terminal()
        .then(|| terminal_width(Output::Stdout))
        .flatten();
    let rest = " ".repeat(indent.chars().count());
    for (i, line) in text.lines().enumerate() {
        let lead = if i == 0 { indent } else { rest.as_str() };
        println!("{}", fit_to(&format!("{lead}{}", line.trim_start()), width));
    }
}

/// How one step went.
#[derive(Debug)]
struct Outcome {
    happened: bool,
    /// What happened, as the terminal said it.
    said: String,
}

/// Runs the lesson `args.lesson` until its end or `shutdown`. Returns 0
/// when every step's event happened, 1 when one did not or the network
/// would not start, 2 for a lesson that does not exist.
pub async fn run(mut args: Args, shutdown: impl std::future::Future<Output = ()>) -> i32 {
    let name = args.lesson.clone().unwrap_or_default();
    let Some(lesson) = crate::lessons::all().into_iter().find(|l| l.name == name) else {
        eprintln!("toycoin-demo: no lesson {name:?}");
        list();
        return 2;
    };
    let logs = dir(&args);
    if let Err(e) = std::fs::create_dir_all(&logs) {
        eprintln!("toycoin-demo: cannot create {}: {e}", logs.display());
        return 1;
    }
    tokio::pin!(shutdown);
    println!("Lesson {}: {}", lesson.name, lesson.title);
    say("  ", lesson.about);
    println!(
        "  (the programs' output is in {}; a block every {:.1} s is the target)",
        logs.display(),
        args.target
    );
    let mut panel = Panel::new(&logs, &lesson);
    let mut class = match Class::start(&mut args, &lesson.setup, &logs).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("toycoin-demo: {e}");
            return 1;
        }
    };
    announce(&class);
    let mut input = (!args.auto).then(|| tokio::io::BufReader::new(tokio::io::stdin()).lines());
    let button = !args.auto && class.web.is_some();
    let mut outcomes = Vec::new();
    let mut kept = HashMap::new();
    let steps = lesson.steps.len();
    for (i, step) in lesson.steps.iter().enumerate() {
        println!();
        println!("Step {}/{steps}: {}", i + 1, step.title);
        say("  Watch: ", step.watch);
        panel.set(&[
            ("step", json!(i + 1)),
            ("step_title", json!(step.title)),
            ("watch", json!(step.watch)),
            (
                "doing",
                json!(step.act.iter().map(Act::describe).collect::<Vec<_>>()),
            ),
            ("state", json!("waiting")),
            ("waiting_for", json!(step.wait.describe())),
            ("said", json!("")),
            ("next", json!(false)),
        ]);
        let outcome = tokio::select! {
            o = run_step(&mut class, &mut args, step, &mut kept) => o,
            _ = &mut shutdown => {
                println!("Stopped by Ctrl-C.");
                break;
            }
        };
        panel.set(&[
            (
                "state",
                json!(if outcome.happened {
                    "happened"
                } else {
                    "missed"
                }),
            ),
            ("said", json!(outcome.said)),
            ("then", json!(step.then)),
        ]);
        outcomes.push(outcome);
        if i + 1 < steps && (input.is_some() || button) {
            panel.set(&[("next", json!(true))]);
            println!(
                "  [Enter{}: next step; q and Enter: stop here]",
                if button {
                    " or the web view's Next"
                } else {
                    ""
                }
            );
            let go_on = tokio::select! {
                go = teacher(&mut input, button, &logs, i + 1) => go,
                _ = &mut shutdown => false,
            };
            panel.set(&[("next", json!(false))]);
            if !go_on {
                break;
            }
        }
    }
    println!();
    println!("Stopping the lesson's network...");
    class.stop().await;
    let happened = outcomes.iter().filter(|o| o.happened).count();
    let summary = format!(
        "Lesson {}: {happened} of {steps} steps happened as the lecture says{}.",
        lesson.name,
        if outcomes.len() < steps {
            format!(" ({} not run)", steps - outcomes.len())
        } else {
            String::new()
        }
    );
    println!("{summary}");
    panel.set(&[
        ("state", json!("ended")),
        ("said", json!(summary)),
        ("next", json!(false)),
    ]);
    if happened == steps {
        0
    } else {
        1
    }
}

/// Waits for the teacher to be done with `step`: Enter (or `q` to stop)
/// in the terminal, or the web view's Next button when there is one.
/// Without either (no more input, no web view) it goes straight on.
async fn teacher(
    input: &mut Option<tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>>,
    button: bool,
    dir: &std::path::Path,
    step: usize,
) -> bool {
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            line = async { input.as_mut()?.next_line().await.ok().flatten() }, if input.is_some() => {
                match line {
                    Some(l) if l.trim() == "q" => return false,
                    Some(_) => return true,
                    None => {
                        // No more input: the button alone, if any.
                        *input = None;
                        if !button {
                            return true;
                        }
                    }
                }
            }
            _ = poll.tick(), if button => {
                if lesson_panel::next_pressed(dir) == Some(step as u64) {
                    return true;
                }
            }
        }
    }
}

/// Where to look: the web view and the teacher's controls.
fn announce(class: &Class) {
    say("", &class.network.banner());
    if let Some(web) = class.web {
        say("", &crate::web_line(web));
    }
    say("", &crate::ctl_line(class.relay));
}

/// Acts, waits and says what happened.
async fn run_step(
    class: &mut Class,
    args: &mut Args,
    step: &Step,
    kept: &mut HashMap<&'static str, f64>,
) -> Outcome {
    let logs = dir(args);
    let mut mark = Mark::of(&watch::lock(&class.facts), &logs, &class.running_nodes());
    let began = tokio::time::Instant::now();
    let mut attacks = Vec::new();
    for act in &step.act {
        say("  > ", &act.describe());
        match perform(class, args, act).await {
            Ok(Some(verdict)) => attacks.push((act.describe(), verdict)),
            Ok(None) => {}
            Err(e) => say("    ", &format!("could not: {e}")),
        }
        if matches!(act, Act::Restart(_)) {
            // Everything counts from the new network.
            mark = Mark::of(&watch::lock(&class.facts), &logs, &class.running_nodes());
        }
    }
    // The network's own target (the original's is always 5 s).
    let target = class.network.profile().target_ms as f64 / 1000.0;
    let limit = SLACK + Duration::from_secs_f64(step.within * target);
    let deadline = tokio::time::Instant::now() + limit;
    let running = class.running_nodes();
    let mut cx = Context {
        mark: &mark,
        running: &running,
        attacks: &attacks,
        target,
        replicas: class.replicas,
        logs: &logs,
        tracked: None,
        kept,
    };
    say("  Waiting for ", &format!("{}...", step.wait.describe()));
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    loop {
        poll.tick().await;
        let facts = watch::lock(&class.facts);
        if let Some(figures) = step.wait.check(&facts, &mut cx) {
            let said = format!("[{:.0} s] {figures}", began.elapsed().as_secs_f64());
            say("  ✓ ", &said);
            say("  ", step.then);
            return Outcome {
                happened: true,
                said,
            };
        }
        if tokio::time::Instant::now() >= deadline {
            let said = format!(
                "no {} within {:.0} s this time: {}",
                step.wait.describe(),
                limit.as_secs_f64(),
                situation(&facts, &mark, &step.wait)
            );
            say("  ✗ ", &said);
            for (name, v) in &attacks {
                say("    ", &format!("{name}: {}", v.line));
            }
            return Outcome {
                happened: false,
                said,
            };
        }
    }
}

/// The teacher's order to `client` to play `mode` (`honest`: none).
async fn order_fault(
    class: &Class,
    client: String,
    mode: String,
) -> Result<Option<toycoin_attack::Verdict>, String> {
    class
        .control(Ctl::Fault { client, mode })
        .await
        .map(|_| None)
}

/// Does one act on the network; an attack's verdict when it ran one.
async fn perform(
    class: &mut Class,
    args: &mut Args,
    act: &Act,
) -> Result<Option<toycoin_attack::Verdict>, String> {
    let node = |n: &usize| format!("node{n}");
    match act {
        Act::StartNode(n) => class.start_program(&node(n)).map(|_| None),
        Act::StopNode(n) => {
            class.stop_program(&node(n)).await;
            Ok(None)
        }
        Act::Threads(n, t) => class.set_threads(args, *n, *t).await.map(|_| None),
        Act::Fault(n, fault) => {
            let mode = fault.map(|f| f.to_string()).unwrap_or("honest".into());
            order_fault(class, node(n), mode).await
        }
        Act::FaultPrimary(fault) => {
            let primary = watch::lock(&class.facts)
                .pbft
                .primary
                .clone()
                .unwrap_or_else(|| "node1".to_owned());
            say("    ", &format!("the primary is {primary}"));
            order_fault(class, primary, fault.to_string()).await
        }
        Act::Partition(groups) => {
            {
                let mut facts = watch::lock(&class.facts);
                facts.partitioned_at = Some(facts.now());
            }
            class
                .control(Ctl::Partition {
                    groups: groups
                        .iter()
                        .map(|g| g.iter().map(|s| s.to_string()).collect())
                        .collect(),
                })
                .await
                .map(|_| None)
        }
        Act::Heal => class.control(Ctl::Heal).await.map(|_| None),
        Act::Hold => class.control(Ctl::Hold).await.map(|_| None),
        Act::Release => class.control(Ctl::Release).await.map(|_| None),
        Act::Attack(scenario) => {
            let mut options =
                toycoin_attack::Options::new(class.relay.to_string(), class.network.profile());
            options.token = class.token.clone();
            options.count = 200;
            options.secret_blocks = 3;
            // The lesson's nodes have joined (and said so to the relay):
            // the attacker need not listen long to hear them. Under the
            // original's rules it listens as long as usual: its coinbase
            // then queues behind fewer of the oracle's first payments (a
            // block there takes two transactions, oldest first).
            if class.network.profile().kind == toycoin_common::profile::ProfileKind::Steady {
                options.listen_first = Duration::from_secs(1);
            }
            let target = class.network.profile().target_ms as f64 / 1000.0;
            options.patience = SLACK + Duration::from_secs_f64(30.0 * target);
            let mut attacker = toycoin_attack::Attacker::join(options, true).await?;
            Ok(Some(attacker.run(*scenario).await))
        }
        Act::Restart(setup) => {
            let logs = dir(args);
            class.stop().await;
            *class = Class::start(args, setup, &logs).await?;
            announce(class);
            Ok(None)
        }
    }
}
