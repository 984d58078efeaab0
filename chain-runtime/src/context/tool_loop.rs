//! The model/tool loop of an [`Llm`] handle given tools: send, run the calls
//! the model asked for (a turn's calls at once), send their results back,
//! until the model answers without calling one.
//!
//! Every model turn that asked for tools and every call's result is a
//! recorded unit of the step, addressed `key~ordinal.turn` and
//! `key~ordinal.turn.call` under the step's iteration (the ordinal counts
//! the step's calls, as for sub-chains). A step run again (resumed after a
//! crash, retried after a failure) replays the recorded turns and results
//! instead of calling the model and the tools again: a completed tool call
//! never runs twice.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::llm::Llm;
use crate::events::EventKind;
use crate::llm::{ChatRequest, Completion, LlmError, Message, ToolCall, Usage};
use crate::report::ToolCallRecord;
use crate::store::Saved;
use crate::tools::{Tool, ToolCx, ToolError};

/// Model turns one tool conversation may take unless the step says
/// otherwise (`cx.llm().max_turns(n)`).
pub(super) const DEFAULT_MAX_TURNS: u32 = 8;

/// Where one tool conversation stands: its ordinal among the step's calls
/// and the next model turn (re-asks continue the same conversation).
#[derive(Debug)]
pub(super) struct Conversation {
    ordinal: u32,
    turn: u32,
}

