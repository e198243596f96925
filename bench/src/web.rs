//! `web`: the listener's web view under a long chain and many browsers.
//! A `toycoin-listener --web` (built beside this program) on an in-process
//! relay is sent a chain of `blocks` blocks; then
//! - Chromium (Debian's `chromium`, or `CHROMIUM`) loads the page and the
//!   page's own clock says how long drawing the snapshot took (the
//!   `data-draw-ms` it writes on `<body>`);
//! - the listener's CPU time (from `/proc`) is measured while a block
//!   arrives every half second, first with no browser, then with
//!   `browsers` event streams open.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;
use toycoin_common::chain::Chain;
use toycoin_common::message::encode_bloc;
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};

use crate::chains::extend;
use crate::programs::{quiet_relay, sibling, start_on};

/// CPU seconds (user + system) the process has used, from /proc.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces), in ().
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

async fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// Waits until the snapshot's height is `height`.
async fn until_height(addr: SocketAddr, height: usize) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let want = format!("\"height\":{height},");
    while Instant::now() < deadline {
        if get(addr, "/api/snapshot").await?.contains(&want) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the listener never reached height {height}"))
}

/// The listener's CPU use (percent of one core) over `secs` seconds while
/// a block is published every half second.
async fn cpu_while_blocks_arrive(
    pid: u32,
    chain: &mut Chain,
    publisher: &mut RelayClient,
    secs: u64,
) -> Result<f64, String> {
    let before = cpu_secs(pid).ok_or("cannot read /proc")?;
    let start = Instant::now();
    for _ in 0..secs * 2 {
        let block = extend(chain, 1, 0, |_| Vec::new());
        publisher
            .publish(DEFAULT_TOPIC, &encode_bloc(&block))
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let used = cpu_secs(pid).ok_or("cannot read /proc")? - before;
    Ok(100.0 * used / start.elapsed().as_secs_f64())
}

pub async fn run(blocks: usize, browsers: usize, secs: u64) -> Result<Vec<String>, String> {
    let listener_bin = sibling("toycoin-listener")?;
    let network = toycoin_common::network::Network::steady(5.0, None);
    let relay = quiet_relay(network.clone()).await?;
    let mut listener = start_on(
        &listener_bin,
        relay.addr.port(),
        ["--web", "127.0.0.1:0", "--quiet", "--passive"],
        Stdio::null(),
        Stdio::piped(),
    )?;
    let pid = listener.id().ok_or("no pid")?;
    let mut lines = BufReader::new(listener.stderr.take().ok_or("no stderr")?).lines();
    let addr: SocketAddr = loop {
        let line = lines
            .next_line()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the listener exited")?;
        if let Some(rest) = line.split("http://").nth(1) {
            break rest
                .trim_end_matches('/')
                .parse()
                .map_err(|_| line.clone())?;
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let mut publisher = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("web: mining a {blocks}-block chain...");
    let mut chain = Chain::new(network.profile());
    let all = extend(&mut chain, blocks, 4 * secs as usize, |_| Vec::new());
    for part in all.chunks(100) {
        publisher
            .publish(DEFAULT_TOPIC, &encode_bloc(part))
            .await
            .map_err(|e| e.to_string())?;
    }
    until_height(addr, blocks - 1).await?;
    let snapshot_bytes = get(addr, "/api/snapshot").await?.len();

    // Drawing, in Chromium.
    let browser = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
    let profile_dir =
        std::env::temp_dir().join(format!("toycoin-web-bench-{}", std::process::id()));
    let started = Instant::now();
    let dom = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .arg("--timeout=3000")
        .arg(format!("--user-data-dir={}", profile_dir.display()))
        .args(["--dump-dom", &format!("http://{addr}/")])
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    let browser_secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&profile_dir);
    let draw_ms = dom.ok().and_then(|o| {
        let dom = String::from_utf8_lossy(&o.stdout).into_owned();
        let rest = dom.split("data-draw-ms=\"").nth(1)?;
        rest.split('"').next()?.parse::<f64>().ok()
    });

    // CPU with no browser, then with `browsers` event streams.
    let idle = cpu_while_blocks_arrive(pid, &mut chain, &mut publisher, secs).await?;
    let mut streams = Vec::new();
    for _ in 0..browsers {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let request = format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        s.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        // Read and drop everything, as a browser keeping up would.
        streams.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }));
    }
    let watched = cpu_while_blocks_arrive(pid, &mut chain, &mut publisher, secs).await?;
    for s in streams {
        s.abort();
    }
    let _ = listener.kill().await;
    relay.stop().await.map_err(|e| e.to_string())?;

    println!("\n== web: the listener's web view, a {blocks}-block chain ==");
    println!("snapshot: {snapshot_bytes} bytes (40 blocks drawn, the rest one collapsed run)");
    match draw_ms {
        Some(ms) => println!(
            "Chromium drew the page in {ms:.1} ms (the page's own clock; {browser_secs:.2} s for the whole headless run)"
        ),
        None => println!("Chromium: not measured ({browser} missing or failed)"),
    }
    println!(
        "listener CPU, a block every 0.5 s for {secs} s: {idle:.1}% of a core with no browser, {watched:.1}% with {browsers} browsers"
    );
    let mut figures = vec![
        format!("web_blocks={blocks}"),
        format!("web_snapshot_bytes={snapshot_bytes}"),
        format!("web_cpu_pct_0_browsers={idle:.1}"),
        format!("web_cpu_pct_{browsers}_browsers={watched:.1}"),
    ];
    if let Some(ms) = draw_ms {
        figures.push(format!("web_draw_ms={ms:.1}"));
    }
    Ok(figures)
}
