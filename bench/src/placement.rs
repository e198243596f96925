//! Where the servers run, for the 1→1 latency: both servers (our relay and
//! nats-server, each its own process) pinned to the clients' CPU, then
//! both to another CPU, the clients (this process) pinned to one CPU
//! throughout. On a virtual machine a wake-up sent to another CPU can cost
//! more than everything else on a message's path; left to the kernel, each
//! server lands on one side or the other by chance, and the ratio of the
//! two servers' latencies says where they landed rather than how fast
//! they are. Pinned alike, they are compared on equal terms.
//!
//! `taskset` (util-linux) does the pinning, so no unsafe code is needed.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::load::{Load, Outcome};
use crate::{free_port, median, serve, side_by_side, Server};

/// The CPU the clients are pinned to (the servers' "other" CPU is 0).
const CLIENTS_CPU: usize = 1;

/// Pins every thread of this process to `cpus` (a `taskset` list) while
/// alive; back to the affinity it had when dropped.
struct Pinned {
    /// The affinity mask before, as `taskset -p` prints it (hexadecimal).
    before: String,
}

impl Pinned {
    fn to(cpus: &str) -> Result<Pinned, String> {
        let before = affinity()?;
        taskset_self(&["-c", cpus])?;
        Ok(Pinned { before })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = taskset_self(&[&self.before]);
    }
}

/// This process's affinity mask ("pid N's current affinity mask: 3").
fn affinity() -> Result<String, String> {
    let pid = std::process::id().to_string();
    let out = Command::new("taskset")
        .args(["-p", &pid])
        .output()
        .map_err(|e| format!("cannot run taskset ({e}): it comes with util-linux"))?;
    String::from_utf8_lossy(&out.stdout)
        .rsplit(':')
        .next()
        .map(|mask| mask.trim().to_owned())
        .filter(|mask| !mask.is_empty() && mask.chars().all(|c| c.is_ascii_hexdigit() || c == ','))
        .ok_or_else(|| "taskset -p printed no affinity mask".into())
}

/// `taskset -a -p ARGS PID` for this process: every thread.
fn taskset_self(args: &[&str]) -> Result<(), String> {
    let pid = std::process::id().to_string();
    let status = Command::new("taskset")
        .arg("-a")
        .arg("-p")
        .args(args)
        .arg(&pid)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run taskset ({e}): it comes with util-linux"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "taskset -a -p {} {pid} failed: {status}",
            args.join(" ")
        ))
    }
}

/// Starts `program args` pinned to `cpu` and waits until it accepts on
/// `port`.
async fn start_pinned(
    cpu: usize,
    program: &str,
    args: &[&str],
    port: u16,
) -> Result<Server, String> {
    let mut command = Command::new("taskset");
    command.args(["-c", &cpu.to_string(), program]).args(args);
    serve(command, port, program).await
}

/// The 1→1 load of the relay suite, `rounds` times per placement; prints
/// a table and returns its figures.
pub async fn run(load: &Load, rounds: usize) -> Result<Vec<String>, String> {
    let count = std::thread::available_parallelism().map_or(1, |n| n.get());
    if count < 2 {
        return Err("placement needs two CPUs".into());
    }
    let relay = crate::programs::sibling("toycoin-relay")?;
    let relay = relay.to_string_lossy().into_owned();
    let _pinned = Pinned::to(&CLIENTS_CPU.to_string())?;
    let mut figures = Vec::new();
    println!("\n== relay 1->1 at 2000/s, each server its own process, the clients on CPU {CLIENTS_CPU} ==");
    println!(
        "{:<24} {:<10} {:>8} {:>8} {:>8}",
        "servers", "server", "p50 us", "p99 us", "lost"
    );
    for (label, key, cpu) in [
        ("on the clients' CPU", "same", CLIENTS_CPU),
        ("on another CPU", "apart", 0),
    ] {
        let (ours_port, nats_port) = (
            free_port().map_err(|e| e.to_string())?,
            free_port().map_err(|e| e.to_string())?,
        );
        let (ours_port_arg, nats_port_arg) = (ours_port.to_string(), nats_port.to_string());
        let ours_args = [
            "--host",
            "127.0.0.1",
            "--port",
            &ours_port_arg,
            "--no-control",
            "--summary",
            "0",
        ];
        let nats_args = ["-a", "127.0.0.1", "-p", &nats_port_arg];
        let _ours = start_pinned(cpu, &relay, &ours_args, ours_port).await?;
        let _nats = start_pinned(cpu, "nats-server", &nats_args, nats_port).await?;
        let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let (ours, nats) = side_by_side(
            at(ours_port),
            at(nats_port),
            load,
            rounds,
            &format!("placement {key}"),
        )
        .await?;
        for (server, outs) in [("toycoin", &ours), ("nats", &nats)] {
            println!(
                "{:<24} {:<10} {:>8.0} {:>8.0} {:>8.0}",
                label,
                server,
                median(outs, |o| o.p50_us),
                median(outs, |o| o.p99_us),
                median(outs, |o| o.lost as f64),
            );
        }
        for (what, figure) in [
            ("p50", (|o: &Outcome| o.p50_us) as fn(&Outcome) -> f64),
            ("p99", |o: &Outcome| o.p99_us),
        ] {
            let (a, b) = (median(&ours, figure), median(&nats, figure));
            figures.push(format!("placement_{key}_{what}_us={a:.0}"));
            figures.push(format!("placement_{key}_nats_{what}_us={b:.0}"));
            figures.push(format!(
                "ratio_placement_{key}_{what}={:.2}",
                a / b.max(1e-9)
            ));
        }
    }
    println!(
        "ratios: toycoin/nats with both servers in the same place (<= 1 is as fast or faster)"
    );
    Ok(figures)
}
