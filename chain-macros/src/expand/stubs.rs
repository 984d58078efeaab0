//! The chain module's `stub` module: for each step a test can replace, a
//! typed `Stub` constructor (`stub::<key>(value)`, `stub::<key>_with(f)`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::chain::step_keys;
use super::hygiene::{child_vis, slot_type, step_path};
use crate::ast::{Chain, StepDecl};

/// `mod stub` with two functions per step whose function runs (not human
/// steps, not loops): its output, or a function of its `StepCx`.
pub(super) fn stub_module(chain: &Chain, name: &str) -> TokenStream {
    let item_vis = child_vis(&chain.vis);
    let keys: Vec<String> = chain
        .steps
        .iter()
        .map(|step| step.key.unraw().to_string())
        .collect();
    let fns = step_keys(chain)
        .into_iter()
        // Not human steps or loops (no function runs per attempt), nor a
        // map with a `key: Type` annotation (its element type is not named).
        .filter(|step| {
            !step.is_human()
                && step.options.max.is_none()
                && !(step.each.is_some() && step.ty.is_some())
        })
        .map(|step| stub_fns(step, name, &keys));
    let doc = format!(
        "Stubs for tests: each replaces one step of chain `{name}`, typed by its output, for the runtime given it (`Runtime::builder().stub(...)`); the other steps run as written. See `prompt_chain::testing`."
    );
    quote! {
        #[doc = #doc]
        #item_vis mod stub {
            use super::*;
            #(#fns)*
        }
    }
}

/// `<key>(value)` and `<key>_with(f)` for one step.
fn stub_fns(step: &StepDecl, chain: &str, keys: &[String]) -> TokenStream {
    let key = &step.key;
    let key_str = key.unraw().to_string();
    let step_name = step.name();
    // The step's output: its key's annotated type, or its `Step` output (a
    // step function, or a sub-chain).
    let output = match &step.ty {
        Some(_) => slot_type(step),
        None => {
            let callee = step_path(&step.callee);
            quote_spanned!(step.callee.span()=> <#callee::Step as ::prompt_chain::Step>::Output)
        }
    };
    let value_fn = if step.each.is_some() {
        let doc = format!(
            "Map step `{key_str}` of chain `{chain}` answers `values` for a test, one per element by position, instead of running `{step_name}`; give it to the runtime with `RuntimeBuilder::stub`."
        );
        quote! {
            #[doc = #doc]
            pub fn #key(values: ::std::vec::Vec<#output>) -> ::prompt_chain::testing::Stub {
                ::prompt_chain::testing::Stub::outputs(#chain, #key_str, values)
            }
        }
    } else {
        let doc = format!(
            "Step `{key_str}` of chain `{chain}` answers `value` for a test instead of running `{step_name}` (validation and the other policies still apply); give it to the runtime with `RuntimeBuilder::stub`."
        );
        quote! {
            #[doc = #doc]
            pub fn #key(value: #output) -> ::prompt_chain::testing::Stub {
                ::prompt_chain::testing::Stub::output(#chain, #key_str, value)
            }
        }
    };
    let with = format_ident!("{}_with", key_str, span = key.span());
    // A key already named `<key>_with` keeps its own stub.
    if keys.contains(&with.to_string()) {
        return value_fn;
    }
    let doc_with = if step.each.is_some() {
        format!(
            "Map step `{key_str}` of chain `{chain}` answers each element with `f` for a test (`cx.item()` is the element's position), under the step's policies; give it to the runtime with `RuntimeBuilder::stub`."
        )
    } else {
        format!(
            "Step `{key_str}` of chain `{chain}` answers with `f` for a test, on every attempt (fail the first to test a retry); give it to the runtime with `RuntimeBuilder::stub`."
        )
    };
    quote! {
        #value_fn

        #[doc = #doc_with]
        pub fn #with(
            f: impl ::core::ops::Fn(&::prompt_chain::StepCx) -> ::prompt_chain::StepResult<#output> + ::core::marker::Send + ::core::marker::Sync + 'static,
        ) -> ::prompt_chain::testing::Stub {
            ::prompt_chain::testing::Stub::function(#chain, #key_str, f)
        }
    }
}
