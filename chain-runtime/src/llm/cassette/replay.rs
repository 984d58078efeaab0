//! [`ReplayModel`]: a model that answers from a cassette.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use similar::TextDiff;

use super::{Entry, RECORD_ENV, VERSION, describe_step, hash_of, request_json, shown};
use crate::llm::{BoxFuture, ChatRequest, Completion, LanguageModel, LlmError};

/// Lines of diff shown on a miss; the rest is summed up.
const DIFF_LINES: usize = 80;

/// Answers each request with the recorded call of the same stable hash (the
/// step and the request's JSON), in recorded order for identical requests
/// (the last answer repeats); a streamed request gets the recorded pieces.
/// Made by [`Cassette::replay`](super::Cassette::replay).
#[derive(Debug)]
pub struct ReplayModel {
    path: PathBuf,
    name: String,
    entries: Vec<Entry>,
    /// The cassette line of each entry (from 1), for messages.
    lines: Vec<usize>,
    /// Per hash, the entries recorded under it, in order.
    by_hash: HashMap<String, Vec<usize>>,
    /// Per hash, how many calls were answered.
    served: Mutex<HashMap<String, usize>>,
}

impl ReplayModel {
    pub(super) fn open(path: &Path, model: Option<&str>) -> Result<Self, LlmError> {
        let path = path.to_path_buf();
        let text = std::fs::read_to_string(&path).map_err(|e| LlmError::Cassette {
            message: format!(
                "could not read the cassette {}: {e}; record it first with {RECORD_ENV}=1 and a real model",
                shown(&path)
            ),
        })?;
        let mut entries = Vec::new();
        let mut lines = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry: Entry = serde_json::from_str(line).map_err(|e| LlmError::Cassette {
                message: format!(
                    "line {} of the cassette {} is not a recorded call: {e}",
                    number + 1,
                    shown(&path)
                ),
            })?;
            if entry.v != VERSION {
                return Err(LlmError::Cassette {
                    message: format!(
                        "line {} of the cassette {} has format version {} (this version reads {VERSION}); record it again with {RECORD_ENV}=1",
                        number + 1,
                        shown(&path),
                        entry.v
                    ),
                });
            }
            entries.push(entry);
            lines.push(number + 1);
        }
        let name = pick_model(&path, &entries, model)?;
        let (entries, lines): (Vec<Entry>, Vec<usize>) = entries
            .into_iter()
            .zip(lines)
            .filter(|(entry, _)| entry.model == name)
            .unzip();
        let mut by_hash: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            // Recomputed, so a request edited by hand is matched as edited.
            let hash = hash_of(entry.step.as_deref(), &entry.request);
            by_hash.entry(hash).or_default().push(index);
        }
        Ok(Self {
            path,
            name,
            entries,
            lines,
            by_hash,
            served: Mutex::new(HashMap::new()),
        })
    }

    /// How many calls the cassette holds for this model.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cassette holds no call for this model.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The recorded call answering `request`, or the miss.
    fn find(&self, request: &ChatRequest) -> Result<&Entry, LlmError> {
        let json = request_json(request);
        let hash = hash_of(request.step, &json);
        let Some(recorded) = self.by_hash.get(&hash) else {
            return Err(self.miss(request.step, &json, &hash));
        };
        let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        let count = served.entry(hash).or_insert(0);
        let index = recorded[(*count).min(recorded.len() - 1)];
        *count += 1;
        Ok(&self.entries[index])
    }

    /// The error for a request the cassette has no recording of: the step,
    /// and the closest recorded request as a diff.
    fn miss(&self, step: Option<&str>, request: &serde_json::Value, hash: &str) -> LlmError {
        let mut message = format!(
            "no recorded reply in the cassette {} for {} (request hash {hash})",
            shown(&self.path),
            describe_step(step)
        );
        let asked = rendered(step, request);
        let closest = self
            .entries
            .iter()
            .zip(&self.lines)
            .map(|(entry, line)| {
                let recorded = rendered(entry.step.as_deref(), &entry.request);
                let ratio = TextDiff::from_lines(&recorded, &asked).ratio();
                (entry.step.as_deref() == step, ratio, entry, *line, recorded)
            })
            .max_by(|a, b| {
                (a.0, a.1)
                    .partial_cmp(&(b.0, b.1))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        match closest {
            None => message.push_str(": the cassette has no calls of this model"),
            Some((_, _, entry, line, recorded)) => {
                message.push_str(&format!(
                    ". The closest recorded call ({}, line {line}) differs:\n",
                    describe_step(entry.step.as_deref())
                ));
                let diff = TextDiff::from_lines(&recorded, &asked);
                let unified = diff
                    .unified_diff()
                    .context_radius(2)
                    .header("recorded", "this request")
                    .to_string();
                let total = unified.lines().count();
                for text in unified.lines().take(DIFF_LINES) {
                    message.push_str(text);
                    message.push('\n');
                }
                if total > DIFF_LINES {
                    message.push_str(&format!("… {} more lines of diff\n", total - DIFF_LINES));
                }
            }
        }
        message.push_str(&format!(
            "If the change is intended, record the cassette again with {RECORD_ENV}=1."
        ));
        LlmError::Cassette { message }
    }
}

impl LanguageModel for ReplayModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, LlmError>> {
        let answer = self.find(request).and_then(|entry| {
            if let Some(sink) = &request.on_delta {
                match (&entry.reply, entry.deltas.is_empty()) {
                    (Some(reply), true) => sink.send(&reply.text),
                    _ => entry.deltas.iter().for_each(|piece| sink.send(piece)),
                }
            }
            entry.answer()
        });
        Box::pin(std::future::ready(answer))
    }
}

/// The model a replay answers as: the one asked for, or the cassette's only one.
fn pick_model(path: &Path, entries: &[Entry], model: Option<&str>) -> Result<String, LlmError> {
    let mut names: Vec<&str> = entries.iter().map(|entry| entry.model.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    match (model, names.as_slice()) {
        (Some(model), _) if names.contains(&model) => Ok(model.to_owned()),
        (Some(model), _) => Err(LlmError::Cassette {
            message: format!(
                "the cassette {} has no calls of the model `{model}`; it has: {}",
                shown(path),
                list(&names)
            ),
        }),
        (None, []) => Ok("replay".to_owned()),
        (None, [only]) => Ok((*only).to_owned()),
        (None, _) => Err(LlmError::Cassette {
            message: format!(
                "the cassette {} holds calls of several models ({}); replay each with `Cassette::replay_named`",
                shown(path),
                list(&names)
            ),
        }),
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A request as a diff shows it: the step, then its JSON, one field a line.
fn rendered(step: Option<&str>, request: &serde_json::Value) -> String {
    let json = serde_json::to_string_pretty(request).unwrap_or_default();
    format!("step: {}\n{json}\n", step.unwrap_or("(none)"))
}
