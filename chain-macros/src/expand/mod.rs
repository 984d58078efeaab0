//! Printing code: `#[step]` and `#[chain]` expansions, and the fallbacks
//! emitted beside compile errors. Nothing here rejects input; `valid` did.
//!
//! The entry points below run the stages; each file prints one part:
//! `step.rs` the `#[step]` module, `chain.rs` a chain's function and module,
//! `dataflow.rs` the body that runs its steps, `definition.rs` its static
//! description, `docs.rs` its module documentation, `hygiene.rs` how user
//! paths read from inside generated modules, `fallback.rs` what is emitted
//! when there are errors.

mod chain;
mod dataflow;
mod definition;
mod docs;
mod fallback;
mod hygiene;
mod step;
mod stubs;
mod tool;

use proc_macro2::{Span, TokenStream};
use syn::ItemFn;

use crate::ast::{Chain, StepFn};
use crate::ctxt::Ctxt;
use crate::graph::Graph;
use crate::valid;

/// `#[step]`.
pub(crate) fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    if !args.is_empty() {
        cx.error_spanned_by(&args, "`#[step]` takes no arguments");
    }
    let item_fn: ItemFn = match syn::parse2(item.clone()) {
        Ok(item_fn) => item_fn,
        Err(_) => {
            cx.syn_error(syn::Error::new(
                Span::call_site(),
                "`#[step]` goes on an `async fn`",
            ));
            return fallback::item_as_written(&cx, &item);
        }
    };
    match StepFn::from_syn(&mut cx, item_fn) {
        Some(step) if !cx.has_errors() => step::expand(&step),
        // A method (`self`) sits in an `impl` block, where no module can go.
        Some(step) if !has_receiver(&step) => fallback::step_with_errors(&cx, &step),
        Some(_) => fallback::item_as_written(&cx, &item),
        None => fallback::item_as_written(&cx, &item),
    }
}

/// `#[tool]`.
pub(crate) fn tool(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    if !args.is_empty() {
        cx.error_spanned_by(&args, "`#[tool]` takes no arguments");
    }
    let item_fn: ItemFn = match syn::parse2(item.clone()) {
        Ok(item_fn) => item_fn,
        Err(_) => {
            cx.syn_error(syn::Error::new(
                Span::call_site(),
                "`#[tool]` goes on an `async fn`",
            ));
            return fallback::item_as_written(&cx, &item);
        }
    };
    let description = tool::doc_comment(&item_fn.attrs);
    if description.is_empty() {
        cx.error_spanned_by(
            &item_fn.sig.ident,
            "a tool needs a doc comment (`/// ...`): it is the description the model reads to decide when to call it",
        );
    }
    match StepFn::from_syn_as(&mut cx, item_fn, &crate::parse::TOOL) {
        Some(tool) if !cx.has_errors() => tool::expand(&tool, &description),
        _ => fallback::item_as_written(&cx, &item),
    }
}

fn has_receiver(step: &StepFn) -> bool {
    step.item
        .sig
        .inputs
        .iter()
        .any(|arg| matches!(arg, syn::FnArg::Receiver(_)))
}

/// `#[chain]`.
pub(crate) fn chain(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    if !args.is_empty() {
        cx.error_spanned_by(&args, "`#[chain]` takes no arguments");
    }
    let item_fn: ItemFn = match syn::parse2(item.clone()) {
        Ok(item_fn) => item_fn,
        Err(_) => {
            cx.syn_error(syn::Error::new(
                Span::call_site(),
                "`#[chain]` goes on an `async fn`",
            ));
            return fallback::item_as_written(&cx, &item);
        }
    };
    let Some(chain) = Chain::from_syn(&mut cx, item_fn) else {
        return cx.to_compile_errors();
    };
    let graph = Graph::build(&chain);
    valid::validate(&mut cx, &chain, &graph);
    if cx.has_errors() {
        return fallback::chain_with_errors(&cx, &chain);
    }
    chain::interface(&chain, Some(&graph))
}
