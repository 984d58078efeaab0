//! A report as text: the table [`ExecutionReport`]'s `Display` prints, and
//! [`ExecutionReport::timeline`], a text Gantt chart of its steps.

use std::fmt;
use std::time::Duration;

use super::{ExecutionReport, ItemSummary, StepStatus};

impl ExecutionReport {
    /// A text Gantt chart of the run: one bar per step over the run's duration,
    /// so overlapping steps are visible at a glance.
    ///
    /// ```text
    /// extract_changes    |█████·······························|    0 ms →  120 ms
    /// check_correctness  |·····████████████···················|  120 ms →  420 ms
    /// ```
    pub fn timeline(&self, width: usize) -> String {
        let width = width.max(10);
        let total = self.duration.as_secs_f64().max(f64::EPSILON);
        let name_width = self.steps.iter().map(|s| s.name.len()).max().unwrap_or(4);
        let column = |at: Duration| ((at.as_secs_f64() / total) * width as f64).round() as usize;
        let mut out = String::new();
        for step in &self.steps {
            let (bar, window) = match (step.started_at, step.finished_at) {
                (Some(start), Some(end)) => {
                    let from = column(start).min(width);
                    let to = column(end).clamp(from, width).max((from + 1).min(width));
                    let bar: String = (0..width)
                        .map(|i| if i >= from && i < to { '█' } else { '·' })
                        .collect();
                    (
                        bar,
                        format!("{:>6} ms → {:>6} ms", start.as_millis(), end.as_millis()),
                    )
                }
                // Cut short when the run stopped: a lighter bar to the end.
                (Some(start), None) if step.status == StepStatus::Running => {
                    let from = column(start).min(width.saturating_sub(1));
                    let bar: String = (0..width)
                        .map(|i| if i >= from { '░' } else { '·' })
                        .collect();
                    (
                        bar,
                        format!(
                            "{:>6} ms → cancelled when the run stopped",
                            start.as_millis()
                        ),
                    )
                }
                _ => (
                    "·".repeat(width),
                    match step.status {
                        StepStatus::Pending => "never started".to_owned(),
                        other => format!("{other:?}").to_lowercase(),
                    },
                ),
            };
            let elements = match step.items.len() {
                0 => String::new(),
                1 => "  (1 element)".to_owned(),
                n => format!("  ({n} elements)"),
            };
            out.push_str(&format!(
                "{:<name_width$}  |{bar}|  {window}{elements}\n",
                step.name
            ));
        }
        out
    }
}

/// A map step's elements in a few words: counts by outcome, then the
/// spread of their durations.
fn elements(summary: &ItemSummary) -> String {
    let mut parts = vec![format!("{} succeeded", summary.succeeded)];
    for (count, what) in [
        (summary.failed, "failed"),
        (summary.cached, "cached"),
        (summary.restored, "restored"),
        (summary.unfinished, "unfinished"),
        (summary.fell_back, "by a fallback"),
    ] {
        if count > 0 {
            parts.push(format!("{count} {what}"));
        }
    }
    format!(
        "{} elements: {}; {} attempts; p50 {} ms, p95 {} ms, max {} ms",
        summary.total,
        parts.join(", "),
        summary.attempts,
        millis(summary.p50),
        millis(summary.p95),
        millis(summary.max)
    )
}

fn millis(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1}", d.as_secs_f64() * 1000.0),
    )
}

impl fmt::Display for ExecutionReport {
    /// A table: one line per step with status, queue and run time, attempts,
    /// tokens, cost and output size; then the routes taken.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "run {} of `{}`: {} in {:.1} ms ({} completed, {} failed, {} skipped; {} tokens{})",
            self.run_id,
            self.chain,
            format!("{:?}", self.status).to_lowercase(),
            self.duration.as_secs_f64() * 1000.0,
            self.steps_completed,
            self.steps_failed,
            self.steps_skipped,
            self.usage.total(),
            self.cost_usd
                .map(|c| format!(", ${c:.4}"))
                .unwrap_or_default(),
        )?;
        let width = self
            .steps
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "  {:>2}  {:<width$}  {:<9}  {:>9}  {:>9}  {:>8}  {:>7}  {:>9}  {:>8}",
            "#", "step", "status", "queue ms", "run ms", "attempts", "tokens", "cost $", "bytes"
        )?;
        for step in &self.steps {
            writeln!(
                f,
                "  {:>2}  {:<width$}  {:<9}  {:>9}  {:>9}  {:>8}  {:>7}  {:>9}  {:>8}",
                step.index,
                step.name,
                format!("{:?}", step.status).to_lowercase(),
                millis(step.queue_time()),
                millis(step.duration()),
                step.attempts,
                step.usage.total(),
                step.cost_usd
                    .map_or_else(|| "-".to_owned(), |c| format!("{c:.5}")),
                step.output_bytes
                    .map_or_else(|| "-".to_owned(), |b| b.to_string()),
            )?;
            // A map step: its elements in one line, however many there are
            // (each one is in `StepRecord::items`).
            if let Some(summary) = step.item_summary() {
                writeln!(f, "      {:<width$}  └ {}", "", elements(&summary))?;
            }
        }
        for route in &self.routes {
            writeln!(
                f,
                "  route on `{}`: {}",
                route.key,
                route.arm.unwrap_or("(not reached)")
            )?;
        }
        Ok(())
    }
}
