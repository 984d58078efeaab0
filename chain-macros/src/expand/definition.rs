//! The chain's declaration as data: the `static __CHAIN_DEF` the runtime
//! reads (names, keys, step options, route arms, fingerprint).

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;

use crate::ast::Chain;

/// The `static __CHAIN_DEF` describing the chain.
pub(super) fn chain_definition(chain: &Chain) -> TokenStream {
    let name = chain.name.unraw().to_string();
    let inputs = chain
        .inputs
        .iter()
        .map(|input| input.key.unraw().to_string());
    let output = chain
        .output
        .as_ref()
        .map(|key| key.unraw().to_string())
        .unwrap_or_default();
    let fingerprint = chain.fingerprint;
    let steps = chain.steps.iter().map(|step| {
        let step_name = step.name();
        let key = step.key.unraw().to_string();
        let step_inputs = step.args.iter().map(|arg| arg.unraw().to_string());
        let retries = match step.options.retry {
            Some(n) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        let timeout = match step.options.timeout_ms {
            Some(ms) => {
                quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#ms)))
            }
            None => quote!(::core::option::Option::None),
        };
        let validated = step.options.validate.is_some();
        let max_iterations = match step.options.max {
            Some(n) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        let reasks = match step.options.reask {
            Some(n) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        let fallback_model = match &step.options.fallback_model {
            Some(name) => quote!(::core::option::Option::Some(#name)),
            None => quote!(::core::option::Option::None),
        };
        let deadline = match step.options.deadline_ms {
            Some(ms) => {
                quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#ms)))
            }
            None => quote!(::core::option::Option::None),
        };
        let max_tokens = match step.options.max_tokens {
            Some(n) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        let each = match &step.each {
            Some((position, _)) => quote!(::core::option::Option::Some(#position)),
            None => quote!(::core::option::Option::None),
        };
        let concurrency = match &step.options.concurrency {
            Some((n, _)) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        let collect = step.collects();
        let cache = millis(step.options.cache_ms);
        let wait = millis(step.options.wait_ms);
        let prompt = match &step.options.prompt {
            Some(text) => quote!(::core::option::Option::Some(#text)),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            ::prompt_chain::definition::StepDef {
                name: #step_name,
                key: #key,
                inputs: &[#(#step_inputs),*],
                options: ::prompt_chain::definition::StepOptions {
                    retries: #retries,
                    timeout: #timeout,
                    validated: #validated,
                    max_iterations: #max_iterations,
                    cache: #cache,
                    reasks: #reasks,
                    fallback_model: #fallback_model,
                    deadline: #deadline,
                    max_tokens: #max_tokens,
                    each: #each,
                    concurrency: #concurrency,
                    collect: #collect,
                    wait: #wait,
                    prompt: #prompt,
                },
            }
        }
    });
    let routes = chain.routes.iter().enumerate().map(|(r, route)| {
        let key = route.key.unraw().to_string();
        let arms = route.arms.iter().enumerate().map(|(a, arm)| {
            let pattern = &arm.label;
            let mut steps = Vec::new();
            arm_steps(chain, r, a, &mut steps);
            quote!(::prompt_chain::definition::ArmDef { pattern: #pattern, steps: &[#(#steps),*] })
        });
        quote!(::prompt_chain::definition::RouteDef { key: #key, arms: &[#(#arms),*] })
    });
    quote! {
        static __CHAIN_DEF: ::prompt_chain::definition::ChainDef = ::prompt_chain::definition::ChainDef {
            name: #name,
            inputs: &[#(#inputs),*],
            steps: &[#(#steps),*],
            routes: &[#(#routes),*],
            output: #output,
            fingerprint: #fingerprint,
        };
    }
}

/// Every step inside arm `arm` of route `route`, nested routes included.
fn arm_steps(chain: &Chain, route: usize, arm: usize, out: &mut Vec<usize>) {
    let decl = &chain.routes[route].arms[arm];
    out.extend(decl.steps.iter().copied());
    for &inner in &decl.routes {
        for inner_arm in 0..chain.routes[inner].arms.len() {
            arm_steps(chain, inner, inner_arm, out);
        }
    }
}

/// An optional duration in milliseconds, as a `const` expression.
fn millis(ms: Option<u64>) -> TokenStream {
    match ms {
        Some(ms) => quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#ms))),
        None => quote!(::core::option::Option::None),
    }
}
