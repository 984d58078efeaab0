//! Every semantic check of a chain, each reported on the user's tokens.

use std::collections::HashMap;

use syn::Ident;

use crate::ast::Chain;
use crate::ctxt::Ctxt;
use crate::graph::{Graph, Producer};
use crate::suggest;

/// Records every wiring error of `chain` in `cx`.
pub(crate) fn validate(cx: &mut Ctxt, chain: &Chain, graph: &Graph) {
    check_unique_keys(cx, chain);
    check_cycles(cx, chain, graph);
    if !chain.incomplete {
        check_inputs_exist(cx, chain, graph);
        check_output(cx, chain, graph);
    }
}

/// Keys produced but never read: each becomes an `unused variable` warning on
/// the user's key, silenced like any variable by a leading underscore.
pub(crate) fn unused_keys<'a>(chain: &'a Chain, graph: &Graph) -> Vec<&'a Ident> {
    let output = chain.output.as_ref().map(ToString::to_string);
    chain
        .inputs
        .iter()
        .map(|input| &input.key)
        .chain(chain.steps.iter().map(|step| &step.key))
        .filter(|key| {
            let name = key.to_string();
            !name.starts_with('_')
                && !graph.consumed.contains(&name)
                && output.as_ref() != Some(&name)
        })
        .collect()
}

fn check_unique_keys(cx: &mut Ctxt, chain: &Chain) {
    let mut inputs: HashMap<String, &Ident> = HashMap::new();
    for input in &chain.inputs {
        let name = input.key.to_string();
        if inputs.insert(name.clone(), &input.key).is_some() {
            cx.error_spanned_by(
                &input.key,
                format!("chain input `{name}` is declared twice"),
            );
        }
    }
    let mut writers: HashMap<String, usize> = HashMap::new();
    for (i, step) in chain.steps.iter().enumerate() {
        let key = step.key.to_string();
        if inputs.contains_key(&key) {
            cx.error_spanned_by(
                &step.key,
                format!(
                    "step `{}` writes `{key}`, which is already an input of chain `{}`; give the output its own key",
                    step.name(),
                    chain.name
                ),
            );
            continue;
        }
        match writers.get(&key) {
            Some(&first) => {
                let first_step = &chain.steps[first];
                cx.error_spanned_by(
                    &step.key,
                    format!(
                        "key `{key}` is written by two steps, `{}` and `{}`; each key has one producer, so rename one of them",
                        first_step.name(),
                        step.name()
                    ),
                );
                cx.error_spanned_by(
                    &first_step.key,
                    format!(
                        "`{key}` is first written here, by step `{}`",
                        first_step.name()
                    ),
                );
            }
            None => {
                writers.insert(key, i);
            }
        }
    }
}

fn check_inputs_exist(cx: &mut Ctxt, chain: &Chain, graph: &Graph) {
    let mut known: Vec<String> = chain.inputs.iter().map(|i| i.key.to_string()).collect();
    known.extend(chain.steps.iter().map(|s| s.key.to_string()));
    for step in &chain.steps {
        for arg in &step.args {
            let key = arg.to_string();
            if graph.producers.contains_key(&key) {
                continue;
            }
            let own = step.key.to_string();
            let candidates = known.iter().map(String::as_str).filter(|k| *k != own);
            let hint = match suggest::closest(&key, candidates.clone()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("available keys: {}", suggest::list(candidates)),
            };
            cx.error_spanned_by(
                arg,
                format!(
                    "step `{}` needs `{key}`, but no step outputs it and chain `{}` has no such input; {hint}",
                    step.name(),
                    chain.name
                ),
            );
        }
    }
}

fn check_cycles(cx: &mut Ctxt, chain: &Chain, graph: &Graph) {
    for cycle in graph.cycles() {
        let first = cycle[0];
        if cycle.len() == 1 {
            let step = &chain.steps[first];
            let arg = step
                .args
                .iter()
                .find(|a| **a == step.key)
                .unwrap_or(&step.key);
            cx.error_spanned_by(
                arg,
                format!(
                    "step `{}` takes its own output `{}`; a step cannot depend on itself",
                    step.name(),
                    step.key
                ),
            );
            continue;
        }
        let mut links = Vec::new();
        let mut first_arg = None;
        for (n, &at) in cycle.iter().enumerate() {
            let next = cycle[(n + 1) % cycle.len()];
            let step = &chain.steps[at];
            let producer = &chain.steps[next];
            let arg = step
                .args
                .iter()
                .find(|a| graph.producers.get(&a.to_string()) == Some(&Producer::Step(next)));
            if n == 0 {
                first_arg = arg;
            }
            links.push(format!(
                "`{}` needs `{}` from `{}`",
                step.name(),
                producer.key,
                producer.name()
            ));
        }
        let span_at = first_arg.unwrap_or(&chain.steps[first].key);
        cx.error_spanned_by(
            span_at,
            format!(
                "steps of chain `{}` depend on each other in a cycle: {}; break the cycle by removing one of these inputs",
                chain.name,
                links.join(", ")
            ),
        );
    }
}

fn check_output(cx: &mut Ctxt, chain: &Chain, graph: &Graph) {
    let Some(output) = &chain.output else {
        cx.syn_error(syn::Error::new(
            chain.body_end,
            format!(
                "chain `{}` must end with the key it returns, such as `{}`",
                chain.name,
                chain
                    .steps
                    .last()
                    .map_or_else(|| "result".to_owned(), |s| s.key.to_string())
            ),
        ));
        return;
    };
    let key = output.to_string();
    if graph.producers.contains_key(&key) {
        return;
    }
    let known: Vec<String> = chain
        .inputs
        .iter()
        .map(|i| i.key.to_string())
        .chain(chain.steps.iter().map(|s| s.key.to_string()))
        .collect();
    let hint = match suggest::closest(&key, known.iter().map(String::as_str)) {
        Some(near) => format!("did you mean `{near}`?"),
        None => format!(
            "available keys: {}",
            suggest::list(known.iter().map(String::as_str))
        ),
    };
    cx.error_spanned_by(
        output,
        format!(
            "chain `{}` returns `{key}`, but no step outputs it; {hint}",
            chain.name
        ),
    );
}
