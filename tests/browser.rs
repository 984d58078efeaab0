//! The HTML reports in a real headless browser (Chromium's headless shell,
//! from the Debian packages: `apt-get install chromium-headless-shell`):
//! the evaluation report's script runs without an error and filters its
//! cases, and a run's timeline renders its bars.
//!
//! Skipped, with a note, where no browser is installed; CI installs one and
//! sets `PROMPT_CHAIN_BROWSER=required`, which turns the skip into a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use prompt_chain::Outcome;
use prompt_chain::eval::{Case, Eval, ExactMatch};
use prompt_chain::prelude::*;
use serde_json::json;

const BROWSERS: [&str; 4] = [
    "chromium-headless-shell",
    "chromium",
    "chromium-browser",
    "google-chrome",
];

/// The browser to use, or `None` (after saying why) where there is none.
fn browser() -> Option<PathBuf> {
    let found = BROWSERS.iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var("PROMPT_CHAIN_BROWSER").as_deref() != Ok("required"),
            "PROMPT_CHAIN_BROWSER=required and no browser found (apt-get install chromium-headless-shell)"
        );
        eprintln!("browser tests skipped: no headless Chromium installed");
    }
    found
}

/// The page's DOM after its scripts ran, as the browser serialises it.
fn rendered(browser: &Path, page: &Path, fragment: &str) -> String {
    let url = format!("file://{}{fragment}", page.display());
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=2000",
            "--dump-dom",
        ])
        .arg(&url)
        .output()
        .expect("the browser starts");
    assert!(
        output.status.success(),
        "the browser failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn page(name: &str, html: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prompt-chain-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let path = dir.join(name);
    std::fs::write(&path, html).expect("the page is written");
    path
}

#[step]
async fn double(_cx: &StepCx, n: &i64) -> StepResult<i64> {
    Ok(n * 2)
}

#[step]
async fn parity(_cx: &StepCx, n: &i64) -> StepResult<String> {
    Ok(if n % 2 == 0 { "even" } else { "odd" }.to_owned())
}

#[step]
async fn describe(_cx: &StepCx, doubled: &i64, kind: &str) -> StepResult<String> {
    Ok(format!("{kind}, doubled {doubled}"))
}

#[chain]
async fn numbers(n: i64) -> String {
    step!(doubled = double(n));
    step!(kind = parity(n));
    step!(summary = describe(doubled, kind));
    summary
}

async fn run(rt: Runtime, n: i64) -> Outcome<numbers::Output> {
    numbers::execute(&rt, numbers::Input { n }).await
}

#[tokio::test]
async fn the_eval_report_runs_its_script_and_filters_in_a_browser() {
    let Some(browser) = browser() else { return };
    let cases: Vec<Case<i64>> = (1..=4)
        .map(|n| {
            // Case 3's label is wrong: one failure, three passes.
            let label = if n == 3 || n % 2 == 0 { "even" } else { "odd" };
            serde_json::from_value(json!({"id": format!("case-{n}"), "input": n, "expected": {"kind": label, "doubled": n * 2}}))
                .expect("a case")
        })
        .collect();
    let report = Eval::new("browser <check> & \"quotes\"")
        .metric("kind", ExactMatch::new())
        .metric("doubled", ExactMatch::new())
        .progress(false)
        .run(&Runtime::default(), &cases, run)
        .await;
    assert_eq!(report.passed, 3);
    let path = page("eval.html", &report.html());

    let dom = rendered(&browser, &path, "");
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script ran: {dom}"
    );
    assert!(
        dom.contains("browser &lt;check&gt; &amp;"),
        "the name is escaped"
    );
    assert_eq!(dom.matches("<tr class=\"pass\"").count(), 3);
    assert_eq!(dom.matches("<tr class=\"fail\"").count(), 1);
    assert!(!dom.contains("display: none"), "nothing hidden by default");

    let filtered = rendered(&browser, &path, "#only-failed");
    assert!(filtered.contains("data-ready=\"1\""));
    assert_eq!(
        filtered
            .matches("<tr class=\"pass\" style=\"display: none;\"")
            .count(),
        3,
        "#only-failed hides the cases that passed: {filtered}"
    );
}

#[tokio::test]
async fn a_run_timeline_renders_its_bars_in_a_browser() {
    let Some(browser) = browser() else { return };
    let outcome = run(Runtime::default(), 7).await;
    outcome.result.expect("completes");
    let html = prompt_chain::report::html_timeline([outcome.report]);
    let path = page("timeline.html", &html);
    let dom = rendered(&browser, &path, "");
    assert!(dom.contains("<svg"), "the timeline is an SVG: {dom}");
    for step in ["double", "parity"] {
        assert!(dom.contains(step), "step `{step}` is labelled");
    }
}
