//! [`RunOutcome`]: how one start of a durable run ended, kept in the store
//! beside the run (`CheckpointStore::record_outcome`) so a tool reading the
//! store later — the runs CLI — can show its cost, its error and its steps.

use serde::{Deserialize, Serialize};

use super::StepRecord;

/// How one start of a run ended, as recorded in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// `completed`, `failed`, `cancelled` or `suspended`.
    pub status: String,
    /// When it ended, in milliseconds since the Unix epoch.
    pub ended_unix_ms: u64,
    /// How long this start took, in milliseconds.
    pub duration_ms: u64,
    /// Input tokens of its model calls (sub-chains' included).
    pub input_tokens: u64,
    /// Output tokens of its model calls.
    pub output_tokens: u64,
    /// What those calls cost, if the runtime has prices for the models.
    pub cost_usd: Option<f64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Its steps, in declaration order.
    pub steps: Vec<StepOutcome>,
}

/// One step of a [`RunOutcome`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// The step's key.
    pub key: String,
    /// Where it got to (`succeeded`, `restored`, `failed`, `skipped`, …).
    pub status: String,
    /// Attempts made in this start.
    pub attempts: u32,
    /// From its start to its end, in milliseconds, if it ran.
    pub duration_ms: Option<u64>,
    /// What its model calls cost, if priced.
    pub cost_usd: Option<f64>,
}

impl RunOutcome {
    /// The outcome of a run that ended with `status` after `duration`, from
    /// its step records.
    pub(crate) fn new(
        status: &str,
        duration: std::time::Duration,
        records: &[StepRecord],
        error: Option<String>,
    ) -> Self {
        let mut outcome = RunOutcome {
            status: status.to_owned(),
            ended_unix_ms: crate::ids::unix_ms(),
            duration_ms: duration.as_millis() as u64,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: None,
            error,
            steps: Vec::with_capacity(records.len()),
        };
        for record in records {
            outcome.input_tokens += record.usage.input_tokens;
            outcome.output_tokens += record.usage.output_tokens;
            if let Some(cost) = record.cost_usd {
                *outcome.cost_usd.get_or_insert(0.0) += cost;
            }
            let status = serde_json::to_value(record.status)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            outcome.steps.push(StepOutcome {
                key: record.key.to_owned(),
                status,
                attempts: record.attempts,
                duration_ms: record
                    .started_at
                    .zip(record.finished_at)
                    .map(|(start, end)| end.saturating_sub(start).as_millis() as u64),
                cost_usd: record.cost_usd,
            });
        }
        outcome
    }
}
