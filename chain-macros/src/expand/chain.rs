//! The chain's interface: the `async fn` that runs it as a step, and the
//! module named after it with `Input`, `Output`, `Return`, `Step`, `run`,
//! `execute`, `execute_as`, `resume`, `execute_with_events`, `graph` and
//! `definition`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Ident, Type};

use super::dataflow::execute_body;
use super::definition::chain_definition;
use super::docs::module_doc;
use super::fallback;
use super::hygiene::{child_type, child_vis, slot_type};
use crate::ast::{Chain, StepDecl};
use crate::graph::Graph;
use crate::valid;

/// The chain's function and module. With `graph == None` (the chain has errors)
/// the bodies are stubs and `Output` holds only the inputs, so code using the
/// chain still type-checks and the user sees the real errors, not a cascade.
pub(super) fn interface(chain: &Chain, graph: Option<&Graph>) -> TokenStream {
    let Chain {
        attrs,
        vis,
        name,
        inputs,
        ret,
        ..
    } = chain;
    let name_str = name.unraw().to_string();
    let item_vis = child_vis(vis);
    let input_keys: Vec<&Ident> = inputs.iter().map(|input| &input.key).collect();
    let input_tys: Vec<&Type> = inputs.iter().map(|input| &input.ty).collect();
    let cx_name = if input_keys.iter().any(|key| *key == "cx") {
        format_ident!("__chain_cx")
    } else {
        format_ident!("cx")
    };

    let input_fields: Vec<TokenStream> = inputs
        .iter()
        .map(|input| {
            let key = &input.key;
            let ty = child_type(&input.ty);
            let doc = format!("Input `{}` of chain `{name_str}`.", key.unraw());
            quote!(#[doc = #doc] #item_vis #key: #ty)
        })
        .collect();
    let ret_child = child_type(ret);
    let step_fields: Vec<TokenStream> = match graph {
        Some(graph) => step_keys(chain)
            .into_iter()
            .map(|step| {
                let key = &step.key;
                let ty = slot_type(step);
                if graph.always_produced(chain, &key.to_string()) {
                    let doc = format!("Output of step `{}`, under key `{}`.", step.name(), key.unraw());
                    quote!(#[doc = #doc] #item_vis #key: #ty)
                } else {
                    let doc = format!(
                        "Output under key `{}`, produced only by some route arms: `None` when the arm taken does not produce it.",
                        key.unraw()
                    );
                    quote!(#[doc = #doc] #item_vis #key: ::core::option::Option<#ty>)
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let output_key = chain.output.as_ref();
    let stub = fallback::stub_body(&name_str);
    let (execute_body, return_body, run_body, as_step_body) = match (graph, output_key) {
        (Some(graph), Some(output)) => (
            execute_body(chain, graph),
            quote_spanned!(output.span()=> __chain_outputs.#output),
            quote! {
                let __chain_outputs = __execute(runtime, ::prompt_chain::__private::RunOptions::default(), input).await.result?;
                ::core::result::Result::Ok(__chain_return(__chain_outputs))
            },
            quote! {
                let __chain_options = ::prompt_chain::__private::RunOptions { parent: ::core::option::Option::Some(cx), ..::core::default::Default::default() };
                match __execute(cx.runtime(), __chain_options, input).await.result {
                    ::core::result::Result::Ok(__chain_outputs) => ::core::result::Result::Ok(__chain_return(__chain_outputs)),
                    ::core::result::Result::Err(error) => ::core::result::Result::Err(::prompt_chain::StepError::from(error)),
                }
            },
        ),
        _ => (stub.clone(), stub.clone(), stub.clone(), stub),
    };
    let definition = chain_definition(chain);
    let (mermaid, dot) = match graph {
        Some(graph) => (
            crate::picture::mermaid(chain, graph),
            crate::picture::dot(chain, graph),
        ),
        None => (String::new(), String::new()),
    };
    let lint = unused_keys_lint(chain, graph);
    let human_fns = match graph {
        Some(_) => {
            let stubs = super::stubs::stub_module(chain, &name_str);
            let human = human_interface(chain, &name_str);
            quote!(#stubs #human)
        }
        None => TokenStream::new(),
    };
    let mod_doc = module_doc(chain);
    let input_doc = format!("The inputs of chain `{name_str}`.");
    let output_doc = format!(
        "Every key of a completed run of chain `{name_str}`: its inputs, then each step's output."
    );
    let return_doc = format!("The type chain `{name_str}` returns.");
    let step_doc = format!(
        "Implements [`prompt_chain::Step`](::prompt_chain::Step) for chain `{name_str}`, so it can run as a step of another chain."
    );

    quote! {
        #(#attrs)*
        #[allow(clippy::too_many_arguments)]
        #vis async fn #name(
            #cx_name: &::prompt_chain::StepCx,
            #(#input_keys: #input_tys),*
        ) -> ::prompt_chain::StepResult<#ret> {
            #name::__run_as_step(#cx_name, #name::Input { #(#input_keys),* }).await
        }

        #[doc = #mod_doc]
        #[allow(non_snake_case, unused_imports)]
        #vis mod #name {
            use super::*;

            #[doc = #input_doc]
            #[derive(::core::fmt::Debug, ::prompt_chain::__private::serde::Serialize, ::prompt_chain::__private::serde::Deserialize)]
            #[serde(crate = "::prompt_chain::__private::serde")]
            #item_vis struct Input {
                #(#input_fields,)*
            }

            #[doc = #output_doc]
            #[derive(::core::fmt::Debug, ::prompt_chain::__private::serde::Serialize, ::prompt_chain::__private::serde::Deserialize)]
            #[serde(crate = "::prompt_chain::__private::serde")]
            #item_vis struct Output {
                #(#input_fields,)*
                #(#step_fields,)*
            }

            #[doc = #return_doc]
            #item_vis type Return = #ret_child;

            #[doc = #step_doc]
            #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy, ::core::default::Default)]
            #item_vis struct Step;

            impl ::prompt_chain::Step for Step {
                type Input = Input;
                type Output = Return;
                const NAME: &'static str = #name_str;

                fn call(
                    __chain_cx: &::prompt_chain::StepCx,
                    __chain_input: Input,
                ) -> impl ::core::future::Future<Output = ::prompt_chain::StepResult<Return>> + ::core::marker::Send + '_ {
                    __run_as_step(__chain_cx, __chain_input)
                }
            }

            /// The chain's graph (inputs, steps, keys, routes) as Mermaid and DOT,
            /// computed at compile time.
            #item_vis fn graph() -> ::prompt_chain::definition::ChainGraph {
                ::prompt_chain::definition::ChainGraph { mermaid: #mermaid, dot: #dot }
            }

            /// The chain's declaration as data: inputs, steps, options, output.
            #item_vis fn definition() -> &'static ::prompt_chain::definition::ChainDef {
                &__CHAIN_DEF
            }

            /// This chain as a value, for tools that handle chains by name
            /// (the runs CLI: `prompt_chain::cli`).
            #item_vis fn entry() -> ::prompt_chain::definition::ChainEntry {
                fn __chain_resume_erased(
                    runtime: &::prompt_chain::Runtime,
                    run_id: ::prompt_chain::RunId,
                ) -> ::core::pin::Pin<::std::boxed::Box<dyn ::core::future::Future<Output = ::prompt_chain::definition::ErasedRun> + ::core::marker::Send + '_>> {
                    ::std::boxed::Box::pin(async move {
                        ::prompt_chain::definition::ErasedRun::new(resume(runtime, run_id).await)
                    })
                }
                ::prompt_chain::definition::ChainEntry::new(&__CHAIN_DEF, graph(), __chain_resume_erased)
            }

            /// Runs the chain and returns its output.
            #item_vis async fn run(
                runtime: &::prompt_chain::Runtime,
                input: Input,
            ) -> ::core::result::Result<Return, ::prompt_chain::ChainError> {
                #run_body
            }

            /// Runs the chain and returns every key it computed, with the run's report.
            #item_vis async fn execute(
                runtime: &::prompt_chain::Runtime,
                input: Input,
            ) -> ::prompt_chain::Outcome<Output> {
                __execute(runtime, ::prompt_chain::__private::RunOptions::default(), input).await
            }

            /// Resumes run `run_id` from the runtime's checkpoint store: steps
            /// whose output was saved are restored, not run again.
            #item_vis async fn resume(
                runtime: &::prompt_chain::Runtime,
                run_id: ::prompt_chain::RunId,
            ) -> ::prompt_chain::Outcome<Output> {
                match ::prompt_chain::__private::load_input::<Input, Output>(runtime, &__CHAIN_DEF, run_id).await {
                    ::core::result::Result::Ok(input) => {
                        let __chain_options = ::prompt_chain::__private::RunOptions {
                            resume: ::core::option::Option::Some(run_id),
                            ..::core::default::Default::default()
                        };
                        __execute(runtime, __chain_options, input).await
                    }
                    ::core::result::Result::Err(outcome) => outcome,
                }
            }

            #human_fns

            /// Runs the chain as run `run_id` (a name such as a ticket id):
            /// starts it if the runtime's store has no such run, and otherwise
            /// attaches to it, restoring every unit it recorded, so the same
            /// work started twice (concurrently, or after a crash, from any
            /// process sharing the store) runs once.
            #item_vis async fn execute_as(
                runtime: &::prompt_chain::Runtime,
                run_id: ::prompt_chain::RunId,
                input: Input,
            ) -> ::prompt_chain::Outcome<Output> {
                let __chain_options = ::prompt_chain::__private::RunOptions {
                    run_id: ::core::option::Option::Some(run_id),
                    ..::core::default::Default::default()
                };
                __execute(runtime, __chain_options, input).await
            }

            /// Like `execute`, and the run's events (its sub-chains' included) as
            /// a stream; poll both, for example with `tokio::join!` or by spawning the run.
            #item_vis fn execute_with_events(
                runtime: &::prompt_chain::Runtime,
                input: Input,
            ) -> (
                ::prompt_chain::events::EventStream,
                impl ::core::future::Future<Output = ::prompt_chain::Outcome<Output>> + ::core::marker::Send + '_,
            ) {
                let (__chain_sink, __chain_stream) = ::prompt_chain::events::EventStream::channel();
                let __chain_options = ::prompt_chain::__private::RunOptions { events: ::core::option::Option::Some(__chain_sink), ..::core::default::Default::default() };
                (__chain_stream, __execute(runtime, __chain_options, input))
            }

            #[doc(hidden)]
            #item_vis async fn __run_as_step(
                cx: &::prompt_chain::StepCx,
                input: Input,
            ) -> ::prompt_chain::StepResult<Return> {
                #as_step_body
            }

            /// Picks the returned key out of the outputs; its signature carries the
            /// user's return type, so a mismatch points at it and at the key.
            #[allow(unused_variables)]
            fn __chain_return(__chain_outputs: Output) -> #ret_child {
                #return_body
            }

            #definition

            // Hooks are called through closures on purpose: the closure's
            // argument type comes from the key, so `&str` hooks take `String` keys.
            #[doc(hidden)]
            #[allow(clippy::redundant_closure)]
            #item_vis async fn __execute(
                __chain_runtime: &::prompt_chain::Runtime,
                __chain_options: ::prompt_chain::__private::RunOptions<'_>,
                __chain_input: Input,
            ) -> ::prompt_chain::Outcome<Output> {
                #execute_body
            }

            #lint
        }
    }
}

