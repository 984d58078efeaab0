//! The elements of a map step in its report: one [`ItemRecord`] per
//! element, and an [`ItemSummary`] that stays readable for 10,000 of them.

use std::time::Duration;

use serde::Serialize;

use super::StepStatus;
use crate::llm::Usage;

/// One element of a map step (`f(each list)`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemRecord {
    /// Its position in the list, from 0.
    pub item: usize,
    /// Where it got to: `Pending` (never started), `Running` (cancelled),
    /// `Succeeded`, `Failed` or `Restored` (saved by an earlier execution).
    pub status: StepStatus,
    /// Attempts it used.
    pub attempts: u32,
    /// When it started, from the start of the run.
    pub started_at: Option<Duration>,
    /// When it ended, from the start of the run.
    pub finished_at: Option<Duration>,
    /// Tokens its model calls used.
    pub usage: Usage,
    /// Their cost in US dollars, if priced.
    pub cost_usd: Option<f64>,
    /// `default` or `model:<name>` when a fallback answered for it.
    pub fallback: Option<String>,
}

impl ItemRecord {
    pub(crate) fn new(item: usize) -> Self {
        Self {
            item,
            status: StepStatus::Pending,
            attempts: 0,
            started_at: None,
            finished_at: None,
            usage: Usage::default(),
            cost_usd: None,
            fallback: None,
        }
    }

    /// From its first attempt's start to its end.
    pub fn duration(&self) -> Option<Duration> {
        Some(self.finished_at?.saturating_sub(self.started_at?))
    }
}

/// A map step's elements at a glance: counts by outcome and the spread of
/// their durations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ItemSummary {
    /// Elements in the list.
    pub total: usize,
    /// Elements that produced an output in this execution.
    pub succeeded: usize,
    /// Elements that failed for good.
    pub failed: usize,
    /// Elements restored from an earlier execution.
    pub restored: usize,
    /// Elements the step-result cache answered.
    pub cached: usize,
    /// Elements a fallback answered (counted in `succeeded` too).
    pub fell_back: usize,
    /// Elements that never started or were cancelled.
    pub unfinished: usize,
    /// Attempts over all elements.
    pub attempts: u32,
    /// The median element's duration (of those that ran).
    pub p50: Option<Duration>,
    /// The 95th percentile.
    pub p95: Option<Duration>,
    /// The slowest element.
    pub max: Option<Duration>,
}

impl ItemSummary {
    /// The summary of `items`.
    pub fn of(items: &[ItemRecord]) -> Self {
        let count = |status: StepStatus| items.iter().filter(|i| i.status == status).count();
        let mut durations: Vec<Duration> = items.iter().filter_map(ItemRecord::duration).collect();
        durations.sort_unstable();
        let at = |fraction: f64| {
            let last = durations.len().checked_sub(1)?;
            durations
                .get(((last as f64) * fraction).round() as usize)
                .copied()
        };
        let (succeeded, failed, restored, cached) = (
            count(StepStatus::Succeeded),
            count(StepStatus::Failed),
            count(StepStatus::Restored),
            count(StepStatus::Cached),
        );
        Self {
            total: items.len(),
            succeeded,
            failed,
            restored,
            cached,
            fell_back: items.iter().filter(|i| i.fallback.is_some()).count(),
            unfinished: items.len() - succeeded - failed - restored - cached,
            attempts: items.iter().map(|i| i.attempts).sum(),
            p50: at(0.5),
            p95: at(0.95),
            max: durations.last().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ItemRecord, ItemSummary};
    use crate::report::StepStatus;
    use std::time::Duration;

    #[test]
    fn the_summary_counts_outcomes_and_spreads_durations() {
        let items: Vec<ItemRecord> = (0..100)
            .map(|n| ItemRecord {
                status: match n {
                    0..=89 => StepStatus::Succeeded,
                    90..=94 => StepStatus::Failed,
                    95..=97 => StepStatus::Restored,
                    _ => StepStatus::Pending,
                },
                attempts: u32::from(n < 95),
                started_at: (n < 95).then_some(Duration::ZERO),
                finished_at: (n < 95).then(|| Duration::from_millis(n as u64 + 1)),
                ..ItemRecord::new(n)
            })
            .collect();
        let summary = ItemSummary::of(&items);
        assert_eq!(
            (
                summary.total,
                summary.succeeded,
                summary.failed,
                summary.restored,
                summary.unfinished
            ),
            (100, 90, 5, 3, 2)
        );
        assert_eq!(summary.attempts, 95);
        assert_eq!(summary.p50, Some(Duration::from_millis(48)));
        assert_eq!(summary.p95, Some(Duration::from_millis(90)));
        assert_eq!(summary.max, Some(Duration::from_millis(95)));
        assert_eq!(ItemSummary::of(&[]).p50, None);
    }
}
