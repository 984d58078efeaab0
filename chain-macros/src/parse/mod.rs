//! Syntax: from the user's tokens to the model in [`crate::ast`].
//!
//! `step_fn.rs` reads a `#[step] async fn`, `chain.rs` a `#[chain] async fn`
//! and `body.rs` its body, whose statements are `step!` (`step_macro.rs`,
//! with its options in `options.rs`) and `route!` (`route_macro.rs`).

mod body;
mod chain;
mod options;
mod route_macro;
mod step_fn;
mod step_macro;

pub(crate) use step_fn::TOOL;

use syn::{Ident, Pat, Signature};

use crate::ctxt::Ctxt;

/// Reports what makes `sig` something other than a plain `async fn`.
pub(super) fn check_plain_async_fn(cx: &mut Ctxt, sig: &Signature, attr: &str) {
    if sig.asyncness.is_none() {
        cx.error_spanned_by(sig.fn_token, format!("`{attr}` goes on an `async fn`"));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &sig.generics,
            format!("`{attr}` functions cannot be generic"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, format!("`{attr}` functions cannot be variadic"));
    }
}

/// The name bound by a parameter written `name: Type`.
pub(super) fn pat_ident(pat: &Pat) -> Option<Ident> {
    match pat {
        Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => Some(pat.ident.clone()),
        _ => None,
    }
}
