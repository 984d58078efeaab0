//! Questions a test asks of a report: which steps ran, which route arm was
//! taken, how many model calls were made.

use super::{ExecutionReport, StepRecord, StepStatus};

impl ExecutionReport {
    /// The record of the step named `name` (its function), or of the step
    /// writing key `name`.
    pub fn step(&self, name: &str) -> Option<&StepRecord> {
        self.steps
            .iter()
            .find(|step| step.name == name)
            .or_else(|| self.steps.iter().find(|step| step.key == name))
    }

    /// Whether the step named `name` (or writing key `name`) ran in this
    /// run: it made at least one attempt. Restored, cached and skipped
    /// steps did not run.
    pub fn ran(&self, name: &str) -> bool {
        self.step(name).is_some_and(|step| step.attempts > 0)
    }

    /// The names of the steps that ran (made an attempt), in declaration order.
    pub fn steps_run(&self) -> Vec<&'static str> {
        self.steps
            .iter()
            .filter(|step| step.attempts > 0)
            .map(|step| step.name)
            .collect()
    }

    /// The names of the steps that have their output, in declaration order
    /// (succeeded, restored or cached).
    pub fn steps_done(&self) -> Vec<&'static str> {
        self.steps
            .iter()
            .filter(|step| {
                matches!(
                    step.status,
                    StepStatus::Succeeded | StepStatus::Restored | StepStatus::Cached
                )
            })
            .map(|step| step.name)
            .collect()
    }

    /// The pattern of the arm the route on key `key` took, if it decided.
    pub fn route_taken(&self, key: &str) -> Option<&'static str> {
        self.routes
            .iter()
            .find(|route| route.key == key)
            .and_then(|route| route.arm)
    }

    /// Model calls made by this run's steps and by the sub-chains they
    /// called (re-asks and tool-loop turns are calls of their own).
    pub fn model_calls(&self) -> u32 {
        self.steps
            .iter()
            .map(|step| {
                step.model_calls
                    + step
                        .sub_runs
                        .iter()
                        .map(|sub| sub.report.model_calls())
                        .sum::<u32>()
            })
            .sum()
    }
}
