//! Runtime-wide limits on model calls (shared by every run of a runtime) and
//! per-run budgets.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// A cap on tokens and/or cost for one run (its sub-chains included). A model
/// call that would start past the cap fails with
/// [`LlmError::BudgetExceeded`](crate::llm::LlmError::BudgetExceeded) before it is
/// made; the overshoot is at most the calls already in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunBudget {
    /// Most tokens (input + output) the run may use.
    pub max_tokens: Option<u64>,
    /// Most US dollars the run may spend (needs a [`PriceTable`](crate::llm::PriceTable)).
    pub max_cost_usd: Option<f64>,
}

/// What a run has spent so far, and its model calls still in flight;
/// shared with its sub-chains.
#[derive(Debug, Default)]
pub(crate) struct Spent {
    tokens: AtomicU64,
    /// Micro-dollars.
    cost: AtomicU64,
    /// Model calls started and not yet ended (see [`Spent::call_started`]).
    in_flight: AtomicUsize,
    /// Told when `in_flight` drops to zero.
    settled: Notify,
}

/// One model call in flight: counted in [`Spent`] until dropped.
pub(crate) struct InFlightCall(Arc<Spent>);

impl Drop for InFlightCall {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

impl Spent {
    pub(crate) fn add(&self, tokens: u64, cost_usd: Option<f64>) {
        // Saturating: a budget must never see a wrapped-around small total.
        let add = |counter: &AtomicU64, amount: u64| {
            let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |spent| {
                Some(spent.saturating_add(amount))
            });
        };
        add(&self.tokens, tokens);
        if let Some(cost) = cost_usd.filter(|c| c.is_finite() && *c > 0.0) {
            // `as` saturates a float too large for u64.
            add(&self.cost, (cost * 1_000_000.0).round() as u64);
        }
    }

    /// Counts a model call in flight until the returned guard is dropped.
    pub(crate) fn call_started(self: &Arc<Self>) -> InFlightCall {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlightCall(Arc::clone(self))
    }

    /// Waits until no model call is in flight, for at most `within`.
    pub(crate) async fn settle(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            // Registered before the check, so a call ending in between
            // still wakes it.
            let settled = self.settled.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return;
            }
        }
    }

    pub(crate) fn tokens(&self) -> u64 {
        self.tokens.load(Ordering::Relaxed)
    }

    pub(crate) fn cost_usd(&self) -> f64 {
        self.cost.load(Ordering::Relaxed) as f64 / 1_000_000.0
    }
}

/// A cap on model calls in flight and on calls per interval.
#[derive(Debug)]
pub(crate) struct CallLimits {
    pub(crate) concurrent: Option<Arc<Semaphore>>,
    pub(crate) rate: Option<RateLimiter>,
}

impl CallLimits {
    /// Waits for a slot (and a rate token); returns the permit to hold during
    /// the call and how long the wait was.
    pub(crate) async fn acquire(&self) -> (Option<OwnedSemaphorePermit>, Duration) {
        let start = Instant::now();
        let permit = match &self.concurrent {
            Some(semaphore) => Arc::clone(semaphore).acquire_owned().await.ok(),
            None => None,
        };
        if let Some(rate) = &self.rate {
            rate.take().await;
        }
        (permit, start.elapsed())
    }
}

/// A token bucket: `per_interval` calls per `interval`, bursting up to `per_interval`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_interval: f64,
    interval: Duration,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub(crate) fn new(per_interval: u32, interval: Duration) -> Self {
        let per_interval = f64::from(per_interval.max(1));
        Self {
            per_interval,
            interval,
            state: Mutex::new((per_interval, Instant::now())),
        }
    }

    async fn take(&self) {
        loop {
            let wait = {
                let mut state = self
                    .state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                let refill = now.saturating_duration_since(state.1).as_secs_f64()
                    / self.interval.as_secs_f64().max(f64::EPSILON)
                    * self.per_interval;
                state.0 = (state.0 + refill).min(self.per_interval);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return;
                }
                self.interval.mul_f64((1.0 - state.0) / self.per_interval)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Spent;

    #[test]
    fn spending_saturates_instead_of_wrapping() {
        let spent = Spent::default();
        spent.add(u64::MAX - 1, Some(f64::MAX));
        spent.add(10, Some(1.0));
        assert_eq!(spent.tokens(), u64::MAX);
        assert!(spent.cost_usd() > 1e12);
        spent.add(0, Some(f64::NAN));
        assert!(spent.cost_usd() > 1e12);
    }
}
