//! [`LlmError`]: what can go wrong talking to a model, classified for retries.

/// What can go wrong talking to a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The runtime has no model under that name.
    #[error(
        "no language model {}is configured; add one with `Runtime::builder().model(...)`",
        match .name { Some(name) => format!("named `{name}` "), None => String::new() }
    )]
    NoModel {
        /// The name asked for, `None` for the default model.
        name: Option<String>,
    },
    /// A scripted model has no reply for this request.
    #[error(
        "the scripted model has no reply for {}; the prompt starts with {prompt_start:?}; scripted so far: {known}",
        match .step { Some(step) => format!("step `{step}`"), None => "a call made outside any step".to_owned() }
    )]
    NoScript {
        /// The step that asked.
        step: Option<String>,
        /// The first characters of the prompt.
        prompt_start: String,
        /// The scripts the model has, described.
        known: String,
    },
    /// A failure injected by a scripted model (tests of error handling).
    #[error("scripted failure: {message}")]
    Scripted {
        /// What the script said.
        message: String,
        /// Whether a retry may succeed.
        retryable: bool,
    },
    /// The reply was not the JSON the step asked for.
    #[error("the model's reply is not valid JSON for the expected type{}: {error}", after_reasks(*.reasks))]
    Parse {
        /// The parser's message.
        error: String,
        /// The reply as the model sent it.
        raw: String,
        /// How many times the model had been asked again before this reply.
        reasks: u32,
    },
    /// The model stopped at its token limit, so the reply is cut off.
    #[error("the model's reply was cut off at the token limit{}", after_reasks(*.reasks))]
    Truncated {
        /// The partial reply.
        partial: String,
        /// How many times the model had been asked again before this reply.
        reasks: u32,
    },
    /// The provider refused, or its content filter stopped the reply.
    #[error("the model refused or its content filter stopped the reply ({reason})")]
    Refused {
        /// The provider's stop reason.
        reason: String,
    },
    /// Too many requests; try again after `retry_after` (from `Retry-After`
    /// or `retry-after-ms`) if the provider said.
    #[error("rate limited (HTTP {status}){}: {body}", match .retry_after { Some(after) => format!(", retry after {after:?}"), None => String::new() })]
    RateLimited {
        /// The HTTP status.
        status: u16,
        /// How long the provider asked to wait.
        retry_after: Option<std::time::Duration>,
        /// The response body.
        body: String,
    },
    /// The account's quota or credit is used up: retrying will not help.
    #[error("quota exhausted (HTTP {status}): {body}")]
    QuotaExhausted {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The provider is overloaded or failing (5xx, 529).
    #[error("the provider is overloaded or failing (HTTP {status}): {body}")]
    Overloaded {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The API key was refused.
    #[error("authentication failed (HTTP {status}): {body}")]
    Auth {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The provider rejected the request as malformed.
    #[error("bad request (HTTP {status}): {body}")]
    BadRequest {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// Any other HTTP error.
    #[error("HTTP {status}: {body}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The request did not get an answer in time: the whole reply took too
    /// long, or a stream went quiet for its idle timeout.
    #[error("{}", timeout_message(*.after, *.idle, .partial))]
    Timeout {
        /// The limit that passed (`None`: the server said so, HTTP 408).
        after: Option<std::time::Duration>,
        /// Whether a stream went quiet (rather than the whole call taking too long).
        idle: bool,
        /// Text received before the timeout, if any.
        partial: String,
        /// Tokens the provider reported before the timeout (counted all the same).
        usage: super::Usage,
    },
    /// The request could not be made as configured (a malformed base URL, a
    /// key that cannot go in a header): no retry can fix it.
    #[error("the model call is misconfigured: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// The connection failed or broke (a stream cut mid-way included).
    #[error("connection to the model failed: {message}")]
    Transport {
        /// What failed.
        message: String,
        /// Text received before the failure, if any.
        partial: String,
        /// Tokens the provider reported before the failure (a stream cut
        /// after its first event has reported its input tokens): counted
        /// into the step's usage and the run's budget all the same.
        usage: super::Usage,
    },
    /// The run's budget is spent; the call was not made.
    #[error("the run's budget of {limit} {what} is spent ({spent} so far); the call was not made")]
    BudgetExceeded {
        /// Tokens or US dollars.
        what: &'static str,
        /// The cap.
        limit: f64,
        /// What the run had spent.
        spent: f64,
    },
    /// The provider answered with something that is not its documented format.
    #[error("the provider's response could not be read: {message}")]
    Decode {
        /// What was wrong.
        message: String,
        /// The response body.
        body: String,
    },
    /// The model kept calling tools: `max_turns` model turns passed without
    /// an answer (`cx.llm().max_turns(n)`).
    #[error(
        "step `{step}`: the model was still calling tools after {max_turns} turns; raise `max_turns` or tell it when to answer"
    )]
    ToolTurns {
        /// The step.
        step: &'static str,
        /// The limit.
        max_turns: u32,
    },
    /// A cassette could not answer: no recorded reply matches the request
    /// (the message names the step and shows the closest recorded request
    /// as a diff), or the cassette could not be read or written.
    #[error("{message}")]
    Cassette {
        /// What happened, with the diff on a miss.
        message: String,
    },
    /// A failure recorded in a cassette, replayed.
    #[error("recorded failure: {message}")]
    Recorded {
        /// The failure as it was recorded.
        message: String,
        /// Whether it was retryable when recorded.
        retryable: bool,
    },
    /// A model turn or a tool call could not be recorded in the checkpoint
    /// store; the step stops rather than make calls it could not account for.
    #[error("a tool call of step `{step}` could not be recorded: {message}")]
    Journal {
        /// The step.
        step: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl LlmError {
    /// A timeout of `after` (whole call, or `idle` stream), with what came before it.
    #[cfg(feature = "providers")]
    pub(crate) fn timeout(after: Option<std::time::Duration>, idle: bool, partial: String) -> Self {
        LlmError::Timeout {
            after,
            idle,
            partial,
            usage: super::Usage::default(),
        }
    }

    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Scripted { retryable, .. } | LlmError::Recorded { retryable, .. } => {
                *retryable
            }
            LlmError::Parse { .. }
            | LlmError::Truncated { .. }
            | LlmError::RateLimited { .. }
            | LlmError::Overloaded { .. }
            | LlmError::Timeout { .. }
            | LlmError::Transport { .. }
            | LlmError::Decode { .. }
            | LlmError::Journal { .. } => true,
            LlmError::Http { status, .. } => *status >= 500,
            LlmError::NoModel { .. }
            | LlmError::NoScript { .. }
            | LlmError::Refused { .. }
            | LlmError::QuotaExhausted { .. }
            | LlmError::BudgetExceeded { .. }
            | LlmError::Config { .. }
            | LlmError::Auth { .. }
            | LlmError::BadRequest { .. }
            | LlmError::ToolTurns { .. }
            | LlmError::Cassette { .. } => false,
        }
    }

    /// Tokens the provider reported for a call that then failed, if any.
    pub fn usage(&self) -> Option<super::Usage> {
        match self {
            LlmError::Transport { usage, .. } | LlmError::Timeout { usage, .. }
                if usage.total() > 0 =>
            {
                Some(*usage)
            }
            _ => None,
        }
    }

    /// How long the provider asked to wait before a retry, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

fn timeout_message(after: Option<std::time::Duration>, idle: bool, partial: &str) -> String {
    let mut message = match (after, idle) {
        (Some(after), true) => format!(
            "the model's stream sent nothing for {:.1} s (the idle timeout)",
            after.as_secs_f64()
        ),
        (Some(after), false) => format!(
            "the model call took longer than its timeout of {:.1} s",
            after.as_secs_f64()
        ),
        (None, _) => "the provider timed out the request (HTTP 408)".to_owned(),
    };
    if !partial.is_empty() {
        message.push_str(&format!(
            "; {} characters of the reply had arrived (kept in the error)",
            partial.chars().count()
        ));
    }
    message
}

fn after_reasks(reasks: u32) -> String {
    match reasks {
        0 => String::new(),
        1 => " (after 1 re-ask)".to_owned(),
        n => format!(" (after {n} re-asks)"),
    }
}
