//! A run as a picture: a self-contained HTML page with an SVG Gantt chart of
//! step attempts, coloured by outcome, to see what overlapped and where the
//! time went.

use std::fmt::Write;
use std::time::Duration;

use super::{AttemptKind, AttemptOutcome, ExecutionReport, StepRecord, StepStatus};

/// Average width of one character of the 12px label font, for sizing the label column.
const CHAR_WIDTH: f64 = 7.0;
const CHART_WIDTH: f64 = 760.0;
const ROW: f64 = 26.0;
const TOP: f64 = 34.0;

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The most elements of a map step drawn one by one; a larger map is one
/// bar with its summary.
const MAX_DRAWN_ITEMS: usize = 200;

/// A tool call's bar.
const TOOL_COLOR: &str = "#00838f";

fn color(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Succeeded => "#2e7d32",
        AttemptOutcome::Failed => "#c62828",
        AttemptOutcome::Rejected => "#ef6c00",
        AttemptOutcome::TimedOut => "#6a1b9a",
        AttemptOutcome::Panicked => "#212121",
        AttemptOutcome::Suspended => "#f9a825",
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A tick spacing giving about eight ticks over `total` milliseconds.
fn tick_step(total: f64) -> f64 {
    let raw = (total / 8.0).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// One row of the chart: a step of the run, or of a sub-chain run nested
/// under the step that called it (its times shifted into the run's time).
struct Row<'a> {
    record: &'a StepRecord,
    /// Where the step's run started, in the top run's time.
    offset: Duration,
    /// 0 for the run's own steps, 1 for a sub-chain's, and so on.
    depth: usize,
    /// The sub-chain's name, for nested rows.
    chain: Option<&'static str>,
}

fn rows<'a>(report: &'a ExecutionReport, offset: Duration, depth: usize, out: &mut Vec<Row<'a>>) {
    for record in &report.steps {
        out.push(Row {
            record,
            offset,
            depth,
            chain: (depth > 0).then_some(report.chain),
        });
        for sub in &record.sub_runs {
            rows(&sub.report, offset + sub.started_at, depth + 1, out);
        }
    }
}

fn label(row: &Row<'_>) -> String {
    let indent = "  ".repeat(row.depth);
    match row.chain {
        Some(chain) => format!(
            "{indent}↳ {chain} › {} → {}",
            row.record.name, row.record.key
        ),
        None => format!("{} → {}", row.record.name, row.record.key),
    }
}

