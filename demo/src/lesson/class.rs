//! The lesson's network: the demo's programs, each started, stopped and
//! restarted by the lesson's steps, their output in log files (the
//! terminal belongs to the lesson's story), and the teacher's controls.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Child;
use tokio::task::JoinHandle;
use toycoin_common::cli::Consensus;
use toycoin_common::control::{command, Command as Ctl};
use toycoin_common::network::Network;
use toycoin_common::pbft::Membership;

use super::watch::{self, Shared};
use super::Setup;
use crate::{
    relay_args, replicas_file, specs, wait_ready, web_addr, write_network, write_replicas, Args,
    RateLimit, Spec,
};

/// Hashes a block needs at the steady profile's start
/// ([`toycoin_common::profile::START_BITS`]): a node with a share of 1
/// mines one block a target at the start.
const START_HASHES: f64 = (1u64 << toycoin_common::profile::START_BITS) as f64;

/// The running network.
#[derive(Debug)]
pub struct Class {
    pub relay: std::net::SocketAddr,
    pub token: Option<String>,
    pub network: Network,
    pub web: Option<std::net::SocketAddr>,
    /// Replicas (pBFT), else 0.
    pub replicas: usize,
    relay_child: Option<Child>,
    children: BTreeMap<String, Child>,
    specs: Vec<Spec>,
    logs: PathBuf,
    pub facts: Shared,
    watcher: JoinHandle<()>,
}

/// Applies a lesson's setup to the demo's arguments.
fn apply(args: &mut Args, setup: &Setup) {
    args.nodes = setup.nodes;
    args.profile = setup.profile.to_owned();
    args.consensus = setup.consensus;
    args.delays = setup.delays.iter().map(|d| d * args.target).collect();
    args.threads = setup.threads.clone();
    args.fault.clear();
    args.scenario = None;
    args.max_hash_rates = setup
        .shares
        .iter()
        .map(|&share| {
            RateLimit(
                (share > 0.0 && setup.profile == "steady")
                    .then(|| (share * START_HASHES / args.target).round()),
            )
        })
        .collect();
}

/// A log file for `label` in `dir`, stdout and stderr both.
fn log_to(dir: &Path, label: &str) -> std::io::Result<(Stdio, Stdio)> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{label}.log")))?;
    Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
}

fn start(program: &str, args: &[String], logs: &Path, label: &str) -> Result<Child, String> {
    let (out, err) = log_to(logs, label).map_err(|e| format!("cannot write {label}'s log: {e}"))?;
    crate::spawn(program, args, out, err).map_err(|e| format!("cannot start {program}: {e}"))
}

/// Asks a child to stop (SIGINT), then kills it after a few seconds.
async fn stop_child(mut child: Child) {
    crate::interrupt(&child);
    crate::wait_or_kill(&mut child).await;
}

impl Class {
    /// Writes the network for `setup`, starts the relay, the listener, the
    /// nodes not marked late and the oracle, and starts watching.
    pub async fn start(args: &mut Args, setup: &Setup, logs: &Path) -> Result<Class, String> {
        apply(args, setup);
        let network = write_network(args)?;
        let mut replicas = 0;
        let mut members = None;
        if args.consensus == Consensus::Pbft {
            write_replicas(args)?;
            let m = Membership::load(Path::new(&replicas_file(args)))?;
            replicas = m.n();
            members = Some(Arc::new(m));
        }
        let ready_file = logs.join("relay.ready");
        let _ = std::fs::remove_file(&ready_file);
        let mut relay_child = start(
            "toycoin-relay",
            &relay_args(args, &ready_file),
            logs,
            "relay",
        )?;
        let ready = wait_ready(&ready_file, Duration::from_secs(30), || {
            matches!(relay_child.try_wait(), Ok(None))
        })
        .await
        .ok_or_else(|| {
            format!(
                "the relay did not start on {}:{} (is the port taken? try --port 0; its log: {})",
                args.host,
                args.port,
                logs.join("relay.log").display()
            )
        })?;
        let web = web_addr(args);
        // A new network later (`Act::Restart`) serves its view at the same
        // address: the projector's page reconnects by itself.
        args.web = web;
        let specs = specs(args, ready.addr.port(), false, web, ready.token.is_some());
        let (facts, watcher) = watch::spawn(
            format!("127.0.0.1:{}", ready.addr.port()),
            network.profile(),
            members,
        );
        let mut class = Class {
            relay: std::net::SocketAddr::from(([127, 0, 0, 1], ready.addr.port())),
            token: ready.token,
            network,
            web,
            replicas,
            relay_child: Some(relay_child),
            children: BTreeMap::new(),
            specs,
            logs: logs.to_owned(),
            facts,
            watcher,
        };
        let labels: Vec<String> = class
            .specs
            .iter()
            .map(|s| s.label.clone())
            .filter(|l| !setup.late.iter().any(|n| *l == format!("node{n}")))
            .collect();
        for label in &labels {
            class.start_program(label)?;
        }
        class.wait_joined(&labels).await;
        class.learn_wallets(args);
        Ok(class)
    }

