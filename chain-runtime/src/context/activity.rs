//! Which of a run's steps are executing: how a run learns that only waits
//! remain. A human step without an answer suspends; the steps that do not
//! depend on it keep running; once no step executes and every step left is
//! waiting for a key that will not come, the run ends `Suspended`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::Waker;

/// Steps of a run between their inputs' arrival and their output.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    active: AtomicUsize,
    /// Set once a step suspended: only then does a step's end wake the join.
    suspending: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Activity {
    /// A step began executing; it ends when the guard drops.
    pub(crate) fn begin(&self) -> Active<'_> {
        self.active.fetch_add(1, Ordering::AcqRel);
        Active { activity: self }
    }

    /// A step suspended: from now on, the join waits for quiet.
    pub(crate) fn suspended(&self) {
        self.suspending.store(true, Ordering::Release);
    }

    /// Whether no step executes; if some do, `waker` is woken when the last
    /// one ends.
    pub(crate) fn quiet(&self, waker: &Waker) -> bool {
        *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(waker.clone());
        self.active.load(Ordering::Acquire) == 0
    }
}

/// One executing step; dropping it (the step ended, or was cancelled) ends it.
#[derive(Debug)]
pub(crate) struct Active<'a> {
    activity: &'a Activity,
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        let left = self.activity.active.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 && self.activity.suspending.load(Ordering::Acquire) {
            let waker = self
                .activity
                .waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use super::Activity;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_last_step_to_end_wakes_a_suspending_join() {
        let activity = Activity::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let (a, b) = (activity.begin(), activity.begin());
        activity.suspended();
        assert!(!activity.quiet(&waker));
        drop(a);
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "one step still runs");
        drop(b);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(activity.quiet(&waker));
    }
}
