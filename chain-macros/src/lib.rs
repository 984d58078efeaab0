//! Procedural macros of prompt-chain: `#[step]` and `#[chain]`.
//!
//! Use them through the `prompt-chain` crate. The entry points only hand the
//! tokens to `expand`, which runs the three stages: parsing builds a plain
//! model of the chain (`ast`), analysis builds its graph and collects every
//! error (`graph`, `valid`), expansion prints code (`expand`).

mod ast;
mod ctxt;
mod expand;
mod graph;
mod parse;
mod picture;
mod prompt;
mod suggest;
mod valid;

use proc_macro::TokenStream;

/// Turns an `async fn` into a reusable step: a typed `Input` struct, its
/// `Output` type and a `Step` implementation, in a module named after the function.
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::step(args.into(), item.into()).into()
}

/// Turns an `async fn(cx: &ToolCx, args...) -> StepResult<T>` into a tool
/// a model may call: a module named after the function with its `Args`
/// (deserialized from the model's JSON, described by their JSON Schema) and
/// `Tool`; the doc comment is the description the model reads.
#[proc_macro_attribute]
pub fn tool(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::tool(args.into(), item.into()).into()
}

/// Turns an `async fn` whose body is a list of `step!(...)` into a chain whose
/// wiring the compiler checks.
#[proc_macro_attribute]
pub fn chain(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::chain(args.into(), item.into()).into()
}

/// A prompt template: `prompt!("Summarize {text} for {audience}")` is a
/// `String` with `text` and `audience` taken from the variables in scope (a
/// misspelled placeholder is a compile error), and the indentation the
/// literal has in the code removed.
#[proc_macro]
pub fn prompt(input: TokenStream) -> TokenStream {
    prompt::prompt(input.into()).into()
}
