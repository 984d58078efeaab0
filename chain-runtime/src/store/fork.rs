//! Forking a run ("time travel"): a new run of the same chain on the same
//! input that keeps what a stored run recorded, except one unit given an
//! edited value and every unit that read from it (transitively, routes
//! included), which run again when the new run is resumed.

use std::collections::BTreeSet;

use super::{CheckpointStore, NewRun, StoreError, UnitOutput};
use crate::definition::ChainDef;
use crate::ids::{RunId, unix_ms};

/// The unit a fork gives another value: a step's key and the iteration
/// (0: the step's output; 1..: a loop's iterations or a map's elements,
/// element `i` at iteration `i + 1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitEdit {
    /// The step key.
    pub key: String,
    /// The iteration.
    pub iteration: u32,
    /// The new value, as JSON; it must read back as the step's output type
    /// (the forked run fails on that step with the reason if it does not).
    pub value: serde_json::Value,
}

/// The keys whose steps read, directly or through other steps or a route's
/// decision, from `key` in `chain` (`key` itself not included).
pub fn downstream_of(chain: &ChainDef, key: &str) -> BTreeSet<&'static str> {
    let mut tainted: BTreeSet<&str> = BTreeSet::from([key]);
    let mut downstream = BTreeSet::new();
    loop {
        let before = downstream.len();
        for route in chain.routes {
            if !tainted.contains(route.key) {
                continue;
            }
            for arm in route.arms {
                for step in arm.steps.iter().filter_map(|&index| chain.steps.get(index)) {
                    downstream.insert(step.key);
                }
            }
        }
        for step in chain.steps {
            if step.inputs.iter().any(|input| tainted.contains(input)) {
                downstream.insert(step.key);
            }
        }
        tainted.extend(downstream.iter().copied());
        if downstream.len() == before {
            return downstream;
        }
    }
}

/// The step key a stored unit belongs to: `key`, a question `?key`, its
/// author `!key`, or a tool call `key~address`.
fn step_key(unit: &str) -> &str {
    let unit = unit.trim_start_matches(['?', '!']);
    unit.split_once('~').map_or(unit, |(key, _)| key)
}

/// Records a new run forked from `run_id` with `edit` applied, and returns
/// its id; resume it with the chain's `resume` to run what the edit
/// invalidated. The forked run is not owned by anyone until resumed.
pub async fn fork_run(
    store: &dyn CheckpointStore,
    chain: &ChainDef,
    run_id: RunId,
    edit: &UnitEdit,
) -> Result<RunId, StoreError> {
    let saved = store
        .load_run(run_id)
        .await?
        .ok_or(StoreError::NotFound { run_id })?;
    if saved.chain != chain.name {
        return Err(StoreError::Io(format!(
            "run {run_id} is a run of chain `{}`, not `{}`",
            saved.chain, chain.name
        )));
    }
    let Some(step) = chain.steps.iter().find(|step| step.key == edit.key) else {
        let keys: Vec<&str> = chain.steps.iter().map(|step| step.key).collect();
        return Err(StoreError::Io(format!(
            "chain `{}` has no step key `{}` (its keys: {})",
            chain.name,
            edit.key,
            keys.join(", ")
        )));
    };
    // A loop's later iterations read the edited one; a map's elements
    // are independent of each other.
    let is_loop = step.options.max_iterations.is_some();
    let downstream = downstream_of(chain, &edit.key);
    let value =
        serde_json::to_vec(&edit.value).map_err(|error| StoreError::Encode(error.to_string()))?;
    let mut units: Vec<UnitOutput> = saved
        .steps
        .into_iter()
        .filter(|((unit, iteration), _)| {
            let key = step_key(unit);
            if downstream.contains(key) {
                return false;
            }
            if key != edit.key {
                return true;
            }
            // The edited step keeps a map's other elements (a loop's
            // earlier iterations), not its old output nor anything recorded
            // within the edited unit; its final output (iteration 0) is
            // rebuilt from them.
            let kept = if is_loop {
                *iteration < edit.iteration
            } else {
                *iteration != edit.iteration
            };
            unit == key && *iteration != 0 && kept
        })
        .map(|((key, iteration), output)| UnitOutput {
            key,
            iteration,
            output,
        })
        .collect();
    units.sort_by(|a, b| (&a.key, a.iteration).cmp(&(&b.key, b.iteration)));
    units.push(UnitOutput {
        key: edit.key.clone(),
        iteration: edit.iteration,
        output: value,
    });
    let fork = RunId::new();
    store
        .start_run(NewRun {
            run_id: fork,
            parent: None,
            chain: chain.name,
            fingerprint: saved.fingerprint,
            input: &saved.input,
            started_unix_ms: unix_ms(),
            lease: None,
        })
        .await?;
    store.save_steps(fork, &units).await?;
    Ok(fork)
}
