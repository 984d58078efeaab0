//! How the runs tool prints: tables of runs and units, a run as JSON, sizes
//! and ages, with colours when asked.

use std::io::{self, Write};

use crate::definition::ErasedRun;
use crate::ids::RunId;
use crate::report::RunOutcome;
use crate::store::{RunSummary, SavedRun, StoreSize, StoredStatus};

/// Whether to colour the output.
#[derive(Debug, Clone, Copy)]
pub(super) struct Style {
    pub(super) colour: bool,
}

impl Style {
    /// `text` in the ANSI colour `code`, if colouring.
    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// A status, coloured by what it means, padded to `width`.
    fn status(self, status: StoredStatus, width: usize) -> String {
        let code = match status {
            StoredStatus::Completed => "32",
            StoredStatus::Failed => "31",
            StoredStatus::Running => "33",
            StoredStatus::Suspended => "36",
            StoredStatus::Cancelled => "2",
        };
        self.paint(code, &format!("{:<width$}", status.as_str()))
    }

    fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// How long ago `then` was, shortly: `42s`, `5m`, `3h`, `2d`.
pub(super) fn age(now_ms: u64, then_ms: u64) -> String {
    let seconds = now_ms.saturating_sub(then_ms) / 1000;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3_600 => format!("{}m", seconds / 60),
        3_600..86_400 => format!("{}h", seconds / 3_600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// A byte count, shortly: `512 B`, `3.2 KiB`, `1.5 MiB`.
pub(super) fn bytes(n: u64) -> String {
    let n_f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if n_f < 1024.0 * 1024.0 {
        format!("{:.1} KiB", n_f / 1024.0)
    } else if n_f < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", n_f / (1024.0 * 1024.0))
    } else {
        format!("{:.1} GiB", n_f / (1024.0 * 1024.0 * 1024.0))
    }
}

/// The first `width` characters of `text` on one line.
fn preview(text: &str, width: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= width {
        flat
    } else {
        let cut: String = flat.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// The runs table of `list`.
pub(super) fn list(
    out: &mut dyn Write,
    style: Style,
    runs: &[RunSummary],
    costs: Option<&[Option<f64>]>,
    now_ms: u64,
) -> io::Result<()> {
    if runs.is_empty() {
        return writeln!(out, "no runs");
    }
    let chain_width = runs
        .iter()
        .map(|run| run.chain.len())
        .max()
        .unwrap_or(5)
        .max(5);
    // Ids are shown whole (a truncated id cannot be pasted into `show`); a
    // sub-run is indented under the listing.
    let label = |run: &RunSummary| match run.parent {
        Some(_) => format!("  {}", run.run_id),
        None => run.run_id.to_string(),
    };
    let id_width = runs
        .iter()
        .map(|run| label(run).len())
        .max()
        .unwrap_or(3)
        .max(3);
    writeln!(
        out,
        "{}",
        style.dim(&format!(
            "{:<id_width$} {:<chain_width$} {:<9} {:>5} {:>7} {:>6} {:>9}",
            "RUN", "CHAIN", "STATUS", "UNITS", "STARTED", "LAST", "COST"
        ))
    )?;
    for (index, run) in runs.iter().enumerate() {
        let cost = costs
            .and_then(|costs| costs.get(index).copied().flatten())
            .map_or_else(|| "-".to_owned(), |cost| format!("${cost:.4}"));
        writeln!(
            out,
            "{:<id_width$} {:<chain_width$} {} {:>5} {:>7} {:>6} {:>9}",
            label(run),
            run.chain,
            style.status(run.status, 9),
            run.units,
            age(now_ms, run.started_unix_ms),
            age(now_ms, run.updated_unix_ms),
            cost,
        )?;
    }
    Ok(())
}

/// One unit's name as the tool writes it: `key`, `key#3` for element 3
/// (iteration 4), and the unit's kind for questions and tool calls.
fn unit_name(key: &str, iteration: u32) -> String {
    match iteration {
        0 => key.to_owned(),
        n => format!("{key}#{}", n - 1),
    }
}

/// A run in detail: its record, its units and its sub-runs.
pub(super) fn show(
    out: &mut dyn Write,
    style: Style,
    run_id: RunId,
    run: &SavedRun,
    subs: &[RunSummary],
    now_ms: u64,
) -> io::Result<()> {
    writeln!(out, "run      {run_id}")?;
    writeln!(out, "chain    {}", run.chain)?;
    writeln!(out, "status   {}", style.status(run.status, 0).trim_end())?;
    if let Some(parent) = run.parent {
        writeln!(out, "parent   {parent}")?;
    }
    writeln!(
        out,
        "started  {} ago, last written {} ago",
        age(now_ms, run.started_unix_ms),
        age(now_ms, run.updated_unix_ms)
    )?;
    writeln!(
        out,
        "input    {}",
        preview(&String::from_utf8_lossy(&run.input), 100)
    )?;
    let mut units: Vec<_> = run.steps.iter().collect();
    units.sort_by(|a, b| a.0.cmp(b.0));
    writeln!(out)?;
    writeln!(out, "{}", style.dim(&format!("{} units", units.len())))?;
    let width = units
        .iter()
        .map(|((key, iteration), _)| unit_name(key, *iteration).len())
        .max()
        .unwrap_or(4)
        .max(4);
    for ((key, iteration), output) in units {
        let note = if key.starts_with('?') {
            " (question)"
        } else if key.starts_with('!') {
            " (who answered)"
        } else if key.contains('~') {
            " (tool call)"
        } else {
            ""
        };
        writeln!(
            out,
            "  {:<width$} {:>9}  {}{}",
            unit_name(key, *iteration),
            bytes(output.len() as u64),
            preview(&String::from_utf8_lossy(output), 70),
            style.dim(note),
        )?;
    }
    let open: Vec<&str> = run
        .steps
        .keys()
        .filter_map(|(key, _)| key.strip_prefix('?'))
        .filter(|key| !run.steps.contains_key(&((*key).to_owned(), 0)))
        .collect();
    if !open.is_empty() {
        writeln!(out, "waiting for an answer to: {}", open.join(", "))?;
    }
    if !subs.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", style.dim(&format!("{} sub-runs", subs.len())))?;
        list(out, style, subs, None, now_ms)?;
    }
    Ok(())
}

/// A run's record as JSON (outputs parsed; an output that is not JSON is
/// kept as text), with an empty `sub_runs` list to fill.
pub(super) fn run_json(run_id: RunId, run: &SavedRun) -> serde_json::Value {
    let parse = |bytes: &[u8]| {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into()))
    };
    let mut units: Vec<_> = run.steps.iter().collect();
    units.sort_by(|a, b| a.0.cmp(b.0));
    let units: Vec<serde_json::Value> = units
        .into_iter()
        .map(|((key, iteration), output)| {
            serde_json::json!({ "key": key, "iteration": iteration, "output": parse(output) })
        })
        .collect();
    serde_json::json!({
        "run_id": run_id.to_string(),
        "parent": run.parent.map(|parent| parent.to_string()),
        "chain": run.chain,
        "status": run.status.as_str(),
        "fingerprint": format!("{:016x}", run.fingerprint),
        "started_unix_ms": run.started_unix_ms,
        "updated_unix_ms": run.updated_unix_ms,
        "input": parse(&run.input),
        "units": units,
        "sub_runs": [],
    })
}

/// A resumed run: its report table, then its output or its error (an
/// error is also the command's failure).
pub(super) fn resumed(
    out: &mut dyn Write,
    style: Style,
    run: &ErasedRun,
) -> Result<(), super::CliError> {
    writeln!(out, "{}", run.report)?;
    match &run.output {
        Ok(output) => {
            let text = serde_json::to_string_pretty(output).unwrap_or_default();
            writeln!(out, "{}", style.paint("32", "completed"))?;
            writeln!(out, "{text}")?;
            Ok(())
        }
        Err(error) => Err(super::CliError::failed(format!(
            "run {} failed: {error}",
            run.report.run_id
        ))),
    }
}

/// The size report.
pub(super) fn size(out: &mut dyn Write, style: Style, size: &StoreSize) -> io::Result<()> {
    writeln!(out, "file       {}", bytes(size.file_bytes))?;
    writeln!(out, "wal        {}", bytes(size.wal_bytes))?;
    writeln!(
        out,
        "free       {} (vacuum gives it back)",
        bytes(size.free_bytes)
    )?;
    writeln!(
        out,
        "units      {} ({} of outputs)",
        size.units,
        bytes(size.output_bytes)
    )?;
    writeln!(out, "cache      {} entries", size.cache_entries)?;
    let total: u64 = size.runs.values().sum();
    writeln!(out, "runs       {total}")?;
    for (status, n) in &size.runs {
        let shown = StoredStatus::parse(status)
            .map_or_else(|| status.clone(), |status| style.status(status, 10));
        writeln!(out, "  {shown} {n}")?;
    }
    Ok(())
}

/// What every start of a run cost, if any was priced.
pub(super) fn total_cost(outcomes: &[RunOutcome]) -> Option<f64> {
    outcomes
        .iter()
        .filter_map(|outcome| outcome.cost_usd)
        .reduce(|a, b| a + b)
}

/// How each start of a run ended; the last one's steps in a table.
pub(super) fn outcomes(
    out: &mut dyn Write,
    style: Style,
    outcomes: &[RunOutcome],
) -> io::Result<()> {
    let Some(last) = outcomes.last() else {
        return Ok(());
    };
    writeln!(out)?;
    for (n, outcome) in outcomes.iter().enumerate() {
        let status = StoredStatus::parse(&outcome.status)
            .map_or_else(|| outcome.status.clone(), |status| style.status(status, 0));
        let cost = outcome
            .cost_usd
            .map_or_else(String::new, |cost| format!(", ${cost:.4}"));
        writeln!(
            out,
            "start {}: {} after {:.1} s, {} tokens in, {} out{cost}",
            n + 1,
            status.trim_end(),
            outcome.duration_ms as f64 / 1000.0,
            outcome.input_tokens,
            outcome.output_tokens,
        )?;
        if let Some(error) = &outcome.error {
            writeln!(out, "  {}", style.paint("31", &preview(error, 200)))?;
        }
    }
    if let Some(total) = total_cost(outcomes).filter(|_| outcomes.len() > 1) {
        writeln!(out, "all starts: ${total:.4}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        style.dim(&format!(
            "{:<16} {:<10} {:>8} {:>9} {:>9}",
            "STEP", "STATUS", "ATTEMPTS", "TIME", "COST"
        ))
    )?;
    for step in &last.steps {
        writeln!(
            out,
            "{:<16} {:<10} {:>8} {:>9} {:>9}",
            step.key,
            step.status,
            step.attempts,
            step.duration_ms
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")),
            step.cost_usd
                .map_or_else(|| "-".to_owned(), |cost| format!("${cost:.4}")),
        )?;
    }
    Ok(())
}
