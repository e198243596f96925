//! Every lesson (`toycoin-demo --lesson NAME --auto`) runs end to end on a
//! network of its own, with a 1 s target (the lessons' waits are counted
//! in targets), and the lesson itself checks that the event each step
//! waited for happened: the fork, the bits rising, the 6 confirmations,
//! the refusals, the view change. A step whose event does not come within
//! its limit says so (`✗`) and the lesson exits 1.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use toycoin_tests::program::Program;

/// Longest a lesson may take here (the slowest takes about a minute).
const LIMIT: Duration = Duration::from_secs(300);

/// Runs lesson `name` with `--auto` and returns what it printed, after
/// checking that it ran every step and each step's event happened.
async fn lesson(name: &str, steps: usize) -> String {
    let began = std::time::Instant::now();
    let mut demo = Program::start(
        "toycoin-demo",
        &[
            "--no-build",
            "--lesson",
            name,
            "--auto",
            "--target",
            "1",
            "--port",
            "0",
            "--no-web",
            "--no-record",
            "--keys",
            "keys",
        ],
    )
    .stop_gently_on_drop();
    let status = match tokio::time::timeout(LIMIT, demo.exited()).await {
        Ok(status) => status,
        Err(_) => {
            // Ctrl-C: the demo stops every program it started.
            demo.interrupt();
            let _ = tokio::time::timeout(Duration::from_secs(20), demo.exited()).await;
            panic!(
                "lesson {name} did not end within {LIMIT:?}:\n{}",
                demo.output()
            );
        }
    };
    let out = demo.output();
    assert!(
        status.success(),
        "lesson {name} exited with {status}:\n{out}"
    );
    assert!(
        out.contains(&format!(
            "Lesson {name}: {steps} of {steps} steps happened as the lecture says."
        )),
        "lesson {name}:\n{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("  ✓ ")).count(),
        steps,
        "lesson {name}: one ✓ a step:\n{out}"
    );
    assert!(!out.contains("✗"), "lesson {name}:\n{out}");
    eprintln!("lesson {name}: {:.1} s", began.elapsed().as_secs_f64());
    out
}

