//! Run events: what happened, as it happens, for observers and event streams.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::ids::RunId;
use crate::llm::Usage;
use crate::report::RunStatus;

/// One thing that happened in a run.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The run it happened in.
    pub run_id: RunId,
    /// The run of the chain that called this one as a step, for a sub-chain.
    pub parent_run_id: Option<RunId>,
    /// The chain path of the run: `support_router › technical_support`.
    pub chain_path: Arc<str>,
    /// Time since the run started (virtual under `tokio::time::pause`).
    pub elapsed: Duration,
    /// Wall-clock time, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// What happened (flattened into the event's JSON: `"event": "step_started"`).
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The run started.
    RunStarted,
    /// An attempt of a step started (its last input had arrived).
    StepStarted {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The attempt, from 1.
        attempt: u32,
        /// The loop iteration, from 1 (1 for steps that are not loops).
        iteration: u32,
    },
    /// An attempt failed and the step will be tried again after `delay`.
    StepRetried {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The attempt that failed.
        attempt: u32,
        /// The backoff before the next attempt.
        delay: Duration,
        /// Why the attempt failed.
        error: String,
    },
    /// A step produced its output (every attempt and iteration done).
    StepFinished {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// Attempts used, over all iterations.
        attempts: u32,
        /// From the first attempt's start to the end.
        duration: Duration,
        /// Size of the output serialized as JSON, if measured.
        output_bytes: Option<u64>,
        /// Tokens its model calls used.
        usage: Usage,
        /// Their cost in US dollars, if the runtime has prices for the models.
        cost_usd: Option<f64>,
    },
    /// A step's output was rejected by validation and the step runs again,
    /// with the validator's message as `cx.feedback()`.
    StepReasked {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The attempt whose output was rejected.
        attempt: u32,
        /// What the validator said.
        message: String,
    },
    /// Inside a running attempt, a model reply was rejected (invalid JSON,
    /// cut off) and the model is asked again; the attempt goes on.
    ModelReasked {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The attempt the reply belonged to.
        attempt: u32,
        /// The re-ask's number within the call, from 1.
        reask: u32,
        /// Why the reply was rejected.
        reason: crate::report::ReaskReason,
        /// What was wrong with it (the parser's message).
        error: String,
    },
    /// A tool the model asked for ran (or was restored from the step's
    /// record, `restored`: it completed before and is not called again).
    ToolCalled {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The tool.
        tool: String,
        /// The call's address within the step (`ordinal.turn.call`).
        call: String,
        /// Bytes of arguments the model sent.
        argument_bytes: usize,
        /// How long it ran (zero when restored).
        duration: std::time::Duration,
        /// What went back to the model instead of a result, if it failed.
        error: Option<String>,
        /// Whether the result came from the step's record.
        restored: bool,
        /// Tokens of the model turn that asked for the call.
        turn_usage: crate::llm::Usage,
        /// What that turn cost, with a price table.
        turn_cost_usd: Option<f64>,
    },
    /// A piece of a model reply as it arrives (only with
    /// [`RuntimeBuilder::stream_tokens`](crate::RuntimeBuilder::stream_tokens)):
    /// a step's pieces concatenate to its reply's text.
    TokenDelta {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The text that arrived.
        text: String,
    },
    /// The JSON a `structured`/`json` reply holds so far (only with
    /// `stream_tokens`): not validated, not the step's output. Read it typed
    /// with [`Partial`].
    PartialOutput {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The value so far (open strings and containers closed).
        json: serde_json::Value,
    },
    /// A step's own progress report (`cx.progress(..)`).
    Progress {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// What the step said.
        message: String,
    },
    /// An element of a map step ended (succeeded, or failed for good).
    ItemFinished {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The element's position, from 0.
        item: usize,
        /// Whether it produced an output.
        succeeded: bool,
        /// Whether the step-result cache answered for it.
        cached: bool,
        /// `default` or `model:<name>` when a fallback answered for it.
        fallback: Option<String>,
        /// The attempts it used.
        attempts: u32,
        /// Tokens its model calls used.
        usage: Usage,
        /// Their cost in US dollars, if priced.
        cost_usd: Option<f64>,
    },
    /// A step's retries were spent and its fallback answered.
    StepFallback {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// `default` or `model:<name>`.
        fallback: String,
    },
    /// A step failed for good; the run stops.
    StepFailed {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The attempt that failed last.
        attempt: u32,
        /// Why.
        error: String,
        /// Whether a retry could have helped.
        retryable: bool,
    },
    /// A step will not run: it sits in a route arm that was not taken.
    StepSkipped {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
    },
    /// A step's output was restored from a checkpoint; it did not run.
    StepRestored {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
    },
    /// A step's output came from the step-result cache; it did not run.
    StepCached {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
    },
    /// A route picked its arm.
    RouteTaken {
        /// The key it branched on.
        key: &'static str,
        /// The arm's pattern.
        arm: &'static str,
    },
    /// An iteration of a loop step finished.
    LoopIteration {
        /// The step's name.
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The iteration, from 1.
        iteration: u32,
        /// Whether the `until` condition held on its output.
        converged: bool,
    },
    /// A human step asked its question: the run will suspend unless it is
    /// answered.
    InputRequested {
        /// The step's name (`human`).
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The key the answer goes under.
        key: &'static str,
        /// The question.
        prompt: String,
    },
    /// A human step's answer was read (given since the run suspended).
    InputReceived {
        /// The step's name (`human`).
        step: &'static str,
        /// Its index in declaration order.
        index: usize,
        /// The key the answer went under.
        key: &'static str,
        /// Who answered, if the answer said.
        author: Option<String>,
    },
    /// The run suspended: it waits for answers to these keys, holding no
    /// task (a `RunFinished` with status `Suspended` follows).
    RunSuspended {
        /// The keys waiting for answers.
        waiting: Vec<String>,
    },
    /// The run ended.
    RunFinished {
        /// How.
        status: RunStatus,
        /// How long it took.
        duration: Duration,
        /// Tokens used by all its steps.
        usage: Usage,
        /// Their cost in US dollars, if known.
        cost_usd: Option<f64>,
    },
}

