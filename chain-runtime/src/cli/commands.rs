//! What each command of the runs tool does.

use std::io::Write;
use std::time::Duration;

use clap::ArgMatches;

use super::render::{self, Style};
use super::{Cli, CliError, open_store};
use crate::ids::{RunId, unix_ms};
use crate::report::RunOutcome;
use crate::store::{CheckpointStore, RunQuery, SavedRun, SqliteStore, StoredStatus, UnitEdit};

/// Runs the subcommand in `matches`.
pub(super) async fn dispatch(
    cli: &Cli,
    matches: &ArgMatches,
    out: &mut dyn Write,
    style: Style,
) -> Result<(), CliError> {
    let Some((name, args)) = matches.subcommand() else {
        return Err(CliError::failed("no command given (try --help)"));
    };
    if name == "graph" {
        let chain = arg(args, "chain")?;
        let graph = cli.entry(chain)?.graph();
        let text = if args.get_flag("dot") {
            graph.dot
        } else {
            graph.mermaid
        };
        writeln!(out, "{}", text.trim_end())?;
        return Ok(());
    }
    let store = open_store(matches)?;
    match name {
        "list" => list(&store, args, out, style).await,
        "show" => {
            let (run_id, run) = load(&store, args).await?;
            let subs = sub_runs(&store, run_id).await?;
            let ended = outcomes(&store, run_id).await?;
            render::show(out, style, run_id, &run, &subs, unix_ms())?;
            render::outcomes(out, style, &ended)?;
            Ok(())
        }
        "export" => {
            let (run_id, run) = load(&store, args).await?;
            let json = export(&store, run_id, run).await?;
            let text = serde_json::to_string_pretty(&json)
                .map_err(|error| CliError::failed(error.to_string()))?;
            write_to(args, out, &text)
        }
        "resume" => resume(cli, store, args, out, style).await,
        "fork" => fork(cli, store, args, out, style).await,
        "html" => {
            let (run_id, run) = load(&store, args).await?;
            // Only a completed run is restored whole; anything else would
            // run (and pay for) its missing steps.
            if run.status != StoredStatus::Completed {
                return Err(CliError::failed(format!(
                    "run {run_id} is {}: only a completed run is drawn from the store; `resume {run_id} --html FILE` runs the rest and draws that",
                    run.status.as_str()
                )));
            }
            let entry = cli.entry(&run.chain)?;
            let runtime = cli.runtime_for(store);
            let resumed = entry.resume(&runtime, run_id).await;
            write_to(args, out, &crate::report::html_timeline([resumed.report]))
        }
        "gc" => {
            let age = parse_age(arg(args, "older-than")?)?;
            let before =
                unix_ms().saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
            let deleted = store.delete_finished_before(before).await?;
            writeln!(
                out,
                "deleted {} runs ({} sub-runs, {} units) and {} expired cache entries",
                deleted.runs, deleted.sub_runs, deleted.units, deleted.cache_entries
            )?;
            Ok(())
        }
        "vacuum" => {
            let before = store.size().await?;
            store.vacuum().await?;
            let after = store.size().await?;
            writeln!(
                out,
                "vacuumed: {} -> {}",
                render::bytes(before.file_bytes + before.wal_bytes),
                render::bytes(after.file_bytes + after.wal_bytes)
            )?;
            Ok(())
        }
        "size" => {
            render::size(out, style, &store.size().await?)?;
            Ok(())
        }
        other => Err(CliError::failed(format!("unknown command `{other}`"))),
    }
}

fn arg<'a>(args: &'a ArgMatches, name: &str) -> Result<&'a str, CliError> {
    args.get_one::<String>(name)
        .map(String::as_str)
        .ok_or_else(|| CliError::failed(format!("missing <{name}>")))
}

/// The run named by the `run` argument, read from the store.
async fn load(store: &SqliteStore, args: &ArgMatches) -> Result<(RunId, SavedRun), CliError> {
    let text = arg(args, "run")?;
    let run_id = RunId::named(text)
        .map_err(|error| CliError::failed(format!("`{text}` is not a run id: {error}")))?;
    let run = store
        .load_run(run_id)
        .await?
        .ok_or_else(|| CliError::failed(format!("the store has no run {run_id}")))?;
    Ok((run_id, run))
}

/// How each start of `run_id` ended (records that do not read are skipped).
async fn outcomes(store: &SqliteStore, run_id: RunId) -> Result<Vec<RunOutcome>, CliError> {
    Ok(store
        .outcomes(run_id)
        .await?
        .iter()
        .filter_map(|bytes| serde_json::from_slice(bytes).ok())
        .collect())
}

/// The runs whose parent is `run_id`.
async fn sub_runs(
    store: &SqliteStore,
    run_id: RunId,
) -> Result<Vec<crate::store::RunSummary>, CliError> {
    let all = store.list_runs(&RunQuery::all().with_sub_runs()).await?;
    let mut subs: Vec<_> = all
        .into_iter()
        .filter(|run| run.parent == Some(run_id))
        .collect();
    subs.sort_by_key(|run| run.started_unix_ms);
    Ok(subs)
}

