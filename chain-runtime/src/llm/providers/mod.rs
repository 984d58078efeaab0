//! HTTP model providers: OpenAI-compatible chat completions (OpenAI, vLLM,
//! Ollama's `/v1`, llama.cpp's server, LM Studio) and Anthropic Messages,
//! plain and streamed, configured in code or from the environment.

mod anthropic;
mod env;
mod http;
mod openai;

pub use anthropic::Anthropic;
pub use env::{ModelConfigError, model_from_env, model_from_vars};
pub use openai::OpenAiCompatible;
