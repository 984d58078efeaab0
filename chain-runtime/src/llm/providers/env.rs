//! Choosing a model from the environment.

use std::sync::Arc;

use super::{Anthropic, OpenAiCompatible};
use crate::llm::{Cassette, LanguageModel};

/// A model named in the environment could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelConfigError {
    /// `PROMPT_CHAIN_MODEL` is not `provider:model`.
    #[error(
        "PROMPT_CHAIN_MODEL={0:?} is not `provider:model` (providers: openai, openai-compatible, ollama, anthropic)"
    )]
    Malformed(String),
    /// The provider needs a key and none is set.
    #[error("{provider} needs an API key: set {variables}")]
    MissingKey {
        /// The provider.
        provider: &'static str,
        /// The variables looked at.
        variables: &'static str,
    },
    /// `openai-compatible` needs a base URL.
    #[error("openai-compatible needs PROMPT_CHAIN_BASE_URL (for example http://localhost:8000/v1)")]
    MissingBaseUrl,
    /// `PROMPT_CHAIN_RECORD` asks to record a cassette, and no model is named.
    #[error(
        "PROMPT_CHAIN_RECORD records the calls of a real model into PROMPT_CHAIN_CASSETTE: set PROMPT_CHAIN_MODEL too"
    )]
    RecordWithoutModel,
    /// The cassette `PROMPT_CHAIN_CASSETTE` names could not be opened.
    #[error(transparent)]
    Cassette(crate::llm::LlmError),
}

fn process_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The model named by `PROMPT_CHAIN_MODEL`, or `None` when it is not set.
///
/// | variable | meaning |
/// |---|---|
/// | `PROMPT_CHAIN_MODEL` | `openai:gpt-4o-mini`, `anthropic:claude-sonnet-4-5`, `ollama:llama3.1`, `openai-compatible:<model>` |
/// | `PROMPT_CHAIN_BASE_URL` | the endpoint (default per provider; required for `openai-compatible`) |
/// | `PROMPT_CHAIN_API_KEY` | the key; else `OPENAI_API_KEY` / `ANTHROPIC_API_KEY` |
/// | `PROMPT_CHAIN_STREAM` | `1` to stream replies |
/// | `PROMPT_CHAIN_CASSETTE` | a cassette file: its calls are replayed offline, with no model needed |
/// | `PROMPT_CHAIN_RECORD` | `1` (with a cassette and a model) to record the model's calls into the cassette |
///
/// See [`Cassette`](crate::llm::Cassette) for what a cassette holds.
pub fn model_from_env() -> Result<Option<Arc<dyn LanguageModel>>, ModelConfigError> {
    model_from_vars(&process_var)
}

/// [`model_from_env`] with the variables read through `lookup` (for tests and
/// for configuration that comes from elsewhere).
pub fn model_from_vars(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Arc<dyn LanguageModel>>, ModelConfigError> {
    let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let recording = var(crate::llm::RECORD_ENV).is_some_and(|v| crate::llm::cassette::records(&v));
    let model = named_model(&var)?;
    let Some(cassette) = var("PROMPT_CHAIN_CASSETTE") else {
        return Ok(model);
    };
    let model: Arc<dyn LanguageModel> = match (recording, model) {
        (false, _) => Arc::new(Cassette::replay(&cassette).map_err(ModelConfigError::Cassette)?),
        (true, None) => return Err(ModelConfigError::RecordWithoutModel),
        (true, Some(model)) => {
            Arc::new(Cassette::record(&cassette, model).map_err(ModelConfigError::Cassette)?)
        }
    };
    Ok(Some(model))
}

/// The model `PROMPT_CHAIN_MODEL` names, if set.
fn named_model(
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Arc<dyn LanguageModel>>, ModelConfigError> {
    let Some(spec) = var("PROMPT_CHAIN_MODEL") else {
        return Ok(None);
    };
    let Some((provider, model)) = spec
        .split_once(':')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
    else {
        return Err(ModelConfigError::Malformed(spec));
    };
    let stream =
        var("PROMPT_CHAIN_STREAM").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let base_url = var("PROMPT_CHAIN_BASE_URL");
    let key = |fallback: &str| var("PROMPT_CHAIN_API_KEY").or_else(|| var(fallback));
    let model: Arc<dyn LanguageModel> = match provider {
        "openai" => {
            let key = key("OPENAI_API_KEY").ok_or(ModelConfigError::MissingKey {
                provider: "openai",
                variables: "PROMPT_CHAIN_API_KEY or OPENAI_API_KEY",
            })?;
            let url = base_url.unwrap_or_else(|| "https://api.openai.com/v1".to_owned());
            Arc::new(
                OpenAiCompatible::new(url, model)
                    .api_key(key)
                    .streaming(stream),
            )
        }
        "ollama" => {
            let url = base_url.unwrap_or_else(|| "http://localhost:11434/v1".to_owned());
            Arc::new(OpenAiCompatible::new(url, model).streaming(stream))
        }
        "openai-compatible" => {
            let url = base_url.ok_or(ModelConfigError::MissingBaseUrl)?;
            let mut client = OpenAiCompatible::new(url, model).streaming(stream);
            if let Some(key) = key("OPENAI_API_KEY") {
                client = client.api_key(key);
            }
            Arc::new(client)
        }
        "anthropic" => {
            let key = key("ANTHROPIC_API_KEY").ok_or(ModelConfigError::MissingKey {
                provider: "anthropic",
                variables: "PROMPT_CHAIN_API_KEY or ANTHROPIC_API_KEY",
            })?;
            let mut client = Anthropic::new(model, key).streaming(stream);
            if let Some(url) = base_url {
                client = client.base_url(url);
            }
            Arc::new(client)
        }
        _ => return Err(ModelConfigError::Malformed(spec)),
    };
    Ok(Some(model))
}