async fn list(
    store: &SqliteStore,
    args: &ArgMatches,
    out: &mut dyn Write,
    style: Style,
) -> Result<(), CliError> {
    let mut query = RunQuery::all();
    if let Some(status) = args.get_one::<String>("status") {
        let parsed = StoredStatus::parse(status).ok_or_else(|| {
            CliError::failed(format!(
                "no status `{status}`: running, completed, failed, cancelled or suspended"
            ))
        })?;
        query = query.status(parsed);
    }
    if let Some(chain) = args.get_one::<String>("chain") {
        query = query.chain(chain.clone());
    }
    if args.get_flag("sub-runs") {
        query = query.with_sub_runs();
    }
    if let Some(&limit) = args.get_one::<usize>("limit") {
        query = query.limit(limit);
    }
    let runs = store.list_runs(&query).await?;
    let mut costs = Vec::with_capacity(runs.len());
    for run in &runs {
        costs.push(render::total_cost(&outcomes(store, run.run_id).await?));
    }
    render::list(out, style, &runs, Some(&costs), unix_ms())?;
    Ok(())
}

/// A run as JSON: its record, units (outputs as JSON) and sub-runs, nested.
async fn export(
    store: &SqliteStore,
    run_id: RunId,
    run: SavedRun,
) -> Result<serde_json::Value, CliError> {
    let mut pending = vec![(run_id, run)];
    let mut exported = Vec::new();
    // Depth first, without recursion in an async fn: children are exported
    // before they are attached to their parent below.
    while let Some((id, run)) = pending.pop() {
        for sub in sub_runs(store, id).await? {
            if let Some(saved) = store.load_run(sub.run_id).await? {
                pending.push((sub.run_id, saved));
            }
        }
        exported.push((id, run.parent, render::run_json(id, &run)));
    }
    // Attach each run under its parent, innermost first.
    while exported.len() > 1 {
        let Some((_, parent, json)) = exported.pop() else {
            break;
        };
        if let Some(slot) = exported
            .iter_mut()
            .find(|(id, _, _)| Some(*id) == parent)
            .and_then(|(_, _, json)| json.get_mut("sub_runs"))
            .and_then(serde_json::Value::as_array_mut)
        {
            slot.push(json);
        }
    }
    Ok(exported.pop().map(|(_, _, json)| json).unwrap_or_default())
}

async fn resume(
    cli: &Cli,
    store: SqliteStore,
    args: &ArgMatches,
    out: &mut dyn Write,
    style: Style,
) -> Result<(), CliError> {
    let (run_id, run) = load(&store, args).await?;
    let entry = cli.entry(&run.chain)?;
    let runtime = cli.runtime_for(store);
    let resumed = entry.resume(&runtime, run_id).await;
    if let Some(path) = args.get_one::<String>("html") {
        std::fs::write(path, crate::report::html_timeline([&resumed.report]))?;
    }
    render::resumed(out, style, &resumed)
}

async fn fork(
    cli: &Cli,
    store: SqliteStore,
    args: &ArgMatches,
    out: &mut dyn Write,
    style: Style,
) -> Result<(), CliError> {
    let (run_id, run) = load(&store, args).await?;
    let entry = cli.entry(&run.chain)?;
    let unit = arg(args, "unit")?;
    let (key, iteration) = match unit.split_once('#') {
        Some((key, item)) => {
            let item: u32 = item.parse().map_err(|_| {
                CliError::failed(format!("`{unit}`: the part after # is not a number"))
            })?;
            (key, item.saturating_add(1))
        }
        None => (unit, 0),
    };
    let text = arg(args, "value")?;
    let value = serde_json::from_str(text)
        .map_err(|error| CliError::failed(format!("--value is not JSON ({error}): {text}")))?;
    let edit = UnitEdit {
        key: key.to_owned(),
        iteration,
        value,
    };
    let fork = crate::store::fork_run(&store, entry.definition(), run_id, &edit).await?;
    writeln!(out, "forked run {run_id} as {fork}")?;
    if args.get_flag("no-resume") {
        return Ok(());
    }
    let runtime = cli.runtime_for(store);
    let resumed = entry.resume(&runtime, fork).await;
    render::resumed(out, style, &resumed)
}

/// Writes `text` to the `output` file if one was given, else to `out`.
fn write_to(args: &ArgMatches, out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    match args.get_one::<String>("output") {
        Some(path) => std::fs::write(path, text)?,
        None => writeln!(out, "{}", text.trim_end())?,
    }
    Ok(())
}

/// `30d`, `12h`, `45m`, `10s` as a duration.
fn parse_age(text: &str) -> Result<Duration, CliError> {
    let bad = || {
        CliError::failed(format!(
            "`{text}` is not an age: write 30d, 12h, 45m or 10s"
        ))
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

#[cfg(test)]
mod tests {
    use super::parse_age;
    use std::time::Duration;

    #[test]
    fn ages_parse_and_bad_ones_say_how_to_write_them() {
        assert_eq!(
            parse_age("30d").ok(),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(parse_age("12h").ok(), Some(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_age("10s").ok(), Some(Duration::from_secs(10)));
        for bad in ["", "d", "30", "30w", "-1d"] {
            let error = parse_age(bad).expect_err(bad).to_string();
            assert!(error.contains("30d, 12h"), "{error}");
        }
    }
}
