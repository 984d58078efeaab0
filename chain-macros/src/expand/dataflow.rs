//! The body of a chain's `__execute`: one slot per key and one branch per
//! step or route, joined so each step starts as soon as its inputs exist.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::chain::step_keys;
use super::hygiene::{child_pat, child_path, child_type, slot_type};
use crate::ast::{ArmRef, Chain};
use crate::graph::{Graph, Node};

/// The local holding key `key`'s slot.
fn slot_ident(key: &Ident) -> Ident {
    format_ident!("__chain_k_{}", key.unraw())
}

/// The body of `__execute`: one slot per key, one branch per node of the top
/// scope (routes run their chosen arm as a nested join), then the outputs or
/// the error with every completed key.
pub(super) fn execute_body(chain: &Chain, graph: &Graph) -> TokenStream {
    let input_slots = chain.inputs.iter().map(|input| {
        let key = &input.key;
        let slot = slot_ident(key);
        let ty = child_type(&input.ty);
        quote!(let #slot: ::prompt_chain::__private::Slot<#ty> = ::prompt_chain::__private::Slot::filled(__chain_input.#key);)
    });
    let keys = step_keys(chain);
    let step_slots = keys.iter().map(|step| {
        let slot = slot_ident(&step.key);
        let ty = slot_type(step);
        quote!(let #slot: ::prompt_chain::__private::Slot<#ty> = ::prompt_chain::__private::Slot::new();)
    });
    let join = scope_join(chain, graph, None);
    let all_keys: Vec<&Ident> = chain
        .inputs
        .iter()
        .map(|input| &input.key)
        .chain(keys.iter().map(|step| &step.key))
        .collect();
    let takes = all_keys.iter().map(|key| {
        let slot = slot_ident(key);
        let name = key.unraw().to_string();
        if graph.always_produced(chain, &key.to_string()) {
            quote! {
                let ::core::option::Option::Some(#key) = #slot.into_inner() else {
                    return __chain_run.missing(#name).await;
                };
            }
        } else {
            quote!(let #key = #slot.into_inner();)
        }
    });
    let context = all_keys.iter().map(|key| {
        let slot = slot_ident(key);
        let name = key.unraw().to_string();
        quote!((#name, &#slot as &dyn ::prompt_chain::__private::ContextValue))
    });
    quote! {
        let __chain_run = match ::prompt_chain::__private::RunCx::start(__chain_runtime, &__CHAIN_DEF, __chain_options, &__chain_input).await {
            ::core::result::Result::Ok(__chain_run) => __chain_run,
            ::core::result::Result::Err(__chain_outcome) => return __chain_outcome,
        };
        #(#input_slots)*
        #(#step_slots)*
        let __chain_joined = #join;
        match __chain_joined {
            ::core::result::Result::Ok(()) => {
                #(#takes)*
                __chain_run.finish(Output { #(#all_keys),* }).await
            }
            ::core::result::Result::Err(__chain_error) => {
                let __chain_error = ::prompt_chain::__private::with_completed(__chain_error, &[#(#context),*]);
                __chain_run.fail(__chain_error).await
            }
        }
    }
}

/// A block running every node of `scope` in one dataflow join.
fn scope_join(chain: &Chain, graph: &Graph, scope: Option<ArmRef>) -> TokenStream {
    let nodes = graph.order_in(chain, scope);
    if nodes.is_empty() {
        return quote!(::core::result::Result::<(), ::prompt_chain::ChainError>::Ok(()));
    }
    let branches = nodes.iter().map(|&node| match node {
        Node::Step(index) => step_branch(chain, index),
        Node::Route(index) => route_branch(chain, graph, index),
    });
    let casts = nodes.iter().map(|&node| {
        let (branch, span) = match node {
            Node::Step(index) => (
                format_ident!("__chain_b{}", index),
                chain.steps[index].callee.span(),
            ),
            Node::Route(index) => (
                format_ident!("__chain_r{}", index),
                chain.routes[index].key.span(),
            ),
        };
        quote_spanned!(span=> #branch as ::prompt_chain::__private::Branch<'_>)
    });
    // The run's deadline is checked by the top-level join itself, so the run's
    // state never moves into a wrapper future.
    let join = if scope.is_none() {
        quote!(::prompt_chain::__private::join_steps_within(&__chain_run, [#(#casts),*], __chain_run.deadline()))
    } else {
        quote!(::prompt_chain::__private::join_steps(&__chain_run, [#(#casts),*]))
    };
    quote! {
        {
            #(#branches)*
            #join.await
        }
    }
}

/// One step: wait for its inputs, run it under the runtime's policies, store its output.
fn step_branch(chain: &Chain, index: usize) -> TokenStream {
    let step = &chain.steps[index];
    let branch = format_ident!("__chain_b{}", index);
    let waits = step.args.iter().enumerate().map(|(n, arg)| {
        let local = format_ident!("__chain_a{}", n, span = arg.span());
        let slot = slot_ident(arg);
        quote!(let #local = #slot.wait().await;)
    });
    let args = step.args.iter().enumerate().map(|(n, arg)| {
        let local = format_ident!("__chain_a{}", n, span = arg.span());
        quote_spanned!(arg.span()=> ::prompt_chain::__private::FromKey::from_key(#local))
    });
    let callee = child_path(&step.callee);
    let call_span = step.callee.span();
    let looping = step.options.max.is_some();
    let mut args: Vec<TokenStream> = args.collect();
    // A map step's mapped input is one element per run.
    if let Some((position, _)) = &step.each
        && let (Some(slot), Some(arg)) = (args.get_mut(*position), step.args.get(*position))
    {
        *slot = quote_spanned!(arg.span()=> ::prompt_chain::__private::FromElement::from_element(__chain_item));
    }
    let args = if looping {
        // A loop's first input is the previous iteration's output after the first.
        let mut args = args;
        if let (Some(first), Some(arg)) = (args.first_mut(), step.args.first()) {
            let local = format_ident!("__chain_a0", span = arg.span());
            *first = quote_spanned!(arg.span()=> match &__chain_previous {
                ::core::option::Option::Some(__chain_previous) => ::prompt_chain::__private::FromKey::from_key(&**__chain_previous),
                ::core::option::Option::None => ::prompt_chain::__private::FromKey::from_key(#local),
            });
        }
        args
    } else {
        args
    };
    let call = quote_spanned!(call_span=> #callee(&__chain_cx, #(#args),*).await);
    let out = slot_ident(&step.key);
    let validate = match &step.options.validate {
        Some(path) => {
            let path = child_path(path);
            let out = Ident::new(&out.to_string(), path.span());
            if step.options.max.is_some() {
                quote_spanned!(path.span()=> #out.validate_each(|__chain_v| #path(__chain_v)))
            } else if step.each.is_some() && step.collects() {
                quote_spanned!(path.span()=> #out.validate_collected(|__chain_v| #path(__chain_v)))
            } else if step.each.is_some() {
                quote_spanned!(path.span()=> #out.validate_items(|__chain_v| #path(__chain_v)))
            } else {
                quote_spanned!(path.span()=> #out.validate(|__chain_v| #path(__chain_v)))
            }
        }
        None => quote!(::prompt_chain::__private::no_validation),
    };
    let value = format_ident!("__chain_value", span = call_span);
    let store = quote_spanned!(call_span=> #out.store(#value););
    let run = if step.is_human() {
        // A person's answer: no function runs; the inputs are what the
        // question shows.
        let ty = slot_type(step);
        let payload = step.args.iter().enumerate().map(|(n, arg)| {
            let local = format_ident!("__chain_a{}", n, span = arg.span());
            let name = arg.unraw().to_string();
            quote!(.with(#name, #local))
        });
        let fallback = step_fallback(step);
        quote! {
            __chain_run
                .human::<#ty, _>(
                    #index,
                    ::prompt_chain::__private::Payload::new()#(#payload)*.finish(),
                    ::prompt_chain::__private::answer_schema::<#ty>(),
                    #fallback,
                )
                .await?
        }
    } else if let Some((position, _)) = &step.each {
        let span = step.args.get(*position).map_or(call_span, |arg| arg.span());
        let list = format_ident!("__chain_a{}", position, span = span);
        let items = quote_spanned!(span=> ::prompt_chain::__private::MapSource::items(#list));
        let method = if step.collects() {
            format_ident!("map_collect")
        } else {
            format_ident!("map")
        };
        // Each element's cache key: the shared inputs' hash, then the element's.
        let inputs = if step.options.cache_ms.is_some() {
            let shared = (0..step.args.len())
                .filter(|n| n != position)
                .map(|n| format_ident!("__chain_a{}", n));
            quote! {
                ::core::option::Option::Some({
                    let __chain_shared = ::prompt_chain::__private::InputHash::new()#(.feed(#shared))*;
                    move |__chain_item: &_| __chain_shared.feed(__chain_item).finish()
                })
            }
        } else {
            quote!(::prompt_chain::__private::no_item_hash())
        };
        let fallback = step_fallback(step);
        quote! {
            __chain_run
                .#method(
                    #index,
                    #items,
                    move |__chain_cx: ::prompt_chain::StepCx, __chain_item| async move { #call },
                    #validate,
                    #inputs,
                    #fallback,
                )
                .await?
        }
    } else if looping {
        let until = match &step.options.until {
            Some(path) => {
                let path = child_path(path);
                let out = Ident::new(&out.to_string(), path.span());
                quote_spanned!(path.span()=> #out.until(|__chain_v| #path(__chain_v)))
            }
            None => quote!(::prompt_chain::__private::never),
        };
        quote! {
            __chain_run
                .repeat(
                    #index,
                    move |__chain_cx: ::prompt_chain::StepCx, __chain_previous| async move { #call },
                    #validate,
                    #until,
                )
                .await?
        }
    } else {
        let fallback = step_fallback(step);
        let inputs = if step.options.cache_ms.is_some() {
            let locals = (0..step.args.len()).map(|n| format_ident!("__chain_a{}", n));
            quote!(::core::option::Option::Some(::prompt_chain::__private::InputHash::new()#(.feed(#locals))*.finish()))
        } else {
            quote!(::core::option::Option::None)
        };
        quote! {
            __chain_run
                .step(
                    #index,
                    #inputs,
                    move |__chain_cx: ::prompt_chain::StepCx| async move { #call },
                    #validate,
                    #fallback,
                )
                .await?
        }
    };
    quote! {
        let mut #branch = ::core::pin::pin!(async {
            #(#waits)*
            let #value = #run;
            #store
            ::core::result::Result::<(), ::prompt_chain::ChainError>::Ok(())
        });
    }
}

/// A step's `fallback = f`, as the runtime takes it.
fn step_fallback(step: &crate::ast::StepDecl) -> TokenStream {
    match &step.options.fallback {
        Some(path) => {
            let path = child_path(path);
            quote_spanned!(path.span()=> ::core::option::Option::Some(#path))
        }
        None => quote!(::prompt_chain::__private::no_fallback()),
    }
}

/// One route: wait for its key, pick the arm with a `match` on the user's
/// patterns (so rustc checks it is exhaustive), run that arm's nodes.
fn route_branch(chain: &Chain, graph: &Graph, index: usize) -> TokenStream {
    let route = &chain.routes[index];
    let branch = format_ident!("__chain_r{}", index);
    let slot = slot_ident(&route.key);
    let value = format_ident!("__chain_route_value", span = route.key.span());
    // Each generated arm ends on the span of the user's arm, so rustc's "add a
    // match arm" suggestion lands after the user's last arm.
    let pats = route.arms.iter().enumerate().map(|(a, arm)| {
        let pat = child_pat(&arm.pat);
        let index = syn::LitInt::new(&format!("{a}usize"), arm.end);
        quote_spanned!(arm.end=> #pat => #index)
    });
    let decide = quote_spanned!(route.key.span()=> match *#value { #(#pats,)* });
    let bodies = (0..route.arms.len()).map(|arm| {
        let body = scope_join(chain, graph, Some(ArmRef { route: index, arm }));
        quote!(#arm => #body)
    });
    quote! {
        let mut #branch = ::core::pin::pin!(async {
            let #value = #slot.wait().await;
            let __chain_arm: usize = #decide;
            __chain_run.route(#index, __chain_arm);
            match __chain_arm {
                #(#bodies,)*
                _ => ::core::result::Result::<(), ::prompt_chain::ChainError>::Ok(()),
            }
        });
    }
}