/// Every distinct key a step writes, with its first producer (which types it).
pub(super) fn step_keys(chain: &Chain) -> Vec<&StepDecl> {
    let mut seen: Vec<String> = Vec::new();
    chain
        .steps
        .iter()
        .filter(|step| {
            let key = step.key.to_string();
            let new = !seen.contains(&key);
            seen.push(key);
            new
        })
        .collect()
}

/// Keys nobody reads become `unused variable` warnings on the user's own key.
fn unused_keys_lint(chain: &Chain, graph: Option<&Graph>) -> TokenStream {
    let Some(graph) = graph else {
        return TokenStream::new();
    };
    let unused = valid::unused_keys(chain, graph);
    if unused.is_empty() {
        return TokenStream::new();
    }
    quote! {
        #[allow(dead_code)]
        fn __chain_unused_keys() {
            #(let #unused = 0u8;)*
        }
    }
}

/// Every chain: `answer_within` (a reply to a question asked inside this
/// chain's run or its sub-chains, then the run resumed) and `sweep` for
/// expired questions. With human steps also `answer::<key>` and
/// `reply::<key>` per human step, typed by the step's answer type.
fn human_interface(chain: &Chain, name: &str) -> TokenStream {
    let humans: Vec<&StepDecl> = chain.steps.iter().filter(|step| step.is_human()).collect();
    let item_vis = child_vis(&chain.vis);
    let answers = humans.iter().map(|step| {
        let key = &step.key;
        let key_str = key.unraw().to_string();
        let ty = slot_type(step);
        let doc = format!(
            "Answers human step `{key_str}` of run `run_id` of chain `{name}`, then resumes the run (in this task) and returns how it went on. The first answer wins: a second one, an answer to a run that is not waiting for `{key_str}`, or one after its `wait` ran out, is an [`AnswerError`](::prompt_chain::human::AnswerError) and changes nothing. Pass the value, or `Answer::new(value).by(\"alice\")` to record who answered. When `{name}` ran as a sub-chain, answer through the root chain's `answer_within` with [`reply::{key_str}`](super::reply::{key_str})."
        );
        quote! {
            // Not an `async fn`: the answer's type is checked once, at the
            // call, and the future does not depend on it.
            #[doc = #doc]
            pub fn #key(
                runtime: &::prompt_chain::Runtime,
                run_id: ::prompt_chain::RunId,
                answer: impl ::prompt_chain::human::IntoAnswer<#ty>,
            ) -> ::prompt_chain::store::BoxFuture<'_, ::core::result::Result<::prompt_chain::Outcome<super::Output>, ::prompt_chain::human::AnswerError>> {
                let answer = ::prompt_chain::human::IntoAnswer::into_answer(answer);
                ::std::boxed::Box::pin(async move {
                    ::prompt_chain::human::answer(runtime, #name, run_id, #key_str, answer).await?;
                    ::core::result::Result::Ok(super::resume(runtime, run_id).await)
                })
            }
        }
    });
    let replies = humans.iter().map(|step| {
        let key = &step.key;
        let key_str = key.unraw().to_string();
        let ty = slot_type(step);
        let doc = format!(
            "A typed answer to human step `{key_str}` of chain `{name}` run as a sub-chain: pass it to the root chain's `answer_within`."
        );
        quote! {
            #[doc = #doc]
            pub fn #key(
                answer: impl ::prompt_chain::human::IntoAnswer<#ty>,
            ) -> ::prompt_chain::human::Reply<#ty> {
                ::prompt_chain::human::Reply::new(#name, #key_str, ::prompt_chain::human::IntoAnswer::into_answer(answer))
            }
        }
    });
    let modules = if humans.is_empty() {
        TokenStream::new()
    } else {
        let answer_doc = format!(
            "Typed answers to the human steps of chain `{name}`: one function per step, taking the step's answer type."
        );
        let reply_doc = format!(
            "Typed answers to the human steps of chain `{name}` when it runs as a sub-chain (or in a map): apply one with the root chain's `answer_within`."
        );
        quote! {
            #[doc = #answer_doc]
            #item_vis mod answer {
                use super::*;
                #(#answers)*
            }

            #[doc = #reply_doc]
            #item_vis mod reply {
                use super::*;
                #(#replies)*
            }
        }
    };
    let within_doc = format!(
        "Answers a question asked inside run `run_id` (a run of `{name}`, or of a sub-chain a run of `{name}` called, even from a map) with `reply` (made by the asking chain's `reply::<key>`), then resumes the root run (in this task) and returns how it went on. The run to name is the question's [`Waiting::run_id`](::prompt_chain::human::Waiting::run_id). Errors as for `answer::<key>`; a root run of another chain is [`AnswerError::WrongChain`](::prompt_chain::human::AnswerError::WrongChain)."
    );
    let sweep_doc = format!(
        "Resumes every suspended run of chain `{name}` with a question (its own or a sub-chain's) whose `wait` ran out, so each takes its `fallback` or fails: call it periodically (a run also checks its deadlines whenever it is resumed)."
    );
    quote! {
        #modules

        #[doc = #within_doc]
        #item_vis fn answer_within<__A: ::prompt_chain::__private::serde::Serialize + ::core::marker::Send + 'static>(
            runtime: &::prompt_chain::Runtime,
            run_id: ::prompt_chain::RunId,
            reply: ::prompt_chain::human::Reply<__A>,
        ) -> ::prompt_chain::store::BoxFuture<'_, ::core::result::Result<::prompt_chain::Outcome<Output>, ::prompt_chain::human::AnswerError>> {
            ::std::boxed::Box::pin(async move {
                let root = ::prompt_chain::human::answer_within(runtime, #name, run_id, reply).await?;
                ::core::result::Result::Ok(resume(runtime, root).await)
            })
        }

        #[doc = #sweep_doc]
        #item_vis async fn sweep(
            runtime: &::prompt_chain::Runtime,
        ) -> ::core::result::Result<::std::vec::Vec<::prompt_chain::Outcome<Output>>, ::prompt_chain::store::StoreError> {
            let mut outcomes = ::std::vec::Vec::new();
            for run_id in ::prompt_chain::human::expired(runtime, #name).await? {
                outcomes.push(resume(runtime, run_id).await);
            }
            ::core::result::Result::Ok(outcomes)
        }
    }
}
