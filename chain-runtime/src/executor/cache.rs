//! The step-result cache (`cache = 1h` in `step!`): an output reused when the
//! same step runs on the same inputs with the same default model.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::run::RunCx;
use crate::definition::StepDef;
use crate::error::ChainError;
use crate::ids::unix_ms;
use crate::store::CheckpointStore;

/// Where one step's output is cached, and for how long.
pub(super) struct CacheEntry {
    store: Arc<dyn CheckpointStore>,
    key: String,
    ttl: Duration,
}

impl RunCx {
    /// The cache entry of step `def` on inputs hashing to `inputs`, if the
    /// step is cached and the runtime has a store.
    pub(super) fn cache_for(
        &self,
        def: &'static StepDef,
        inputs: Option<u64>,
    ) -> Option<CacheEntry> {
        let (ttl, inputs, store) = (def.options.cache?, inputs?, self.store()?);
        let model = self
            .shared
            .runtime
            .model()
            .map_or("-", |model| model.name());
        Some(CacheEntry {
            store: Arc::clone(store),
            key: format!(
                "{}/{}/{model}/{inputs:016x}",
                self.shared.chain.name, def.name
            ),
            ttl,
        })
    }

    /// The cached output, if there is one that reads back as `T`; a store
    /// that cannot be read fails the step.
    pub(super) async fn cache_get<T: DeserializeOwned>(
        &self,
        def: &'static StepDef,
        index: usize,
        entry: &CacheEntry,
    ) -> Result<Option<T>, ChainError> {
        let hit = entry
            .store
            .cache_get(&entry.key, unix_ms())
            .await
            .map_err(|error| self.checkpoint_error(def, index, error))?;
        // An entry of another type (the step's output changed) is a miss.
        Ok(hit.and_then(|bytes| serde_json::from_slice::<T>(&bytes).ok()))
    }

    /// Caches an output's bytes; a cache that cannot be written only costs a
    /// future call.
    pub(super) async fn cache_put(&self, def: &'static StepDef, entry: &CacheEntry, bytes: &[u8]) {
        let expires = unix_ms().saturating_add(entry.ttl.as_millis() as u64);
        if let Err(error) = entry.store.cache_put(&entry.key, bytes, expires).await {
            tracing::warn!(parent: &self.shared.span, step = def.name, %error, "step cache write failed");
        }
    }
}