impl Llm<'_> {
    /// Sends `request`; with tools, runs the model/tool loop until the model
    /// answers without calling one, and returns that answer and the
    /// conversation (for a re-ask to continue).
    pub(super) async fn exchange(
        &self,
        mut request: ChatRequest,
        conversation: &mut Option<Conversation>,
    ) -> (Result<Completion, LlmError>, ChatRequest) {
        if self.tools.is_empty() {
            return self.send(request).await;
        }
        let cx = self.cx;
        let conversation = conversation.get_or_insert_with(|| Conversation {
            ordinal: cx.run.next_call(cx.index, cx.iteration, cx.attempt),
            turn: 0,
        });
        if request.tools.is_empty() {
            request.tools = self.tools.iter().map(|tool| tool.spec()).collect();
        }
        loop {
            if conversation.turn >= self.max_turns {
                let error = LlmError::ToolTurns {
                    step: cx.name,
                    max_turns: self.max_turns,
                };
                return (Err(error), request);
            }
            let turn = format!("{}.{}", conversation.ordinal, conversation.turn);
            conversation.turn += 1;
            let completion = match self.recorded::<Completion>(&turn) {
                Some(completion) => completion,
                None => {
                    let (result, sent) = self.send(request).await;
                    request = sent;
                    let completion = match result {
                        Ok(completion) if completion.tool_calls.is_empty() => {
                            return (Ok(completion), request);
                        }
                        Ok(completion) => completion,
                        Err(error) => return (Err(error), request),
                    };
                    if let Err(error) = self.record(&turn, &completion).await {
                        return (Err(error), request);
                    }
                    completion
                }
            };
            let calls = completion.tool_calls;
            let turn_usage = completion.usage;
            let results = join_all(
                calls
                    .iter()
                    .enumerate()
                    .map(|(i, call)| self.call_tool(format!("{turn}.{i}"), call, turn_usage)),
            )
            .await;
            request
                .messages
                .push(Message::tool_calls(completion.text, calls.clone()));
            for (call, result) in calls.iter().zip(results) {
                match result {
                    Ok(content) => request
                        .messages
                        .push(Message::tool_result(call.id.clone(), content)),
                    Err(error) => return (Err(error), request),
                }
            }
        }
    }

    /// One tool call, as recorded or run now (and then recorded): what goes
    /// back to the model, its result or what went wrong.
    async fn call_tool(
        &self,
        address: String,
        call: &ToolCall,
        turn_usage: Usage,
    ) -> Result<String, LlmError> {
        let cx = self.cx;
        let started = cx.run.elapsed();
        let called = Called {
            call,
            address: &address,
            started_at: started,
            turn_usage,
        };
        if let Some(content) = self.recorded::<String>(&address) {
            self.tool_called(called, None, true);
            return Ok(content);
        }
        let outcome = match self.tools.iter().find(|tool| tool.name() == call.name) {
            Some(tool) => {
                let tool_cx = ToolCx::new(cx.clone(), &call.name, address.clone());
                // Attributes follow the OpenTelemetry GenAI conventions.
                let span = tracing::info_span!(
                    "gen_ai.execute_tool",
                    otel.name = %format_args!("execute_tool {}", call.name),
                    gen_ai.operation.name = "execute_tool",
                    gen_ai.tool.name = %call.name,
                    gen_ai.tool.call.id = %call.id,
                );
                run_tool(tool, &tool_cx, &call.arguments)
                    .instrument(span)
                    .await
            }
            None => Err(ToolError::Arguments(format!(
                "there is no tool named `{}`; the tools are: {}",
                call.name,
                self.tool_names()
            ))),
        };
        let (content, error) = match outcome {
            Ok(value) => (value.to_string(), None),
            Err(error) => (format!("Error: {error}"), Some(error.to_string())),
        };
        self.record(&address, &content).await?;
        self.tool_called(called, error, false);
        Ok(content)
    }

    /// The names of this handle's tools, for a message.
    fn tool_names(&self) -> String {
        let names: Vec<String> = self
            .tools
            .iter()
            .map(|tool| format!("`{}`", tool.name()))
            .collect();
        names.join(", ")
    }

    /// Records a finished tool call into the step's record, and tells
    /// listeners.
    fn tool_called(&self, called: Called<'_>, error: Option<String>, restored: bool) {
        let cx = self.cx;
        let Called {
            call,
            address,
            started_at,
            turn_usage,
        } = called;
        let finished_at = cx.run.elapsed();
        let duration = finished_at.saturating_sub(started_at);
        let turn_cost_usd = match (cx.runtime().prices(), self.model) {
            (Some(prices), Some(model)) => prices.cost(model.name(), turn_usage),
            _ => None,
        };
        cx.run.record(cx.index, |record| {
            record.tool_calls.push(ToolCallRecord {
                tool: call.name.clone(),
                call: address.to_owned(),
                started_at,
                finished_at,
                argument_bytes: call.arguments.len(),
                error: error.clone(),
                restored,
                turn_usage,
                turn_cost_usd,
            });
        });
        cx.run.emit(|| EventKind::ToolCalled {
            step: cx.name,
            index: cx.index,
            tool: call.name.clone(),
            call: address.to_owned(),
            argument_bytes: call.arguments.len(),
            duration,
            error: error.clone(),
            restored,
            turn_usage,
            turn_cost_usd,
        });
    }

    /// The unit `key~address` of this step's iteration, if it was recorded
    /// (by an earlier run of the step, or an earlier attempt).
    fn recorded<T: DeserializeOwned>(&self, address: &str) -> Option<T> {
        let cx = self.cx;
        let unit = (format!("{}~{address}", cx.key), cx.iteration);
        let restored = cx.run.restored();
        serde_json::from_slice(restored.get(&unit)?).ok()
    }

    /// Records the unit `key~address`: in the run (for the step's next
    /// attempt) and in the checkpoint store, if there is one. A record
    /// another owner made first stays.
    async fn record<T: Serialize>(&self, address: &str, value: &T) -> Result<(), LlmError> {
        let cx = self.cx;
        let journal = |message: String| LlmError::Journal {
            step: cx.name,
            message,
        };
        let unit = format!("{}~{address}", cx.key);
        let bytes = serde_json::to_vec(value).map_err(|error| journal(error.to_string()))?;
        if let Some(store) = cx.runtime().checkpointing().store() {
            let saved = cx
                .run
                .save_unit(store.as_ref(), &unit, cx.iteration, &bytes)
                .await
                .map_err(|error| journal(error.to_string()))?;
            if let Saved::Existing(first) = saved {
                cx.run.restored().insert((unit, cx.iteration), first);
                return Ok(());
            }
        }
        cx.run.restored().insert((unit, cx.iteration), bytes);
        Ok(())
    }
}

/// A tool call being recorded: what was called, where, since when, and the
/// tokens of the turn that asked for it.
struct Called<'a> {
    call: &'a ToolCall,
    address: &'a str,
    started_at: Duration,
    turn_usage: Usage,
}

/// Runs `tool` on `arguments`.
async fn run_tool(
    tool: &Arc<dyn Tool>,
    cx: &ToolCx,
    arguments: &str,
) -> Result<serde_json::Value, ToolError> {
    tool.call(cx, arguments).await
}