/// Receives every event of every run of a [`Runtime`](crate::Runtime).
///
/// Called synchronously on the run's task: keep it quick (count, log, push to
/// a channel). Closures `Fn(&Event)` implement it.
pub trait Observer: Send + Sync + 'static {
    /// One event.
    fn on_event(&self, event: &Event);
}

impl<F> Observer for F
where
    F: Fn(&Event) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event) {
        self(event);
    }
}

#[cfg(test)]
const _: Option<&dyn Observer> = None;

/// Where a run sends its events when someone asked for a stream.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct EventSink(mpsc::UnboundedSender<Event>);

impl EventSink {
    pub(crate) fn send(&self, event: &Event) {
        // A dropped stream only means nobody listens any more.
        let _ = self.0.send(event.clone());
    }
}

/// The events of one run (and of its sub-chains), as a `Stream`; it ends when
/// the run has finished and every event was read.
pub struct EventStream {
    receiver: mpsc::UnboundedReceiver<Event>,
}

impl EventStream {
    /// A stream and the sink that feeds it.
    #[doc(hidden)]
    pub fn channel() -> (EventSink, EventStream) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (EventSink(sender), EventStream { receiver })
    }

    /// The next event, or `None` once the run is over.
    pub async fn next(&mut self) -> Option<Event> {
        self.receiver.recv().await
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl futures_core::Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.receiver.poll_recv(cx)
    }
}

/// A partial structured output of type `T`: the fields a reply has so far,
/// not validated. A distinct type, so it cannot be passed where a `T` (a
/// validated output) is expected; [`Partial::complete`] tries to read it as
/// one.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial<T> {
    json: serde_json::Value,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: serde::de::DeserializeOwned> Partial<T> {
    /// The partial output an event carries, if it is a
    /// [`PartialOutput`](EventKind::PartialOutput) of step `step`.
    pub fn of(event: &Event, step: &str) -> Option<Self> {
        match &event.kind {
            EventKind::PartialOutput {
                step: from, json, ..
            } if *from == step => Some(Self {
                json: json.clone(),
                _type: std::marker::PhantomData,
            }),
            _ => None,
        }
    }

    /// The value so far.
    pub fn json(&self) -> &serde_json::Value {
        &self.json
    }

    /// Field `name` so far, if the reply has reached it.
    pub fn field(&self, name: &str) -> Option<&serde_json::Value> {
        self.json.get(name)
    }

    /// The value read as a `T`, once every field it needs has arrived (a
    /// string field may still be cut short: the final output is the one
    /// the step returns).
    pub fn complete(&self) -> Option<T> {
        serde_json::from_value(self.json.clone()).ok()
    }
}
