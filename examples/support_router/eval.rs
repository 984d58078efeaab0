//! Evaluates the support router on its 60 labelled tickets
//! (`labelled.jsonl`): how often each step gets it right, end to end, and
//! what it cost. Offline by default: the model's replies come from a
//! cassette recorded against llama.cpp's server with SmolLM2-135M-Instruct.
//!
//! ```text
//! cargo run --example router_eval                                   # offline, from the cassette
//! cargo run --example router_eval -- --json eval.json --html eval.html
//! cargo run --example router_eval -- --compare before.json          # per-case diff against an earlier run
//! PROMPT_CHAIN_MODEL=openai:gpt-4o-mini OPENAI_API_KEY=... cargo run --example router_eval   # live
//! ```
//!
//! Record the cassette again (a server on 127.0.0.1:8089; see
//! ../shared/tools/llm-server/ in the repository's workspace):
//!
//! ```text
//! PROMPT_CHAIN_MODEL=openai-compatible:smol PROMPT_CHAIN_BASE_URL=http://127.0.0.1:8089/v1 \
//!   PROMPT_CHAIN_RECORD=1 cargo run --example router_eval
//! ```

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;

use prompt_chain::Runtime;
use prompt_chain::eval::{Eval, EvalReport, ExactMatch, Score, load_cases, scorer_fn};
use prompt_chain::llm::{Cassette, LanguageModel, PriceTable, model_from_env, recording_requested};
use prompt_chain::store::MemoryStore;
use serde_json::Value;

#[allow(dead_code, unused_imports, private_interfaces)]
#[path = "main.rs"]
pub(crate) mod router;

/// Command-line options.
#[derive(Default)]
struct Options {
    json: Option<String>,
    html: Option<String>,
    compare: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a file name"));
        match arg.as_str() {
            "--json" => options.json = Some(value()?),
            "--html" => options.html = Some(value()?),
            "--compare" => options.compare = Some(value()?),
            other => {
                return Err(format!(
                    "unknown option `{other}` (--json FILE, --html FILE, --compare FILE)"
                ));
            }
        }
    }
    Ok(options)
}

/// The model: the cassette's replies, a live model, or a live model recorded.
fn model() -> Result<Arc<dyn LanguageModel>, Box<dyn Error>> {
    let cassette = router::example_dir().join("eval.cassette.jsonl");
    let recording = recording_requested();
    Ok(match model_from_env()? {
        Some(live) if recording => {
            eprintln!(
                "router_eval: recording {}'s replies into {}",
                live.name(),
                cassette.display()
            );
            Arc::new(Cassette::record(&cassette, live)?)
        }
        Some(live) => {
            eprintln!("router_eval: asking {} (live)", live.name());
            live
        }
        None if recording => {
            return Err("PROMPT_CHAIN_RECORD needs PROMPT_CHAIN_MODEL: the model to record".into());
        }
        None => {
            eprintln!("router_eval: replaying {} (offline)", cassette.display());
            Arc::new(Cassette::replay(&cassette)?)
        }
    })
}

/// Right when the reply's route (`billing › refund`) starts with the expected team.
fn reached(expected: Option<&Value>, actual: Option<&Value>) -> Score {
    match (
        expected.and_then(Value::as_str),
        actual.and_then(Value::as_str),
    ) {
        (Some(team), Some(route)) => Score::pass(route.starts_with(team)),
        _ => Score::pass(false),
    }
}

/// The evaluation of the router on the labelled tickets, answered by `model`.
pub(crate) async fn evaluate_with(
    model: Arc<dyn LanguageModel>,
    progress: bool,
) -> Result<EvalReport, Box<dyn Error>> {
    let cases = load_cases::<router::Ticket>(router::example_dir().join("labelled.jsonl"))?;
    // A nominal price (gpt-4o-mini's, per million tokens) so the cost
    // column means something for a local model; use your provider's.
    let prices = PriceTable::new().model(model.name(), 0.15, 0.60);
    let data = std::env::temp_dir().join(format!("router-eval-{}", std::process::id()));
    let builder = Runtime::builder()
        .shared_model(model)
        .prices(prices)
        .checkpoints(MemoryStore::new());
    let rt = router::runtime_with(&data, builder)?;
    let report = Eval::new("support_router")
        .metric("category", ExactMatch::new())
        .metric("details.issue", ExactMatch::new())
        .metric("reply.handled_by", scorer_fn("team reached", reached))
        .concurrency(4)
        .max_cost_usd(1.0)
        .progress(progress)
        .run(&rt, &cases, |rt, ticket| async move {
            router::support_router::execute(&rt, router::support_router::Input { ticket }).await
        })
        .await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(report)
}

async fn evaluate(options: Options) -> Result<bool, Box<dyn Error>> {
    let report = evaluate_with(model()?, true).await?;
    print!("{}", report.table());
    if let Some(path) = &options.json {
        std::fs::write(path, report.to_json())?;
        eprintln!("router_eval: wrote {path}");
    }
    if let Some(path) = &options.html {
        std::fs::write(path, report.html())?;
        eprintln!("router_eval: wrote {path}");
    }
    if let Some(path) = &options.compare {
        let before = EvalReport::from_json(&std::fs::read_to_string(path)?)?;
        println!();
        print!("{}", report.compare(&before).table());
    }
    Ok(report.cases_run == report.cases_total)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match evaluate(options).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
