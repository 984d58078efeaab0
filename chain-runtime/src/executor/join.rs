//! The dataflow join that drives a run's steps.
//!
//! Every step of a run is an `async` block that waits for the slots it reads,
//! runs, and fills the slot it writes; all of them are polled by one
//! [`join_steps`] inside the run's own future. No task is spawned per step:
//! dropping the run's future drops every step in flight.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::run::RunCx;
use crate::error::ChainError;

/// One step of a run, as the join sees it.
#[doc(hidden)]
pub type Branch<'a> = Pin<&'a mut (dyn Future<Output = Result<(), ChainError>> + Send + 'a)>;

/// Polls all steps of a run until every one has finished or one has failed.
///
/// Each pass polls the unfinished steps in topological order, so a chain of
/// steps that finish without waiting runs in a single pass. When a step finishes
/// (its slot is now set) the join makes another pass, which is how waiting
/// consumers learn that their input exists; otherwise it returns `Pending` and
/// is woken by whatever the in-flight steps are waiting on (a model call, a
/// timer). The first error ends the join; the caller then drops every other
/// step, cancelling them.
///
/// A step that suspends (a human step without its answer) does not end the
/// join: the steps that do not need its key go on. Once no step of the run
/// executes and the steps left all wait for keys, the join ends with the
/// suspension (every question the run asked, merged).
#[doc(hidden)]
pub fn join_steps<'a, const N: usize>(
    run: &'a RunCx,
    branches: [Branch<'a>; N],
) -> JoinSteps<'a, N> {
    join_steps_within(run, branches, None)
}

/// [`join_steps`], failing the run when `deadline` passes first.
#[doc(hidden)]
pub fn join_steps_within<'a, const N: usize>(
    run: &'a RunCx,
    branches: [Branch<'a>; N],
    deadline: Option<RunDeadline>,
) -> JoinSteps<'a, N> {
    JoinSteps {
        run,
        branches,
        done: [false; N],
        deadline,
        suspended: None,
    }
}

/// What the top-level join watches besides the steps: the run's deadline
/// and the renewal of its lease (no extra future layer, so the run's state
/// is never moved).
#[doc(hidden)]
pub struct RunDeadline {
    pub(crate) sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    pub(crate) chain: &'static str,
    pub(crate) after: std::time::Duration,
    pub(crate) lease: Option<super::lease::LeaseKeeper>,
}

impl std::fmt::Debug for RunDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunDeadline")
            .field("after", &self.after)
            .field("lease", &self.lease)
            .finish()
    }
}

/// Future of [`join_steps`].
#[doc(hidden)]
pub struct JoinSteps<'a, const N: usize> {
    run: &'a RunCx,
    branches: [Branch<'a>; N],
    done: [bool; N],
    deadline: Option<RunDeadline>,
    /// The questions of the steps that suspended.
    suspended: Option<ChainError>,
}

impl<const N: usize> std::fmt::Debug for JoinSteps<'_, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinSteps")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<const N: usize> Future for JoinSteps<'_, N> {
    type Output = Result<(), ChainError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Woken: time has passed since the run's last clock reading.
        this.run.shared.stale();
        if let Some(deadline) = &mut this.deadline {
            if let Some(sleep) = &mut deadline.sleep
                && sleep.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Err(ChainError::run_failed(
                    deadline.chain,
                    crate::error::FailureKind::DeadlineExceeded {
                        after: deadline.after,
                    },
                )));
            }
            if let Some(keeper) = &mut deadline.lease
                && let Poll::Ready(lost) = keeper.poll_keep(cx)
            {
                return Poll::Ready(Err(lost));
            }
        }
        loop {
            let mut progressed = false;
            let mut pending = 0usize;
            for (branch, done) in this.branches.iter_mut().zip(this.done.iter_mut()) {
                if *done {
                    continue;
                }
                match branch.as_mut().poll(cx) {
                    Poll::Ready(Ok(())) => {
                        *done = true;
                        progressed = true;
                    }
                    Poll::Ready(Err(error)) if error.is_suspension() => {
                        *done = true;
                        progressed = true;
                        this.run.shared.activity.suspended();
                        this.suspended = Some(match this.suspended.take() {
                            Some(earlier) => earlier.merge_suspension(error),
                            None => error,
                        });
                    }
                    Poll::Ready(Err(error)) => {
                        *done = true;
                        return Poll::Ready(Err(error));
                    }
                    Poll::Pending => pending += 1,
                }
            }
            if pending == 0 {
                return Poll::Ready(this.suspended.take().map_or(Ok(()), Err));
            }
            if !progressed {
                // Suspended, and nothing executes: what is left waits for
                // keys that only an answer brings.
                if this.suspended.is_some() && this.run.shared.activity.quiet(cx.waker()) {
                    return Poll::Ready(this.suspended.take().map_or(Ok(()), Err));
                }
                return Poll::Pending;
            }
        }
    }
}
