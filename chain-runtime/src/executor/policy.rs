//! The pure decisions of a step's attempts: after a failed attempt, re-ask,
//! retry after a delay, or give up; once the attempts are spent, which
//! fallback answers. No clock, no runtime, no I/O: every branch is a unit test.

use std::time::Duration;

use crate::error::FailureKind;
use crate::retry::{RetryContext, RetryPolicy};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Run the step again with the validator's message as feedback.
    Reask,
    /// Run the step again after this backoff.
    Retry(Duration),
    /// Stop: the step failed.
    Fail,
}

/// What answers once a step's attempts are spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fallback {
    /// The named model, with a fresh set of attempts.
    Model(&'static str),
    /// The step's typed default.
    Default,
    /// Nothing: the step fails.
    None,
}

/// One failed attempt, as the policy sees it.
#[derive(Debug)]
pub(crate) struct Failure<'a> {
    /// The step's name.
    pub(crate) step: &'static str,
    /// The attempt that failed, from 1.
    pub(crate) attempt: u32,
    /// Why it failed.
    pub(crate) kind: &'a FailureKind,
    /// Whether a retry may help (the error's own classification).
    pub(crate) retryable: bool,
    /// The provider's `Retry-After`, if it sent one.
    pub(crate) retry_after: Option<Duration>,
    /// A uniform number in `[0, 1)` for the backoff's jitter.
    pub(crate) jitter: f64,
}

/// What is left of a step's budgets while its attempts run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budgets {
    retries_left: u32,
    reasks_left: u32,
    waited: Duration,
}

impl Budgets {
    /// A step's budgets: `retries` retries, `reasks` re-asks, no backoff yet.
    pub(crate) fn new(retries: u32, reasks: u32) -> Self {
        Self {
            retries_left: retries,
            reasks_left: reasks,
            waited: Duration::ZERO,
        }
    }

    /// Decides what follows `failure`, spending from the budgets.
    ///
    /// A validation rejection is re-asked while re-asks are left (its own
    /// budget: transport errors never become feedback). A retryable failure
    /// is retried while retries are left and `policy` gives a delay. Anything
    /// else fails the step.
    pub(crate) fn decide(&mut self, failure: &Failure<'_>, policy: &dyn RetryPolicy) -> Decision {
        if matches!(failure.kind, FailureKind::Validation { .. }) && self.reasks_left > 0 {
            self.reasks_left -= 1;
            return Decision::Reask;
        }
        if !failure.retryable || self.retries_left == 0 {
            return Decision::Fail;
        }
        let delay = policy.delay(&RetryContext {
            step: failure.step,
            attempt: failure.attempt,
            failure: failure.kind,
            retry_after: failure.retry_after,
            waited: self.waited,
            jitter: failure.jitter,
        });
        match delay {
            Some(delay) => {
                self.retries_left -= 1;
                self.waited = self.waited.saturating_add(delay);
                Decision::Retry(delay)
            }
            None => Decision::Fail,
        }
    }
}

