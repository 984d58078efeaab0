//! What is emitted beside compile errors, so one mistake does not cascade into
//! fifty: the errors, then the user's item as written or, for a chain that was
//! understood, its interface with stub bodies.

use proc_macro2::TokenStream;
use quote::quote;

use syn::parse_quote;

use crate::ast::{Chain, StepFn};
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

/// The errors and the step's interface as the signature means it: an
/// `async fn name(cx: &StepCx, params...) -> StepResult<T>` with a stub body
/// and its module, so a chain using the step reports no more errors. The
/// function as written is kept under another name, so mistakes in its body
/// are still reported in the same build.
pub(super) fn step_with_errors(cx: &Ctxt, step: &StepFn) -> TokenStream {
    let errors = cx.to_compile_errors();
    let mut written = step.item.clone();
    let name = written.sig.ident.clone();
    written.sig.ident = quote::format_ident!("__prompt_chain_as_written_{}", name);
    let mut stub = step.item.clone();
    let vis = &stub.vis;
    let params = step.params.iter().map(|param| {
        let (name, ty) = (&param.name, &param.ty);
        quote!(#name: #ty)
    });
    let output = &step.output;
    let body = stub_body(&name.to_string());
    stub = parse_quote! {
        #[allow(unused_variables, unreachable_code)]
        #vis async fn #name(
            _cx: &::prompt_chain::StepCx,
            #(#params),*
        ) -> ::prompt_chain::StepResult<#output> {
            #body
        }
    };
    let interface = super::step::expand(&StepFn {
        item: stub,
        params: step.params.clone(),
        output: step.output.clone(),
    });
    quote! {
        #errors
        #[allow(dead_code, non_snake_case, clippy::all)]
        #written
        #interface
    }
}

/// The body of every generated function of a chain with errors: never run,
/// since the crate does not compile.
pub(super) fn stub_body(name: &str) -> TokenStream {
    quote!(::core::unreachable!("`{}` has compile errors", #name))
}
