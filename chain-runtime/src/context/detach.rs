//! [`DetachOnDrop`]: a future polled in place that, if dropped before it
//! finishes, moves to a task of its own and finishes there.
//!
//! A model call is billed whether or not its step still wants the answer, so
//! a call cancelled with its step (a sibling failed, an attempt timed out)
//! must still run to its end to count its tokens. Spawning every call as a
//! task would guarantee that, at the price of a task and a cross-thread
//! wake-up per call; polling in place and spawning only on cancellation
//! costs one allocation.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A boxed future polled in place; dropped after it started and before it
/// finished, it is spawned onto the current tokio runtime (if there is one)
/// and runs to its end. One that was never polled is dropped unstarted.
pub(crate) struct DetachOnDrop<T: Send + 'static> {
    future: Option<Pin<Box<dyn Future<Output = T> + Send>>>,
    started: bool,
}

impl<T: Send + 'static> DetachOnDrop<T> {
    pub(crate) fn new(future: impl Future<Output = T> + Send + 'static) -> Self {
        Self {
            future: Some(Box::pin(future)),
            started: false,
        }
    }
}

impl<T: Send + 'static> Future for DetachOnDrop<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let Some(future) = self.future.as_mut() else {
            // Polled after it finished: a bug in the caller, never ours.
            return Poll::Pending;
        };
        let output = future.as_mut().poll(cx);
        self.started = true;
        let output = std::task::ready!(output);
        self.future = None;
        Poll::Ready(output)
    }
}

impl<T: Send + 'static> Drop for DetachOnDrop<T> {
    fn drop(&mut self) {
        // The box moves, the future inside does not: it resumes where it
        // was. A future that panicked (so is unwinding through here) is
        // not resumed.
        if self.started
            && !std::thread::panicking()
            && let Some(future) = self.future.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            drop(runtime.spawn(future));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::DetachOnDrop;

    #[tokio::test(start_paused = true)]
    async fn a_finished_future_gives_its_output_in_place() {
        let out = DetachOnDrop::new(async { 7 }).await;
        assert_eq!(out, 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_future_runs_to_its_end_on_a_task() {
        let ended = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ended);
        let call = DetachOnDrop::new(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            flag.store(true, Ordering::SeqCst);
        });
        // Cancelled half way.
        let cut = tokio::time::timeout(Duration::from_millis(50), call).await;
        assert!(cut.is_err());
        assert!(!ended.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(ended.load(Ordering::SeqCst), "the detached call finished");
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_never_polled_is_dropped_unstarted() {
        let ended = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ended);
        drop(DetachOnDrop::new(async move {
            flag.store(true, Ordering::SeqCst);
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!ended.load(Ordering::SeqCst));
    }
}
