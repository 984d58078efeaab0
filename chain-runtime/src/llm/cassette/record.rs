//! [`RecordingModel`]: a model that writes every call it forwards to a cassette.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Entry, RecordedError, VERSION, hash_of, io_error, request_json};
use crate::llm::{BoxFuture, ChatRequest, Completion, DeltaSink, LanguageModel, LlmError};

/// Wraps a model and appends each call it answers — request, reply (with
/// the pieces of a streamed reply) or failure — to a cassette, one JSON line
/// per call, flushed as it ends (a crash keeps what was recorded). Made by
/// [`Cassette::record`](super::Cassette::record).
#[derive(Debug, Clone)]
pub struct RecordingModel {
    inner: Arc<dyn LanguageModel>,
    sink: Arc<Sink>,
}

/// The cassette file being written, and what must never be written into it.
struct Sink {
    path: PathBuf,
    file: Mutex<File>,
    secrets: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RecordingModel {
    pub(super) fn create(path: &Path, inner: Arc<dyn LanguageModel>) -> Result<Self, LlmError> {
        let path = path.to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_error("create the folder of", &path, e))?;
        }
        let file = File::create(&path).map_err(|e| io_error("create", &path, e))?;
        Ok(Self {
            inner,
            sink: Arc::new(Sink {
                path,
                file: Mutex::new(file),
                secrets: Mutex::new(secrets_in_env()),
            }),
        })
    }

    /// Also blanks `secret` out of every line written (the values of the
    /// environment's `*_API_KEY`, `*_TOKEN` and `*_SECRET` variables always are).
    #[must_use]
    pub fn redact(self, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        if !secret.is_empty() {
            self.sink
                .secrets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(secret);
        }
        self
    }

    /// Records `other` into the same cassette: one cassette for a runtime's
    /// default and named models (replay each with
    /// [`Cassette::replay_named`](super::Cassette::replay_named)).
    #[must_use]
    pub fn also(&self, other: impl LanguageModel) -> RecordingModel {
        RecordingModel {
            inner: Arc::new(other),
            sink: Arc::clone(&self.sink),
        }
    }

    /// Records one finished call.
    fn write(
        &self,
        request: &ChatRequest,
        result: &Result<Completion, LlmError>,
        deltas: Vec<String>,
    ) -> Result<(), LlmError> {
        let json = request_json(request);
        let (reply, error) = match result {
            Ok(completion) => (Some(completion.clone()), None),
            Err(error) => (
                None,
                Some(RecordedError {
                    message: error.to_string(),
                    retryable: error.is_retryable(),
                }),
            ),
        };
        let entry = Entry {
            v: VERSION,
            hash: hash_of(request.step, &json),
            step: request.step.map(str::to_owned),
            model: self.inner.name().to_owned(),
            request: json,
            reply,
            deltas,
            error,
        };
        let mut line = serde_json::to_string(&entry)
            .map_err(|e| io_error("encode a call for", &self.sink.path, e))?;
        for secret in self
            .sink
            .secrets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            line = line.replace(secret.as_str(), "***");
        }
        line.push('\n');
        let mut file = self
            .sink
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        file.write_all(line.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| io_error("write", &self.sink.path, e))
    }
}

impl LanguageModel for RecordingModel {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, LlmError>> {
        Box::pin(async move {
            let pieces: Arc<Mutex<Vec<String>>> = Arc::default();
            let result = match &request.on_delta {
                // A streamed reply: its pieces are recorded as they pass.
                Some(listener) => {
                    let mut teed = request.clone();
                    let (listener, gathered) = (listener.clone(), Arc::clone(&pieces));
                    teed.on_delta = Some(DeltaSink::new(move |piece| {
                        gathered
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(piece.to_owned());
                        listener.send(piece);
                    }));
                    self.inner.complete(&teed).await
                }
                None => self.inner.complete(request).await,
            };
            let deltas =
                std::mem::take(&mut *pieces.lock().unwrap_or_else(PoisonError::into_inner));
            // A call that cannot be recorded fails: a cassette missing a
            // call would only fail later, in a replay, far from the cause.
            self.write(request, &result, deltas)?;
            result
        })
    }
}

/// The values of the environment's `*_API_KEY` and `*_TOKEN` variables
/// (those long enough to be keys).
fn secrets_in_env() -> Vec<String> {
    std::env::vars()
        .filter(|(name, value)| {
            let name = name.to_ascii_uppercase();
            (name.ends_with("_API_KEY") || name.ends_with("_TOKEN") || name.ends_with("_SECRET"))
                && value.len() >= 8
        })
        .map(|(_, value)| value)
        .collect()
}
