//! The student's program: started with the checker's relay filled in,
//! its output kept (the last lines, bounded in bytes), its end noticed,
//! and stopped, with whatever it started, when the checker is done.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// Lines of the program's output kept for the report.
pub const TAIL_LINES: usize = 40;
/// Longest line kept.
pub const MAX_LINE: usize = 300;

/// A running program.
#[derive(Debug)]
pub struct Program {
    child: Child,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// The tasks reading its output.
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Its exit status, once it ended.
    ended: Option<String>,
}

impl Program {
    /// Starts `args[0]` with the rest as its arguments, in a process group
    /// of its own.
    pub fn start(args: &[String]) -> Result<Program, String> {
        let (program, rest) = args
            .split_first()
            .ok_or_else(|| "no program to check: give it after --".to_string())?;
        let mut command = Command::new(program);
        command
            .args(rest)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(keep_lines(out, tail.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(keep_lines(err, tail.clone())));
        }
        Ok(Program {
            child,
            tail,
            readers,
            ended: None,
        })
    }

    /// How it ended, if it has (`exit status: 1`, `signal: 11 (SIGSEGV)`).
    pub fn ended(&mut self) -> Option<String> {
        if self.ended.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.ended = Some(status.to_string());
            }
        }
        self.ended.clone()
    }

    /// Its last lines of output (once it ended, all it wrote: what it
    /// wrote last is read first, for a second at most).
    pub async fn tail(&mut self) -> Vec<String> {
        if self.ended().is_some() {
            for reader in std::mem::take(&mut self.readers) {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), reader).await;
            }
        }
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Stops it and everything it started.
    pub async fn stop(&mut self) {
        self.kill_group();
        let _ = self.child.kill().await;
    }

    fn kill_group(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self
            .child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            // The group the program leads (it was started in a group of its
            // own): it and whatever it started. Not procps' `kill` command:
            // its 4.0.2 took `kill -KILL -PID` for every process we may
            // signal, the checker and its shell included.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Reads `from` line by line into `tail`, keeping the last
/// [`TAIL_LINES`], each at most [`MAX_LINE`] bytes: a program that prints
/// without end costs the checker nothing more.
async fn keep_lines(from: impl AsyncRead + Unpin, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(from);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // A line longer than MAX_LINE is read in pieces, the rest dropped.
        let read = (&mut lines)
            .take(64 * 1024)
            .read_until(b'\n', &mut buf)
            .await;
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let line = toycoin_common::log::clipped(text.trim_end(), MAX_LINE).to_owned();
                if let Ok(mut t) = tail.lock() {
                    if t.len() == TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        }
    }
}
