//! The book (`docs/`, built by mdBook) and the README: every relative
//! link leads to a file that is there, and every `#anchor` to a heading in
//! it; every chapter is in `SUMMARY.md`; no chapter links outside `docs/`
//! (the built book would not have it). With `mdbook` installed (`.ci/run`
//! installs it) the book is built; without it that part says "skipped".

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Every Markdown file under `dir`.
fn markdown(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(markdown(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The targets of `[text](target)` links and images, outside code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code is not a link.
        let plain: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = plain.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    out
}

/// A heading's anchor as mdBook and GitHub make it.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// What is wrong with the links of `file` (`inside`: they must stay in
/// that directory).
fn broken(file: &Path, inside: Option<&Path>) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let dir = file.parent().unwrap();
    let mut out = Vec::new();
    for link in links(&text) {
        if link.contains("://") || link.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match link.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (link.as_str(), None),
        };
        let target = if path.is_empty() {
            file.to_owned()
        } else {
            dir.join(path)
        };
        let Ok(target) = target.canonicalize() else {
            out.push(format!("{}: {link}: no such file", file.display()));
            continue;
        };
        if let Some(inside) = inside {
            if !target.starts_with(inside.canonicalize().unwrap()) {
                out.push(format!(
                    "{}: {link}: outside docs/, not in the built book",
                    file.display()
                ));
            }
        }
        if let Some(anchor) = anchor {
            if target.extension().is_some_and(|e| e == "md") && !anchors(&target).contains(anchor) {
                out.push(format!("{}: {link}: no such heading", file.display()));
            }
        }
    }
    out
}

#[test]
fn every_link_of_the_book_and_readme_leads_somewhere() {
    let docs = root().join("docs");
    let mut wrong = broken(&root().join("README.md"), None);
    for file in markdown(&docs) {
        wrong.extend(broken(&file, Some(&docs)));
    }
    assert!(wrong.is_empty(), "broken links:\n{}", wrong.join("\n"));
}

#[test]
fn every_chapter_is_in_the_summary() {
    let docs = root().join("docs");
    let summary = std::fs::read_to_string(docs.join("SUMMARY.md")).unwrap();
    let listed: BTreeSet<PathBuf> = links(&summary)
        .iter()
        .map(|l| docs.join(l).canonicalize().unwrap())
        .collect();
    let missing: Vec<String> = markdown(&docs)
        .into_iter()
        .filter(|f| !f.ends_with("SUMMARY.md"))
        .filter(|f| !listed.contains(&f.canonicalize().unwrap()))
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "not in SUMMARY.md: {missing:?}");
}

#[test]
fn the_readme_is_a_front_page() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines; the rest belongs in docs/"
    );
    // The two commands and the lessons on the first screen.
    let first: String = readme.lines().take(60).collect::<Vec<_>>().join("\n");
    assert!(first.contains("cargo run --release -p toycoin-demo"));
    assert!(first.contains("cargo test --workspace"));
    assert!(first.contains("--lesson list"), "{first}");
}

#[test]
fn the_book_builds() {
    let found = std::process::Command::new("mdbook")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "mdbook is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: mdbook is not installed (cargo install mdbook)");
        return;
    }
    let out = std::env::temp_dir().join(format!("toycoin-book-{}", std::process::id()));
    let status = std::process::Command::new("mdbook")
        .arg("build")
        .arg(root().join("docs"))
        .arg("--dest-dir")
        .arg(&out)
        .output()
        .unwrap();
    let built = out.join("lessons").join("forks.html").exists();
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        status.status.success(),
        "mdbook build failed:\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(built, "no lessons/forks.html in the built book");
}

#[test]
fn links_and_anchors_are_read_as_mdbook_makes_them() {
    assert_eq!(
        slug(" pBFT: agreement by vote, final at once"),
        "pbft-agreement-by-vote-final-at-once"
    );
    assert_eq!(slug(" `--json` fields"), "--json-fields");
    assert_eq!(
        links("see [a](b.md#c) and `[x](y)`\n```\n[p](q)\n```\n![i](j.png)"),
        vec!["b.md#c", "j.png"]
    );
}
