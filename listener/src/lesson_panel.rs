//! The web view's lesson panel: a lesson run by `toycoin-demo --lesson`
//! writes where it stands to a file in its private directory
//! ([`STATE_FILE`], JSON: the lesson, the step, what to watch, what it
//! waits for, what happened); the listener shows it (`--lesson-dir`), and
//! its Next button, pressed on the teacher's machine, writes the step it
//! was pressed at to [`NEXT_FILE`] for the lesson to go on. Nothing of it
//! travels over the network: a student can neither write the panel nor
//! press Next.

use std::path::Path;

use serde_json::Value;

/// Where a lesson says where it stands.
pub const STATE_FILE: &str = "lesson.json";
/// Where the Next button writes the step it was pressed at.
pub const NEXT_FILE: &str = "next";
/// Most bytes of a lesson's state read.
pub const MAX_STATE_BYTES: u64 = 64 * 1024;

/// The lesson's state in `dir`, if there is one (and it is a JSON object
/// of at most [`MAX_STATE_BYTES`]).
pub fn read_state(dir: &Path) -> Option<Value> {
    let path = dir.join(STATE_FILE);
    if std::fs::metadata(&path).ok()?.len() > MAX_STATE_BYTES {
        return None;
    }
    let value: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    value.is_object().then_some(value)
}

/// Writes `text` to `dir/name`, whole or not at all (a file renamed into
/// place): the reader never sees half of it.
fn write_whole(dir: &Path, name: &str, text: String) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, dir.join(name))
}

/// Writes `value` as the lesson's state in `dir`.
pub fn write_state(dir: &Path, value: &Value) -> std::io::Result<()> {
    write_whole(dir, STATE_FILE, value.to_string())
}

/// Records that Next was pressed at `step`.
pub fn press_next(dir: &Path, step: u64) -> std::io::Result<()> {
    write_whole(dir, NEXT_FILE, step.to_string())
}

/// The step Next was last pressed at, if it was.
pub fn next_pressed(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join(NEXT_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_and_next_go_through_their_files() {
        let dir = std::env::temp_dir().join(format!("toycoin-panel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_state(&dir), None);
        assert_eq!(next_pressed(&dir), None);
        let state = serde_json::json!({ "lesson": "forks", "step": 2 });
        write_state(&dir, &state).unwrap();
        assert_eq!(read_state(&dir), Some(state));
        press_next(&dir, 2).unwrap();
        assert_eq!(next_pressed(&dir), Some(2));
        // Not an object, or too big: no panel.
        std::fs::write(dir.join(STATE_FILE), "[1]").unwrap();
        assert_eq!(read_state(&dir), None);
        std::fs::write(
            dir.join(STATE_FILE),
            vec![b' '; MAX_STATE_BYTES as usize + 1],
        )
        .unwrap();
        assert_eq!(read_state(&dir), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
