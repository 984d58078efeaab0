//! What is emitted beside compile errors, so one mistake does not cascade into
//! fifty: the errors, then the user's item as written or, for a chain that was
//! understood, its interface with stub bodies.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Chain;
use crate::ctxt::Ctxt;

/// The errors and the item as written: for a `#[step]` with errors, and for
/// an item that is not a function at all.
pub(super) fn item_as_written(cx: &Ctxt, item: &TokenStream) -> TokenStream {
    let errors = cx.to_compile_errors();
    quote!(#errors #item)
}

/// The errors and the chain's interface without its graph: `Input`, `Output`
/// (inputs only) and every function, with stub bodies, so code using the
/// chain still type-checks and the user sees the real errors.
pub(super) fn chain_with_errors(cx: &Ctxt, chain: &Chain) -> TokenStream {
    let errors = cx.to_compile_errors();
    let stub = super::chain::interface(chain, None);
    quote!(#errors #stub)
}

/// The body of every generated function of a chain with errors: never run,
/// since the crate does not compile.
pub(super) fn stub_body(name: &str) -> TokenStream {
    quote!(::core::unreachable!("chain `{}` has compile errors", #name))
}
