//! Headless Chromium on a page of the web view, for the tests that look
//! at the page as a browser draws it.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long Chromium may take to load, run and dump a page.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// A Chromium to drive: Debian's `chromium`, or the one `CHROMIUM` names.
#[derive(Debug)]
pub struct Browser {
    program: String,
    profile: PathBuf,
}

impl Browser {
    /// The browser, if this machine has it; without it, `None` after
    /// printing "skipped" (in CI, where `.ci/run` installs it, its absence
    /// fails the test instead).
    pub fn find(what: &str) -> Option<Browser> {
        let program = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
        let present = std::process::Command::new(&program)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !present {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but there is no {program} to {what}"
            );
            println!("skipped: no {program} to {what}");
            return None;
        }
        let profile = std::env::temp_dir().join(format!(
            "toycoin-browser-{}-{}",
            std::process::id(),
            uuid_ish()
        ));
        Some(Browser { program, profile })
    }

    /// Chromium on `url` with `what` (`--dump-dom`, `--screenshot=...`):
    /// its standard output.
    async fn run(&self, what: &[String], url: &str) -> std::process::Output {
        let mut c = tokio::process::Command::new(&self.program);
        c.args(["--headless", "--no-sandbox", "--disable-gpu"])
            .args(["--disable-dev-shm-usage", "--timeout=3000"])
            .arg(format!("--user-data-dir={}", self.profile.display()))
            .args(what)
            .arg(url)
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        tokio::time::timeout(BROWSER_TIMEOUT, c.output())
            .await
            .expect("chromium finished")
            .expect("chromium ran")
    }

    /// The page at `url` once its scripts ran (`--dump-dom`).
    pub async fn dom(&self, url: &str) -> String {
        let out = self.run(&["--dump-dom".into()], url).await;
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A 1600x1000 picture of the page at `url`, written to `png`.
    pub async fn screenshot(&self, url: &str, png: &Path) -> bool {
        let out = self
            .run(
                &[
                    "--hide-scrollbars".into(),
                    "--window-size=1600,1000".into(),
                    format!("--screenshot={}", png.display()),
                ],
                url,
            )
            .await;
        out.status.success() && png.exists()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A number that differs between browsers of one test process.
fn uuid_ish() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
