//! A grade, check by check: what was sent, what was expected, what the
//! program did, the verdict and a hint; as text for a student and as
//! JSON for a script.

use serde::Serialize;

/// How one check went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// What the original Python node does too, under `--profile toycoin`:
    /// a flaw of the protocol, not of the student's program.
    #[serde(rename = "known flaw")]
    KnownFlaw,
    /// Not run: an earlier failure left nothing to check it on.
    Skipped,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::KnownFlaw => "FLAW",
            Verdict::Skipped => "SKIP",
        }
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Its name (`mines`, `refuses-double-spend`, ...).
    pub name: &'static str,
    /// What the checker sent the program.
    pub sent: String,
    /// What a program that follows the protocol does.
    pub expected: String,
    /// What this program did.
    pub did: String,
    pub verdict: Verdict,
    /// Where to look when it failed (empty when it passed).
    pub hint: String,
}

/// Every check, in the order they ran.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// What was checked: `node` or `client`.
    pub role: String,
    pub profile: String,
    pub program: String,
    pub checks: Vec<Check>,
    /// The program's last lines of output, when a check failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output_tail: Vec<String>,
}

impl Report {
    /// Whether no check failed (known flaws pass).
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.verdict, Verdict::Fail | Verdict::Skipped))
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == verdict).count()
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut out = format!(
            "toycoin-check {}, {} profile: {}\n\n",
            self.role, self.profile, self.program
        );
        for c in &self.checks {
            out += &format!("{} {}\n", c.verdict.word(), c.name);
            out += &format!("     sent:     {}\n", c.sent);
            out += &format!("     expected: {}\n", c.expected);
            out += &format!("     did:      {}\n", c.did);
            if !c.hint.is_empty() {
                out += &format!("     hint:     {}\n", c.hint);
            }
        }
        out += &format!(
            "\n{} passed, {} failed, {} known flaws of the original, {} skipped\n",
            self.count(Verdict::Pass),
            self.count(Verdict::Fail),
            self.count(Verdict::KnownFlaw),
            self.count(Verdict::Skipped),
        );
        if !self.output_tail.is_empty() {
            out += "\nThe program's last lines:\n";
            for line in &self.output_tail {
                out += &format!("  | {line}\n");
            }
        }
        out
    }

    /// The report for scripts: one JSON object.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