/// Which fallback answers after a step failed with `kind`: a panic or a
/// store failure is never papered over, and a step waiting for an answer
/// (its sub-chain suspended) has not failed; otherwise the fallback model first
/// (if it has not been tried), then the typed default.
pub(crate) fn fallback(
    kind: &FailureKind,
    model: Option<&'static str>,
    model_tried: bool,
    has_default: bool,
) -> Fallback {
    if matches!(
        kind,
        FailureKind::Panicked { .. } | FailureKind::Checkpoint(_) | FailureKind::Suspended { .. }
    ) {
        return Fallback::None;
    }
    match (model, model_tried, has_default) {
        (Some(name), false, _) => Fallback::Model(name),
        (_, _, true) => Fallback::Default,
        _ => Fallback::None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Budgets, Decision, Failure, Fallback, fallback};
    use crate::error::FailureKind;
    use crate::retry::{Backoff, RetryContext, RetryPolicy};
    use crate::store::StoreError;

    /// A policy that always waits `delay` (or gives up with `None`).
    struct Fixed(Option<Duration>);

    impl RetryPolicy for Fixed {
        fn delay(&self, _: &RetryContext<'_>) -> Option<Duration> {
            self.0
        }
    }

    fn failure(kind: &FailureKind, retryable: bool) -> Failure<'_> {
        Failure {
            step: "s",
            attempt: 1,
            kind,
            retryable,
            retry_after: None,
            jitter: 0.5,
        }
    }

    fn validation() -> FailureKind {
        FailureKind::Validation {
            message: "too short".into(),
        }
    }

    fn timed_out() -> FailureKind {
        FailureKind::TimedOut {
            after: Duration::from_secs(1),
        }
    }

    #[test]
    fn retryable_failures_retry_until_the_retries_are_spent() {
        let policy = Fixed(Some(Duration::from_millis(100)));
        let kind = timed_out();
        let mut budgets = Budgets::new(2, 0);
        let ms = Duration::from_millis(100);
        assert_eq!(
            budgets.decide(&failure(&kind, true), &policy),
            Decision::Retry(ms)
        );
        assert_eq!(
            budgets.decide(&failure(&kind, true), &policy),
            Decision::Retry(ms)
        );
        assert_eq!(
            budgets.decide(&failure(&kind, true), &policy),
            Decision::Fail
        );
    }

    #[test]
    fn final_errors_never_retry() {
        let kind = FailureKind::Panicked {
            message: "boom".into(),
        };
        let mut budgets = Budgets::new(5, 5);
        let policy = Fixed(Some(Duration::ZERO));
        assert_eq!(
            budgets.decide(&failure(&kind, false), &policy),
            Decision::Fail
        );
        // Nothing was spent by the refusal.
        assert_eq!(budgets, Budgets::new(5, 5));
    }

    #[test]
    fn a_policy_that_gives_up_fails_the_step_and_spends_nothing() {
        let kind = timed_out();
        let mut budgets = Budgets::new(3, 0);
        assert_eq!(
            budgets.decide(&failure(&kind, true), &Fixed(None)),
            Decision::Fail
        );
        assert_eq!(budgets, Budgets::new(3, 0));
    }

    #[test]
    fn rejections_use_the_reask_budget_then_fail_without_retrying() {
        let kind = validation();
        let policy = Fixed(Some(Duration::ZERO));
        let mut budgets = Budgets::new(3, 2);
        // Validation is not retryable: once re-asks are spent the step fails
        // even though retries are left.
        assert_eq!(
            budgets.decide(&failure(&kind, false), &policy),
            Decision::Reask
        );
        assert_eq!(
            budgets.decide(&failure(&kind, false), &policy),
            Decision::Reask
        );
        assert_eq!(
            budgets.decide(&failure(&kind, false), &policy),
            Decision::Fail
        );
    }

    #[test]
    fn reasks_and_retries_are_separate_budgets() {
        let policy = Fixed(Some(Duration::from_millis(1)));
        let (rejected, flaky) = (validation(), timed_out());
        let mut budgets = Budgets::new(1, 1);
        assert_eq!(
            budgets.decide(&failure(&flaky, true), &policy),
            Decision::Retry(Duration::from_millis(1))
        );
        assert_eq!(
            budgets.decide(&failure(&rejected, false), &policy),
            Decision::Reask
        );
        assert_eq!(
            budgets.decide(&failure(&flaky, true), &policy),
            Decision::Fail
        );
        assert_eq!(
            budgets.decide(&failure(&rejected, false), &policy),
            Decision::Fail
        );
    }

    #[test]
    fn backoff_sees_what_was_already_waited() {
        // Backoff caps the total wait: 3 s of 2 s delays allows one retry.
        let policy = Backoff {
            base: Duration::from_secs(2),
            max_delay: Duration::from_secs(2),
            max_total: Some(Duration::from_secs(3)),
        };
        let kind = timed_out();
        let mut budgets = Budgets::new(10, 0);
        let mut first = failure(&kind, true);
        first.jitter = 0.999_999;
        assert!(matches!(
            budgets.decide(&first, &policy),
            Decision::Retry(_)
        ));
        let mut second = failure(&kind, true);
        second.attempt = 2;
        second.jitter = 0.999_999;
        assert_eq!(budgets.decide(&second, &policy), Decision::Fail);
    }

    #[test]
    fn retry_after_reaches_the_policy() {
        let policy = Backoff::default();
        let kind = timed_out();
        let mut budgets = Budgets::new(1, 0);
        let mut rate_limited = failure(&kind, true);
        rate_limited.jitter = 0.0;
        rate_limited.retry_after = Some(Duration::from_secs(7));
        assert_eq!(
            budgets.decide(&rate_limited, &policy),
            Decision::Retry(Duration::from_secs(7))
        );
    }

    #[test]
    fn fallbacks_come_in_order_and_never_after_a_panic_or_a_store_failure() {
        let failed = timed_out();
        assert_eq!(
            fallback(&failed, Some("big"), false, true),
            Fallback::Model("big")
        );
        assert_eq!(
            fallback(&failed, Some("big"), true, true),
            Fallback::Default
        );
        assert_eq!(fallback(&failed, Some("big"), true, false), Fallback::None);
        assert_eq!(fallback(&failed, None, false, true), Fallback::Default);
        assert_eq!(fallback(&failed, None, false, false), Fallback::None);
        let panicked = FailureKind::Panicked {
            message: "boom".into(),
        };
        assert_eq!(
            fallback(&panicked, Some("big"), false, true),
            Fallback::None
        );
        let store = FailureKind::Checkpoint(StoreError::Io("disk full".into()));
        assert_eq!(fallback(&store, None, false, true), Fallback::None);
        let waiting = FailureKind::Suspended {
            waiting: Vec::new(),
        };
        assert_eq!(fallback(&waiting, Some("big"), false, true), Fallback::None);
    }

    #[test]
    fn a_step_waiting_for_an_answer_is_neither_retried_nor_reasked() {
        let waiting = FailureKind::Suspended {
            waiting: Vec::new(),
        };
        let policy = Fixed(Some(Duration::from_millis(100)));
        let mut budgets = Budgets::new(3, 3);
        assert_eq!(
            budgets.decide(&failure(&waiting, waiting.is_retryable()), &policy),
            Decision::Fail
        );
    }
}
