//! Every semantic check of a chain, each reported on the user's tokens.

use std::collections::HashMap;

use syn::Ident;

use crate::ast::Chain;
use crate::ctxt::Ctxt;
use crate::graph::{Graph, Node, Unavailable, exclusive};
use crate::suggest;

/// Records every wiring error of `chain` in `cx`.
pub(crate) fn validate(cx: &mut Ctxt, chain: &Chain, graph: &Graph) {
    check_unique_keys(cx, chain);
    check_cycles(cx, chain, graph);
    if !chain.incomplete {
        check_inputs_available(cx, chain, graph);
        check_output(cx, chain, graph);
    }
}

/// Keys produced but never read: each becomes an `unused variable` warning on
/// the user's key, silenced like any variable by a leading underscore.
pub(crate) fn unused_keys<'a>(chain: &'a Chain, graph: &Graph) -> Vec<&'a Ident> {
    let output = chain.output.as_ref().map(ToString::to_string);
    let mut seen = Vec::new();
    chain
        .inputs
        .iter()
        .map(|input| &input.key)
        .chain(chain.steps.iter().map(|step| &step.key))
        .filter(|key| {
            let name = key.to_string();
            let unused = !name.starts_with('_')
                && !graph.consumed.contains(&name)
                && output.as_ref() != Some(&name)
                && !seen.contains(&name);
            seen.push(name);
            unused
        })
        .collect()
}

/// How messages name a node.
fn describe(chain: &Chain, node: Node) -> String {
    match node {
        Node::Step(s) => format!("`{}`", chain.steps[s].name()),
        Node::Route(r) => chain.routes[r].describe(),
    }
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
    let mut writers: HashMap<String, Vec<usize>> = HashMap::new();
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
        let earlier = writers.entry(key.clone()).or_default();
        // Steps in different arms of one route never run together: each arm
        // may write the same key, which is how a route produces its outputs.
        if let Some(&first) = earlier
            .iter()
            .find(|&&other| !exclusive(chain, chain.steps[other].scope, step.scope))
        {
            let first_step = &chain.steps[first];
            cx.error_spanned_by(
                &step.key,
                format!(
                    "key `{key}` is written by two steps, `{}` and `{}`; each key has one producer (or one per route arm), so rename one of them",
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
        earlier.push(i);
    }
}

fn arm_list(chain: &Chain, route: usize, arms: &[usize]) -> String {
    suggest::list(
        arms.iter()
            .map(|&a| chain.routes[route].arms[a].label.as_str()),
    )
}

/// Reports that `consumer` (described by `who`) cannot have `key`, at `token`.
fn report_unavailable(
    cx: &mut Ctxt,
    chain: &Chain,
    who: &str,
    key_token: &Ident,
    own_key: Option<&Ident>,
    reason: Unavailable,
) {
    let key = key_token.to_string();
    let message = match reason {
        Unavailable::Unknown => {
            let mut known: Vec<String> = chain.inputs.iter().map(|i| i.key.to_string()).collect();
            for step in &chain.steps {
                let name = step.key.to_string();
                if !known.contains(&name) && own_key.is_none_or(|own| *own != name) {
                    known.push(name);
                }
            }
            let hint = match suggest::closest(&key, known.iter().map(String::as_str)) {
                Some(near) => format!("did you mean `{near}`?"),
                None if known.is_empty() => "the chain has no other keys".to_owned(),
                None => format!(
                    "available keys: {}",
                    suggest::list(known.iter().map(String::as_str))
                ),
            };
            format!(
                "{who} needs `{key}`, but no step outputs it and chain `{}` has no such input; {hint}",
                chain.name
            )
        }
        Unavailable::PartialRoute { route, missing } => format!(
            "{who} needs `{key}`, but not every arm of {} produces it: {} {} not; produce `{key}` in every arm (with one type), or use it only inside the arms that do",
            chain.routes[route].describe(),
            arm_list(chain, route, &missing),
            if missing.len() == 1 { "does" } else { "do" },
        ),
        Unavailable::OtherArm { producer } => {
            let step = &chain.steps[producer];
            let arm = step
                .scope
                .map(|arm| {
                    format!(
                        " in arm `{}` of {}",
                        chain.routes[arm.route].arms[arm.arm].label,
                        chain.routes[arm.route].describe()
                    )
                })
                .unwrap_or_default();
            format!(
                "{who} needs `{key}`, which step `{}` produces{arm}; that arm never runs together with this one",
                step.name()
            )
        }
    };
    cx.error_spanned_by(key_token, message);
}

fn check_inputs_available(cx: &mut Ctxt, chain: &Chain, graph: &Graph) {
    for step in &chain.steps {
        for arg in &step.args {
            if let Err(reason) = graph.resolve(chain, &arg.to_string(), step.scope) {
                let who = format!("step `{}`", step.name());
                report_unavailable(cx, chain, &who, arg, Some(&step.key), reason);
            }
        }
    }
    for route in &chain.routes {
        if let Err(reason) = graph.resolve(chain, &route.key.to_string(), route.scope) {
            let who = "the route".to_owned();
            report_unavailable(cx, chain, &who, &route.key, None, reason);
        }
    }
}

fn check_cycles(cx: &mut Ctxt, chain: &Chain, graph: &Graph) {
    for cycle in graph.cycles() {
        let first = cycle[0];
        if let [Node::Step(s)] = cycle[..] {
            let step = &chain.steps[s];
            let arg = step
                .args
                .iter()
                .find(|a| **a == step.key)
                .unwrap_or(&step.key);
            cx.error_spanned_by(
                arg,
                format!(
                    "step `{}` takes its own output `{}`; a step cannot depend on itself (for a loop, see the `until` and `max` options)",
                    step.name(),
                    step.key
                ),
            );
            continue;
        }
        let mut links = Vec::new();
        let mut first_token = None;
        for (n, &at) in cycle.iter().enumerate() {
            let next = cycle[(n + 1) % cycle.len()];
            let key = graph
                .deps_of(at)
                .iter()
                .find(|(node, _)| *node == next)
                .and_then(|(_, key)| key.clone());
            if n == 0 {
                first_token = match (at, &key) {
                    (Node::Step(s), Some(key)) => chain.steps[s].args.iter().find(|a| *a == key),
                    (Node::Route(r), _) => Some(&chain.routes[r].key),
                    (Node::Step(s), None) => Some(&chain.steps[s].key),
                };
            }
            links.push(match key {
                Some(key) => format!(
                    "{} needs `{key}` from {}",
                    describe(chain, at),
                    describe(chain, next)
                ),
                None => format!("{} runs {}", describe(chain, at), describe(chain, next)),
            });
        }
        let span_at = first_token.unwrap_or(match first {
            Node::Step(s) => &chain.steps[s].key,
            Node::Route(r) => &chain.routes[r].key,
        });
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
    if graph.always_produced(chain, &key) {
        return;
    }
    let message = match graph.resolve(chain, &key, None) {
        Err(Unavailable::PartialRoute { route, missing }) => format!(
            "chain `{}` returns `{key}`, but not every arm of {} produces it: {} {} not; produce `{key}` in every arm (with one type)",
            chain.name,
            chain.routes[route].describe(),
            arm_list(chain, route, &missing),
            if missing.len() == 1 { "does" } else { "do" },
        ),
        _ => {
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
            format!(
                "chain `{}` returns `{key}`, but no step outputs it; {hint}",
                chain.name
            )
        }
    };
    cx.error_spanned_by(output, message);
}