/// The SVG chart of one run, its sub-chains' steps nested under the steps
/// that called them.
fn svg(report: &ExecutionReport) -> String {
    let mut all = Vec::new();
    rows(report, Duration::ZERO, 0, &mut all);
    let total = ms(report.duration).max(1.0);
    let longest = all
        .iter()
        .map(|row| label(row).chars().count())
        .max()
        .unwrap_or(10);
    let label_width = (longest as f64 * CHAR_WIDTH + 20.0).max(120.0);
    let x = |at: Duration| label_width + ms(at) / total * CHART_WIDTH;
    let height = TOP + ROW * all.len() as f64 + 10.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
        label_width + CHART_WIDTH + 20.0
    );
    let step = tick_step(total);
    let mut tick = 0.0;
    while tick <= total + 0.5 {
        let tx = label_width + tick / total * CHART_WIDTH;
        let _ = writeln!(
            out,
            "  <line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{height}\" stroke=\"#e0e0e0\"/><text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#616161\">{tick:.0} ms</text>",
            TOP - 8.0,
            TOP - 14.0,
        );
        tick += step;
    }
    for (index, row) in all.iter().enumerate() {
        let (record, offset) = (row.record, row.offset);
        let y = TOP + ROW * index as f64;
        let muted = matches!(record.status, StepStatus::Skipped | StepStatus::Pending);
        let _ = writeln!(
            out,
            "  <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{}\" xml:space=\"preserve\">{}</text>",
            label_width - 8.0,
            y + ROW * 0.62,
            if muted { "#9e9e9e" } else { "#212121" },
            escape(&label(row)),
        );
        if record.attempt_log.is_empty() {
            if let (Some(start), StepStatus::Running) = (record.started_at, record.status) {
                let _ = writeln!(
                    out,
                    "  <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#9e9e9e\"><title>{}: cancelled while running</title></rect>",
                    x(offset + start),
                    y + 4.0,
                    (x(report.duration) - x(offset + start)).max(2.0),
                    ROW - 8.0,
                    escape(record.name)
                );
            } else if let (Some(start), StepStatus::Waiting) = (record.started_at, record.status) {
                // A human step: a hatched bar to the end of the run.
                let _ = writeln!(
                    out,
                    "  <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#1565c0\" stroke-dasharray=\"4 3\"><title>{}: waiting for an answer to `{}` (the run suspended)</title></rect>",
                    x(offset + start),
                    y + 4.0,
                    (x(report.duration) - x(offset + start)).max(2.0),
                    ROW - 8.0,
                    escape(record.name),
                    escape(record.key)
                );
            } else {
                let _ = writeln!(
                    out,
                    "  <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#9e9e9e\">{}</text>",
                    label_width + 4.0,
                    y + ROW * 0.62,
                    format!("{:?}", record.status).to_lowercase()
                );
            }
        }
        // A large map is one bar with its summary: 10,000 attempt boxes
        // would make the page unreadable (and heavy).
        if let (Some(summary), Some(start)) = (
            record
                .item_summary()
                .filter(|_| record.items.len() > MAX_DRAWN_ITEMS),
            record.started_at,
        ) {
            let end = record.finished_at.unwrap_or(report.duration);
            let ms_of = |d: Option<Duration>| d.map_or(0.0, ms);
            let _ = writeln!(
                out,
                "  <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{}\"><title>{}: {} elements: {} succeeded, {} failed, {} cached, {} restored, {} unfinished; {} attempts; per element p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms</title></rect>",
                x(offset + start),
                y + 4.0,
                (x(offset + end) - x(offset + start)).max(2.0),
                ROW - 8.0,
                color(if summary.failed > 0 {
                    AttemptOutcome::Failed
                } else {
                    AttemptOutcome::Succeeded
                }),
                escape(record.name),
                summary.total,
                summary.succeeded,
                summary.failed,
                summary.cached,
                summary.restored,
                summary.unfinished,
                summary.attempts,
                ms_of(summary.p50),
                ms_of(summary.p95),
                ms_of(summary.max),
            );
            continue;
        }
        for call in &record.tool_calls {
            // A tool call: a thin bar along the top of its step's row.
            let (start, end) = (offset + call.started_at, offset + call.finished_at);
            let how = match (&call.error, call.restored) {
                (_, true) => "restored from the step's record".to_owned(),
                (Some(error), _) => format!("failed: {}", escape(error)),
                (None, _) => "ran".to_owned(),
            };
            let fill = if call.error.is_some() {
                color(AttemptOutcome::Failed)
            } else {
                TOOL_COLOR
            };
            let _ = writeln!(
                out,
                "  <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"3\" fill=\"{fill}\"><title>{}: tool {} ({} bytes of arguments) {how}; {:.1} ms → {:.1} ms</title></rect>",
                x(start),
                y + 1.0,
                (x(end) - x(start)).max(2.0),
                escape(record.name),
                escape(&call.tool),
                call.argument_bytes,
                ms(start),
                ms(end),
            );
        }
        for attempt in &record.attempt_log {
            let (start, end) = (offset + attempt.started_at, offset + attempt.finished_at);
            if let AttemptKind::ModelReask(reason) = attempt.kind {
                // A rejected model reply inside an attempt: a thin bar under it.
                let _ = writeln!(
                    out,
                    "  <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"3\" fill=\"{}\"><title>{} attempt {}: a model reply {}, asked again; {:.1} ms → {:.1} ms</title></rect>",
                    x(start),
                    y + ROW - 4.0,
                    (x(end) - x(start)).max(2.0),
                    color(AttemptOutcome::Rejected),
                    escape(record.name),
                    attempt.attempt,
                    reason,
                    ms(start),
                    ms(end),
                );
                continue;
            }
            let _ = writeln!(
                out,
                "  <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{}\"><title>{} attempt {} (iteration {}): {:?}, {:.1} ms → {:.1} ms</title></rect>",
                x(start),
                y + 4.0,
                (x(end) - x(start)).max(2.0),
                ROW - 8.0,
                color(attempt.outcome),
                escape(record.name),
                attempt.attempt,
                attempt.iteration,
                attempt.outcome,
                ms(start),
                ms(end),
            );
        }
    }
    for route in &report.routes {
        if let (Some(at), Some(arm)) = (route.decided_at, route.arm) {
            let _ = writeln!(
                out,
                "  <line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{height}\" stroke=\"#1565c0\" stroke-dasharray=\"4 3\"><title>route on {2} took {3}</title></line>",
                x(at),
                TOP - 4.0,
                escape(route.key),
                escape(arm)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

const STYLE: &str = "body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#212121}\
h2{font-size:16px;margin:28px 0 4px}p{margin:2px 0 10px;color:#616161}\
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px;border-radius:2px}";

/// A self-contained HTML page with the timeline of each report.
pub fn html_timeline<R: AsRef<ExecutionReport>>(reports: impl IntoIterator<Item = R>) -> String {
    let mut out = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>prompt-chain run timeline</title><style>{STYLE}</style></head><body>\n<h1>Run timeline</h1>\n<p class=\"legend\">"
    );
    for (name, outcome) in [
        ("succeeded", AttemptOutcome::Succeeded),
        ("failed", AttemptOutcome::Failed),
        ("rejected by validation", AttemptOutcome::Rejected),
        ("timed out", AttemptOutcome::TimedOut),
        ("panicked", AttemptOutcome::Panicked),
        ("waits for an answer", AttemptOutcome::Suspended),
    ] {
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{name}</span>",
            color(outcome)
        );
    }
    out.push_str("<span><i style=\"background:#00838f\"></i>tool call</span><span><i style=\"background:#9e9e9e\"></i>cancelled</span><span><i style=\"background:#1565c0\"></i>route decision</span></p>\n");
    for report in reports {
        let report = report.as_ref();
        let routes: Vec<String> = report
            .routes
            .iter()
            .filter_map(|r| r.arm.map(|arm| format!("{} → {}", r.key, arm)))
            .collect();
        let _ = writeln!(
            out,
            "<h2>{} <small>{}</small></h2>\n<p>{:?} in {:.1} ms · steps one after another: {:.1} ms · {} tokens{}{}</p>",
            escape(report.chain),
            report.run_id,
            report.status,
            ms(report.duration),
            ms(report.sequential_time()),
            report.usage.total(),
            report
                .cost_usd
                .map(|c| format!(" · ${c:.4}"))
                .unwrap_or_default(),
            if routes.is_empty() {
                String::new()
            } else {
                format!(" · {}", escape(&routes.join(", ")))
            }
        );
        out.push_str(&svg(report));
    }
    out.push_str("</body></html>\n");
    out
}

impl ExecutionReport {
    /// This run as a self-contained HTML page with an SVG timeline (see
    /// [`html_timeline`] for several runs on one page).
    pub fn to_html(&self) -> String {
        html_timeline([self])
    }
}

#[cfg(test)]
mod tests {
    use super::{escape, tick_step};

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(843.0), 200.0);
        assert_eq!(tick_step(80.0), 10.0);
        assert_eq!(tick_step(5.0), 1.0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
