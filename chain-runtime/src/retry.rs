//! Retry policies: whether, and after how long, a failed attempt runs again.

use std::time::Duration;

use crate::error::FailureKind;

/// What a policy knows about a failed attempt.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryContext<'a> {
    /// The step's name.
    pub step: &'static str,
    /// The attempt that failed (1-based).
    pub attempt: u32,
    /// Why it failed (only retryable failures reach a policy).
    pub failure: &'a FailureKind,
    /// The provider's `Retry-After`, if it sent one: a floor for the delay.
    pub retry_after: Option<Duration>,
    /// The backoff this step has already waited.
    pub waited: Duration,
    /// A uniform number in `[0, 1)`, seeded by run, step and attempt, so a
    /// run's delays are reproducible.
    pub jitter: f64,
}

/// Decides the delay before the next attempt, or `None` to stop retrying.
/// The number of retries is capped separately (`retry = N`,
/// [`RuntimeBuilder::default_retries`](crate::RuntimeBuilder::default_retries));
/// errors marked final never reach a policy.
pub trait RetryPolicy: Send + Sync + 'static {
    /// The delay before the next attempt, or `None` to give up.
    fn delay(&self, retry: &RetryContext<'_>) -> Option<Duration>;
}

#[cfg(test)]
const _: Option<&dyn RetryPolicy> = None;

/// Exponential backoff with full jitter: a delay uniform in
/// `[0, min(max_delay, base · 2^(attempt-1))]`, at least the provider's
/// `Retry-After`, and no retry once the total backoff would pass `max_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first retry's delay cap.
    pub base: Duration,
    /// The largest single delay.
    pub max_delay: Duration,
    /// The most backoff one step may wait in all.
    pub max_total: Option<Duration>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_total: Some(Duration::from_secs(60)),
        }
    }
}

impl RetryPolicy for Backoff {
    fn delay(&self, retry: &RetryContext<'_>) -> Option<Duration> {
        let exponential = self
            .base
            .saturating_mul(1u32 << retry.attempt.saturating_sub(1).min(20))
            .min(self.max_delay);
        let delay = exponential
            .mul_f64(retry.jitter.clamp(0.0, 1.0))
            .max(retry.retry_after.unwrap_or_default());
        match self.max_total {
            Some(cap) if retry.waited + delay > cap => None,
            _ => Some(delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Backoff, RetryContext, RetryPolicy};
    use crate::error::FailureKind;

    #[test]
    fn full_jitter_within_bounds_with_retry_after_floor_and_total_cap() {
        let policy = Backoff {
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_total: Some(Duration::from_secs(3)),
        };
        let failure = FailureKind::TimedOut {
            after: Duration::from_secs(1),
        };
        let cx = |attempt, jitter, retry_after, waited| RetryContext {
            step: "s",
            attempt,
            failure: &failure,
            retry_after,
            waited,
            jitter,
        };
        assert_eq!(
            policy.delay(&cx(1, 1.0, None, Duration::ZERO)),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            policy.delay(&cx(3, 0.5, None, Duration::ZERO)),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            policy.delay(&cx(9, 1.0, None, Duration::ZERO)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            policy.delay(&cx(1, 0.0, Some(Duration::from_secs(2)), Duration::ZERO)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.delay(&cx(2, 1.0, None, Duration::from_millis(2900))),
            None
        );
    }
}
