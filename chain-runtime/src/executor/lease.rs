//! Keeping a durable run's lease alive: while the run's top-level join is
//! polled, its lease is renewed every third of its length. A renewal the
//! store refuses means another owner took the run over (this one was
//! presumed dead): the run stops, so a run is never driven twice at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::{ChainError, FailureKind};
use crate::future::BoxFuture;
use crate::ids::{RunId, unix_ms};
use crate::store::{CheckpointStore, Claim, Lease, StoreError};

/// Renews one run's lease on a timer.
pub(crate) struct LeaseKeeper {
    store: Arc<dyn CheckpointStore>,
    run_id: RunId,
    owner: Arc<str>,
    lease: Duration,
    chain: &'static str,
    sleep: Pin<Box<tokio::time::Sleep>>,
    renewing: Option<BoxFuture<'static, Result<Claim, StoreError>>>,
}

impl LeaseKeeper {
    pub(crate) fn new(
        store: Arc<dyn CheckpointStore>,
        run_id: RunId,
        owner: Arc<str>,
        lease: Duration,
        chain: &'static str,
    ) -> Self {
        Self {
            store,
            run_id,
            owner,
            lease,
            chain,
            sleep: Box::pin(tokio::time::sleep(lease / 3)),
            renewing: None,
        }
    }

    /// Pending while the lease is kept; an error once it is lost.
    pub(crate) fn poll_keep(&mut self, cx: &mut Context<'_>) -> Poll<ChainError> {
        loop {
            if let Some(renewing) = &mut self.renewing {
                let answer = match renewing.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(answer) => answer,
                };
                self.renewing = None;
                let next = match answer {
                    Ok(Claim::Owned) => self.lease / 3,
                    Ok(_) => {
                        return Poll::Ready(ChainError::run_failed(
                            self.chain,
                            FailureKind::Checkpoint(StoreError::LeaseLost {
                                run_id: self.run_id,
                            }),
                        ));
                    }
                    // A store that failed once may answer next time; the
                    // lease still has two thirds to run.
                    Err(error) => {
                        tracing::warn!(run_id = %self.run_id, %error, "renewing the run's lease failed");
                        self.lease / 10
                    }
                };
                let deadline = tokio::time::Instant::now() + next;
                self.sleep.as_mut().reset(deadline);
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let (store, owner, run_id) = (
                Arc::clone(&self.store),
                Arc::clone(&self.owner),
                self.run_id,
            );
            let lease_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
            self.renewing = Some(Box::pin(async move {
                let now = unix_ms();
                let lease = Lease {
                    owner: &owner,
                    until_unix_ms: now.saturating_add(lease_ms),
                };
                store.claim_run(run_id, lease, now).await
            }));
        }
    }
}

impl std::fmt::Debug for LeaseKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseKeeper")
            .field("run_id", &self.run_id)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}