    /// Names each node's wallet from its key file (the nodes say it in
    /// their statuses too, every few seconds): the first blocks' miners
    /// are named at once.
    fn learn_wallets(&self, args: &Args) {
        let mut facts = watch::lock(&self.facts);
        for i in 1..=args.nodes {
            let name = format!("node{i}");
            let path = args.keys.join(format!("{name}.pem"));
            if let Ok(pem) = std::fs::read_to_string(&path) {
                if let Ok(wallet) = toycoin_common::wallet::Wallet::from_pem(&pem) {
                    facts.wallets.entry(wallet.fingerprint()).or_insert(name);
                }
            }
        }
    }

    /// Waits (a while at most) until the relay knows each program in
    /// `labels` that gives it a name (the nodes, the oracle), so that
    /// the first step's orders find them.
    async fn wait_joined(&self, labels: &[String]) {
        let named: Vec<&String> = labels.iter().filter(|l| *l != "listener").collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut poll = tokio::time::interval(Duration::from_millis(200));
        while tokio::time::Instant::now() < deadline {
            poll.tick().await;
            let Some(token) = self.token.as_deref() else {
                return;
            };
            if let Ok(reply) = command(self.relay, token, Ctl::Status).await {
                let clients = reply.status.map(|s| s.clients).unwrap_or_default();
                if named.iter().all(|l| clients.iter().any(|c| &c.name == *l)) {
                    return;
                }
            }
        }
    }

    /// Starts the program labelled `label` (`node2`, `oracle`, ...).
    pub fn start_program(&mut self, label: &str) -> Result<(), String> {
        if self.children.contains_key(label) {
            return Ok(());
        }
        let spec = self
            .specs
            .iter()
            .find(|s| s.label == label)
            .ok_or_else(|| format!("no program {label} in this lesson"))?;
        let child = start(spec.program, &spec.args, &self.logs, label)?;
        self.children.insert(label.to_owned(), child);
        Ok(())
    }

    /// Stops the program labelled `label`.
    pub async fn stop_program(&mut self, label: &str) {
        if let Some(child) = self.children.remove(label) {
            stop_child(child).await;
        }
    }

    /// Restarts node `n` with `threads` mining threads.
    pub async fn set_threads(
        &mut self,
        args: &mut Args,
        n: usize,
        threads: usize,
    ) -> Result<(), String> {
        let mut all: Vec<usize> = (0..args.nodes)
            .map(|i| crate::at(&args.threads, i, 1))
            .collect();
        if let Some(t) = all.get_mut(n - 1) {
            *t = threads;
        }
        args.threads = all;
        let fresh = specs(
            args,
            self.relay.port(),
            false,
            self.web,
            self.token.is_some(),
        );
        let label = format!("node{n}");
        if let (Some(old), Some(new)) = (
            self.specs.iter_mut().find(|s| s.label == label),
            fresh.into_iter().find(|s| s.label == label),
        ) {
            *old = new;
        }
        self.stop_program(&label).await;
        self.start_program(&label)?;
        self.wait_joined(&[label]).await;
        Ok(())
    }

    /// The nodes running now, by name.
    pub fn running_nodes(&self) -> Vec<String> {
        self.children
            .keys()
            .filter(|l| l.starts_with("node"))
            .cloned()
            .collect()
    }

    /// Gives the relay one of the teacher's commands.
    pub async fn control(&self, cmd: Ctl) -> Result<String, String> {
        let token = self
            .token
            .as_deref()
            .ok_or("the relay takes no commands (no token)")?;
        let reply = command(self.relay, token, cmd).await?;
        if reply.ok {
            Ok(reply.message)
        } else {
            Err(reply.message)
        }
    }

    /// Stops every program side by side, the relay last.
    pub async fn stop(&mut self) {
        self.watcher.abort();
        let mut children = std::mem::take(&mut self.children);
        for child in children.values() {
            crate::interrupt(child);
        }
        for child in children.values_mut() {
            crate::wait_or_kill(child).await;
        }
        if let Some(relay) = self.relay_child.take() {
            stop_child(relay).await;
        }
    }
}
