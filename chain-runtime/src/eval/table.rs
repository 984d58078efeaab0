//! An evaluation for a terminal: totals, each metric and step, and the
//! cases that did not pass, a line each.

use std::fmt::Write as _;

use serde_json::Value;

use super::report::{CaseResult, EvalReport};

impl EvalReport {
    /// The report for a terminal: totals, metrics, steps, failed cases.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "eval `{}`: {}/{} cases passed ({:.1} %), {} of {} run, {} completed",
            self.name,
            self.passed,
            self.cases_run,
            self.accuracy * 100.0,
            self.cases_run,
            self.cases_total,
            self.completed
        );
        let _ = writeln!(
            out,
            "tokens {} ({}), judges {} ({}); run time p50 {} ms, p95 {} ms; wall {} ms",
            self.tokens,
            dollars(self.cost_usd),
            self.judge_tokens,
            dollars(self.judge_cost_usd),
            self.p50_ms,
            self.p95_ms,
            self.wall_ms
        );
        if let Some(stopped) = &self.stopped {
            let _ = writeln!(out, "stopped early: {stopped}");
        }
        let _ = writeln!(
            out,
            "\n{:<24} {:<18} {:>9} {:>9} {:>6}",
            "key", "scorer", "accuracy", "passed", "mean"
        );
        for m in &self.metrics {
            let _ = writeln!(
                out,
                "{:<24} {:<18} {:>8.1}% {:>4}/{:<4} {:>6.2}",
                m.key,
                m.scorer,
                m.accuracy * 100.0,
                m.passed,
                m.graded,
                m.mean_score
            );
        }
        let _ = writeln!(
            out,
            "\n{:<28} {:>5} {:>5} {:>6} {:>8} {:>9} {:>10}",
            "step", "runs", "ok", "failed", "attempts", "tokens", "cost"
        );
        for s in &self.steps {
            let _ = writeln!(
                out,
                "{:<28} {:>5} {:>5} {:>6} {:>8} {:>9} {:>10}",
                s.step,
                s.runs,
                s.succeeded,
                s.failed,
                s.attempts,
                s.tokens,
                dollars(s.cost_usd)
            );
        }
        let failed: Vec<&CaseResult> = self
            .cases
            .iter()
            .filter(|c| !c.passed && c.status.is_some())
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(out, "\nfailed cases:");
            for case in failed {
                let _ = writeln!(out, "  {}", describe_failure(case));
            }
        }
        out
    }
}

/// One failed case on one line: the error, or the first metric it failed.
pub(super) fn describe_failure(case: &CaseResult) -> String {
    if let Some(error) = &case.error {
        return format!("{}: {}", case.id, first_line(error));
    }
    match case.scores.iter().find(|s| !s.passed) {
        Some(score) => format!(
            "{}: `{}` expected {}, got {}{}",
            case.id,
            score.key,
            shown(score.expected.as_ref()),
            shown(score.actual.as_ref()),
            score
                .score
                .as_ref()
                .and_then(|s| s.reason.as_deref())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        None => case.id.clone(),
    }
}

pub(super) fn shown(value: Option<&Value>) -> String {
    let text = match value {
        Some(value) => value.to_string(),
        None => "nothing".to_owned(),
    };
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

pub(super) fn dollars(cost: Option<f64>) -> String {
    cost.map_or_else(|| "unpriced".to_owned(), |c| format!("${c:.4}"))
}
