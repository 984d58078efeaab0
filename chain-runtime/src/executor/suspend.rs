//! Human steps (`step!(key: T = human(inputs), wait = 48h)`): the answer is
//! the step's recorded output; without one the step records its question
//! and suspends, and the run ends `Suspended` once nothing else can run.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::run::RunCx;
use crate::definition::StepDef;
use crate::error::{ChainError, FailureKind};
use crate::events::EventKind;
use crate::human::{Answered, Waiting, Within, author_unit, question_unit};
use crate::ids::unix_ms;
use crate::report::{Outcome, RunStatus, StepStatus};
use crate::store::{Saved, StoreError, StoredStatus};

impl RunCx {
    /// Human step `index`: its answer if one was given (recorded as the
    /// step's output); past its `wait`, the `fallback`'s value or an
    /// [`Unanswered`](FailureKind::Unanswered) failure; otherwise its
    /// question is recorded (once: the first record keeps its deadline) and
    /// the step suspends. `payload` is what the question shows (the step's
    /// inputs), `schema` the answer type's JSON Schema.
    pub async fn human<A, D>(
        &self,
        index: usize,
        payload: Value,
        schema: Value,
        fallback: Option<D>,
    ) -> Result<A, ChainError>
    where
        A: Serialize + DeserializeOwned + Send + Sync + 'static,
        D: FnOnce() -> A,
    {
        let _active = self.shared.activity.begin();
        let def = self.step_def(index)?;
        self.human_started(index);
        if self.store().is_none() {
            self.end(index, false, None);
            let kind = FailureKind::Checkpoint(StoreError::NoStore);
            return Err(self.step_error(def, index, kind));
        }
        if let Some(answer) = self.restore::<A>(def, index, 0)? {
            let author = self.restored_author(def);
            self.shared.emit(|| EventKind::InputReceived {
                step: def.name,
                index,
                key: def.key,
                author,
            });
            self.end(index, true, None);
            return Ok(answer);
        }
        let question = match self.question(def, index, payload, schema).await {
            Ok(question) => question,
            Err(error) => {
                self.end(index, false, None);
                return Err(error);
            }
        };
        if question.expired_at(unix_ms()) {
            return self.unanswered(def, index, fallback).await;
        }
        self.shared.record(index, |record| {
            record.status = StepStatus::Waiting;
        });
        self.shared.emit(|| EventKind::InputRequested {
            step: def.name,
            index,
            key: def.key,
            prompt: question.prompt.clone(),
        });
        Err(ChainError::run_failed(
            self.shared.chain.name,
            FailureKind::Suspended {
                waiting: vec![question],
            },
        ))
    }

    /// Marks human step `index` started (it ran, whatever it decides).
    fn human_started(&self, index: usize) {
        let now = self.now();
        self.shared.record(index, |record| {
            record.ready_at.get_or_insert(now);
            record.started_at.get_or_insert(now);
            record.status = StepStatus::Running;
        });
    }

    /// Who answered human step `def`, as recorded beside the answer.
    fn restored_author(&self, def: &'static StepDef) -> Option<String> {
        let restored = self.shared.restored();
        let bytes = restored.get(&(author_unit(def.key), 0))?;
        serde_json::from_slice::<Answered>(bytes).ok()?.author
    }

    /// The question of human step `def`: as first recorded, or recorded now.
    async fn question(
        &self,
        def: &'static StepDef,
        index: usize,
        payload: Value,
        schema: Value,
    ) -> Result<Waiting, ChainError> {
        let unit = question_unit(def.key);
        let recorded = self.shared.restored().get(&(unit.clone(), 0)).cloned();
        if let Some(bytes) = recorded {
            return self.decode(def, index, &bytes);
        }
        let asked = unix_ms();
        let root = self.shared.root();
        let question = Waiting {
            run_id: self.shared.id,
            chain: self.shared.chain.name.to_owned(),
            within: (root.id != self.shared.id).then(|| Within {
                run_id: root.id,
                chain: root.chain.name.to_owned(),
            }),
            key: def.key.to_owned(),
            prompt: def
                .options
                .prompt
                .map_or_else(|| format!("An answer for `{}`", def.key), str::to_owned),
            payload,
            schema,
            asked_unix_ms: asked,
            deadline_unix_ms: def
                .options
                .wait
                .map(|wait| asked.saturating_add(wait.as_millis() as u64)),
        };
        let bytes = self.encode(def, index, &question)?;
        let Some(store) = self.store() else {
            return Ok(question);
        };
        match store.save_step(self.shared.id, &unit, 0, &bytes).await {
            Ok(Saved::Existing(first)) => self.decode(def, index, &first),
            Ok(_) => Ok(question),
            Err(error) => Err(self.checkpoint_error(def, index, error)),
        }
    }

    /// Human step `index` went unanswered past its `wait`: its fallback
    /// answers (recorded as the answer), or the step fails.
    async fn unanswered<A, D>(
        &self,
        def: &'static StepDef,
        index: usize,
        fallback: Option<D>,
    ) -> Result<A, ChainError>
    where
        A: Serialize + DeserializeOwned + Send + Sync + 'static,
        D: FnOnce() -> A,
    {
        let Some(fallback) = fallback else {
            self.end(index, false, None);
            let kind = FailureKind::Unanswered {
                key: def.key,
                wait: def.options.wait.unwrap_or_default(),
            };
            return Err(self.step_error(def, index, kind));
        };
        // An answer that raced the deadline in wins over the fallback.
        match self.persist(def, index, 0, fallback(), None).await {
            Ok((value, _)) => {
                self.shared.record(index, |record| {
                    record.fallback = Some("default".to_owned());
                });
                self.shared.emit(|| EventKind::StepFallback {
                    step: def.name,
                    index,
                    fallback: "default".to_owned(),
                });
                self.end(index, true, None);
                Ok(value)
            }
            Err(error) => {
                self.end(index, false, None);
                Err(error)
            }
        }
    }

    /// Ends a run whose steps suspended: it is recorded `Suspended` (its
    /// lease freed), and the outcome's error lists what it waits for.
    pub(super) async fn suspend<O>(mut self, error: ChainError) -> Outcome<O> {
        if let Err(error) = self.store_status(StoredStatus::Suspended, None).await {
            // The run's outputs could not be written: it is recorded failed,
            // and resuming it runs again what was lost.
            let error =
                ChainError::run_failed(self.shared.chain.name, FailureKind::Checkpoint(error));
            return Outcome {
                report: self.end_run(RunStatus::Failed),
                result: Err(error),
            };
        }
        self.shared.emit(|| EventKind::RunSuspended {
            waiting: error
                .waiting()
                .iter()
                .map(|question| question.key.clone())
                .collect(),
        });
        Outcome {
            report: self.end_run(RunStatus::Suspended),
            result: Err(error),
        }
    }
}