/// The `✓` line of step `n` (1-based) and what follows it up to the next
/// step's title.
fn step(out: &str, n: usize) -> String {
    out.split("\nStep ")
        .nth(n)
        .and_then(|s| s.split("  ✓ ").nth(1))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn lesson_race_a_slow_node_loses_a_race() {
    let out = lesson("race", 3).await;
    assert!(step(&out, 2).contains("Lost the race for block"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lesson_forks_held_then_settled_and_the_losers_payments_mined_again() {
    let out = lesson("forks", 7).await;
    assert!(
        step(&out, 2).contains("neither has heard the other's"),
        "{out}"
    );
    assert!(step(&out, 3).contains("two blocks at height"), "{out}");
    assert!(step(&out, 4).contains("all 2 nodes are on block"), "{out}");
    assert!(step(&out, 5).contains("carrying"), "{out}");
    assert!(step(&out, 6).contains("all 2 nodes are on block"), "{out}");
    // The partition's race is won by hash power on average, not every
    // time: where the half with the payments won, none was left off.
    let seventh = step(&out, 7);
    assert!(
        seventh.contains("are in it again")
            || seventh.contains("no payment waits to be mined again"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lesson_difficulty_rises_when_a_node_joins() {
    let out = lesson("difficulty", 3).await;
    assert!(step(&out, 2).contains("the bits rose from"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lesson_confirmations_to_6_and_a_double_spend() {
    let out = lesson("confirmations", 3).await;
    assert!(step(&out, 1).contains("6 confirmations"), "{out}");
    assert!(
        step(&out, 2).contains("Paid out after 1 confirmation"),
        "{out}"
    );
    assert!(step(&out, 3).contains("frames refused"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lesson_cheating_is_refused_and_the_originals_flaw_shown() {
    let out = lesson("cheating", 5).await;
    assert!(step(&out, 3).contains("frames refused"), "{out}");
    assert!(
        step(&out, 4).contains("is larger than the 32768 allowed"),
        "{out}"
    );
    assert!(
        step(&out, 5).contains("the original's flaw, shown"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lesson_byzantine_four_failures_and_a_partition() {
    let out = lesson("byzantine", 6).await;
    assert!(step(&out, 1).contains("node2 has said nothing"), "{out}");
    assert!(step(&out, 2).contains("sent again and again"), "{out}");
    assert!(step(&out, 3).contains("invalid block(s) refused"), "{out}");
    assert!(step(&out, 4).contains("past the longest chain"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lesson_pbft_final_at_once_and_a_view_change() {
    let out = lesson("pbft", 4).await;
    assert!(step(&out, 1).contains("6 confirmations"), "{out}");
    assert!(step(&out, 2).contains("2n(n-1)+n = 28 for n = 4"), "{out}");
    assert!(
        step(&out, 2).contains("to proof of work's 6 confirmations in this lesson"),
        "{out}"
    );
    // A view change (the new primary is the next in turn, or a later one
    // when a view change times out on a busy machine).
    assert!(step(&out, 3).contains("primary now node"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lesson_concurrency_two_threads_hash_faster() {
    let out = lesson("concurrency", 2).await;
    assert!(step(&out, 2).contains("on 2 ("), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lessons_are_listed_and_an_unknown_one_refused() {
    let mut list = Program::start("toycoin-demo", &["--no-build", "--lesson", "list"]);
    assert!(list.exited().await.success());
    let out = list.output();
    for name in [
        "race",
        "forks",
        "difficulty",
        "confirmations",
        "cheating",
        "byzantine",
        "pbft",
        "concurrency",
    ] {
        assert!(
            out.contains(&format!("  {name} ")),
            "{name} not listed:\n{out}"
        );
    }
    let mut unknown = Program::start(
        "toycoin-demo",
        &["--no-build", "--lesson", "nope", "--keys", "keys"],
    );
    assert_eq!(unknown.exited().await.code(), Some(2));
    assert!(unknown.output().contains("no lesson \"nope\""));
}

/// Without `--auto` and with the web view, a lesson waits after each step
/// for the teacher, and the lesson panel's Next button (a POST from this
/// machine) lets it go on; the panel says where the lesson stands, and in
/// Chromium it is drawn with the step and the button.
#[tokio::test(flavor = "multi_thread")]
async fn a_lesson_goes_on_when_the_web_views_next_is_pressed() {
    use toycoin_tests::http::{get, post};
    let wait = Duration::from_secs(120);
    let mut demo = Program::start(
        "toycoin-demo",
        &[
            "--no-build",
            "--lesson",
            "pbft",
            "--target",
            "1",
            "--port",
            "0",
            "--web",
            "127.0.0.1:0",
            "--no-record",
            "--keys",
            "keys",
        ],
    )
    .stop_gently_on_drop();
    let line = demo
        .wait_line("the web view's address", wait, |l| {
            l.starts_with("Web view: http://")
        })
        .await;
    let addr = line
        .trim_start_matches("Web view: http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let browser = toycoin_tests::browser::Browser::find("draw the lesson panel");
    for step in 1..=3u64 {
        demo.wait_line("the teacher's turn", wait, |l| {
            l.contains("[Enter or the web view's Next: next step")
        })
        .await;
        // The panel says the step happened and waits for Next.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let lesson = loop {
            let (_, body) = get(&addr, "/api/snapshot", Duration::from_secs(5)).await;
            let snap: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let lesson = snap["lesson"].clone();
            if lesson["step"] == step && lesson["next"] == true {
                break lesson;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the panel did not reach step {step}: {snap}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(lesson["lesson"], "pbft");
        assert_eq!(lesson["state"], "happened", "{lesson}");
        if let Some(browser) = &browser {
            let dom = browser.dom(&format!("http://{addr}/")).await;
            assert!(dom.contains("<section id=\"lesson\" aria-live"), "{dom}");
            assert!(dom.contains(&format!("step {step} of 4")), "{dom}");
            assert!(dom.contains("✓ ["), "{dom}");
            assert!(
                dom.contains("<button type=\"button\" id=\"lesson-next\" title"),
                "the Next button is hidden: {dom}"
            );
            // The paper's diagram of the last batch: arrows drawn.
            let arrows: usize = dom
                .split("id=\"pbft-diagram\" data-arrows=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if step == 1 {
                // Proof of work first: no votes to draw.
                assert!(
                    dom.contains(">Proof of work: final after 6 blocks<"),
                    "{dom}"
                );
                assert_eq!(arrows, 0, "{dom}");
            } else {
                assert!(arrows >= 10, "{arrows} arrows: {dom}");
            }
            if step == 2 {
                // The same address serves the new network's view.
                assert!(dom.contains(">A batch final<"), "{dom}");
            } else if step == 3 {
                // The silent primary: missing from the view change, named.
                assert!(dom.contains(">A silent primary<"), "{dom}");
                assert!(dom.contains("view change to view"), "{dom}");
                assert!(dom.contains("class=\"lane-name silent\""), "{dom}");
            }
        }
        // Still waiting: nothing goes on without the teacher.
        assert!(!demo.output().contains(&format!("Step {}/4", step + 1)));
        let (code, said) = post(
            &addr,
            &format!("/api/lesson/next?step={step}"),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(code, 200, "{said}");
        demo.wait_line("the next step", wait, |l| {
            l.starts_with(&format!("Step {}/4", step + 1))
        })
        .await;
    }
    let status = tokio::time::timeout(LIMIT, demo.exited()).await.unwrap();
    let out = demo.output();
    assert!(status.success(), "{out}");
    assert!(
        out.contains("Lesson pbft: 4 of 4 steps happened as the lecture says."),
        "{out}"
    );
}
