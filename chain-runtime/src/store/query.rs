//! Listing runs: [`RunQuery`] narrows a listing, [`RunSummary`] is one row.

use super::StoredStatus;
use crate::ids::RunId;

/// One run, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Its id.
    pub run_id: RunId,
    /// The run that called this one as a sub-chain, if any.
    pub parent: Option<RunId>,
    /// The chain's name.
    pub chain: String,
    /// How it stands.
    pub status: StoredStatus,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// When it was last written, in milliseconds since the Unix epoch.
    pub updated_unix_ms: u64,
    /// How many unit outputs it has recorded.
    pub units: u64,
}

/// Which runs [`CheckpointStore::list_runs`](super::CheckpointStore::list_runs) returns: every field narrows the
/// listing; the default lists every top-level run, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    /// Only runs in this state.
    pub status: Option<StoredStatus>,
    /// Only runs of this chain.
    pub chain: Option<String>,
    /// Only runs started before this time (ms since the Unix epoch).
    pub started_before_unix_ms: Option<u64>,
    /// Only runs started at or after this time (ms since the Unix epoch).
    pub started_after_unix_ms: Option<u64>,
    /// Sub-chain runs too (by default only top-level runs are listed).
    pub include_sub_runs: bool,
    /// At most this many runs.
    pub limit: Option<usize>,
}

impl RunQuery {
    /// Every top-level run.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only runs in `status`.
    #[must_use]
    pub fn status(mut self, status: StoredStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only runs of `chain`.
    #[must_use]
    pub fn chain(mut self, chain: impl Into<String>) -> Self {
        self.chain = Some(chain.into());
        self
    }

    /// Only runs started before `unix_ms`.
    #[must_use]
    pub fn started_before(mut self, unix_ms: u64) -> Self {
        self.started_before_unix_ms = Some(unix_ms);
        self
    }

    /// Only runs started at or after `unix_ms`.
    #[must_use]
    pub fn started_after(mut self, unix_ms: u64) -> Self {
        self.started_after_unix_ms = Some(unix_ms);
        self
    }

    /// Sub-chain runs too.
    #[must_use]
    pub fn with_sub_runs(mut self) -> Self {
        self.include_sub_runs = true;
        self
    }

    /// At most `n` runs.
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Whether `run` is one this query lists (stores may filter in their own
    /// query language instead).
    pub fn matches(&self, run: &RunSummary) -> bool {
        self.status.is_none_or(|status| run.status == status)
            && self.chain.as_deref().is_none_or(|chain| run.chain == chain)
            && self
                .started_before_unix_ms
                .is_none_or(|t| run.started_unix_ms < t)
            && self
                .started_after_unix_ms
                .is_none_or(|t| run.started_unix_ms >= t)
            && (self.include_sub_runs || run.parent.is_none())
    }
}
