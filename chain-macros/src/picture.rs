//! The chain's graph as text for people: Mermaid and DOT, computed at compile
//! time from the model and embedded as string constants.

use std::fmt::Write;

use syn::ext::IdentExt;

use crate::ast::{ArmRef, Chain};
use crate::graph::{Graph, Node, Source};

/// One node of the picture.
enum Shape {
    Input,
    Step,
    /// A map step: one run per element of a list.
    Map,
    /// A human step: waits for a person's answer.
    Human,
    Route,
    Output,
}

struct Picture {
    nodes: Vec<(String, Shape, String)>,
    /// From, to, label, whether the edge is one of several alternatives (a route output).
    edges: Vec<(String, String, String, bool)>,
}

fn step_id(index: usize) -> String {
    format!("s{index}")
}

fn route_id(index: usize) -> String {
    format!("r{index}")
}

/// Every step producing `key` inside route `route` (the alternatives of a route output).
fn producers_in_route(chain: &Chain, route: usize, key: &str, out: &mut Vec<usize>) {
    for arm in &chain.routes[route].arms {
        out.extend(
            arm.steps
                .iter()
                .copied()
                .filter(|&s| chain.steps[s].key == key),
        );
        for &inner in &arm.routes {
            producers_in_route(chain, inner, key, out);
        }
    }
}

/// Edges feeding `key` to `to`, as seen from `scope`.
fn feed(
    chain: &Chain,
    graph: &Graph,
    picture: &mut Picture,
    key: &str,
    scope: Option<ArmRef>,
    to: &str,
) {
    match graph.resolve(chain, key, scope) {
        Ok(Source::Input(i)) => {
            picture
                .edges
                .push((format!("in{i}"), to.to_owned(), key.to_owned(), false))
        }
        Ok(Source::Node(Node::Step(s))) => {
            picture
                .edges
                .push((step_id(s), to.to_owned(), key.to_owned(), false));
        }
        Ok(Source::Node(Node::Route(r))) => {
            let mut producers = Vec::new();
            producers_in_route(chain, r, key, &mut producers);
            for s in producers {
                picture
                    .edges
                    .push((step_id(s), to.to_owned(), key.to_owned(), true));
            }
        }
        Err(_) => {}
    }
}

fn build(chain: &Chain, graph: &Graph) -> Picture {
    let mut picture = Picture {
        nodes: Vec::new(),
        edges: Vec::new(),
    };
    for (i, input) in chain.inputs.iter().enumerate() {
        picture.nodes.push((
            format!("in{i}"),
            Shape::Input,
            input.key.unraw().to_string(),
        ));
    }
    for (i, step) in chain.steps.iter().enumerate() {
        let mut label = format!("{} → {}", step.name(), step.key.unraw());
        if let Some(max) = step.options.max {
            label.push_str(&format!(" (loop ≤ {max})"));
        }
        let shape = match &step.each {
            Some((position, _)) => {
                let list = step
                    .args
                    .get(*position)
                    .map_or_else(String::new, |arg| arg.unraw().to_string());
                let at_once = step.options.concurrency.as_ref().map_or(8, |(n, _)| *n);
                label.push_str(&format!(" (each {list}, ≤ {at_once} at once)"));
                Shape::Map
            }
            None if step.is_human() => {
                label = format!("waits for a person → {}", step.key.unraw());
                if let Some(ms) = step.options.wait_ms {
                    label.push_str(&format!(" (≤ {})", wait_text(ms)));
                }
                Shape::Human
            }
            None => Shape::Step,
        };
        picture.nodes.push((step_id(i), shape, label));
        for arg in &step.args {
            feed(
                chain,
                graph,
                &mut picture,
                &arg.to_string(),
                step.scope,
                &step_id(i),
            );
        }
    }
    for (r, route) in chain.routes.iter().enumerate() {
        picture.nodes.push((
            route_id(r),
            Shape::Route,
            format!("route on {}", route.key.unraw()),
        ));
        feed(
            chain,
            graph,
            &mut picture,
            &route.key.to_string(),
            route.scope,
            &route_id(r),
        );
        for arm in &route.arms {
            for &s in &arm.steps {
                picture
                    .edges
                    .push((route_id(r), step_id(s), arm.label.clone(), false));
            }
            for &inner in &arm.routes {
                picture
                    .edges
                    .push((route_id(r), route_id(inner), arm.label.clone(), false));
            }
        }
    }
    if let Some(output) = &chain.output {
        let name = output.unraw().to_string();
        picture
            .nodes
            .push(("out".to_owned(), Shape::Output, format!("returns {name}")));
        feed(chain, graph, &mut picture, &output.to_string(), None, "out");
    }
    picture
}

fn mermaid_label(text: &str) -> String {
    text.replace('"', "#quot;")
}

/// The chain as a Mermaid flowchart.
pub(crate) fn mermaid(chain: &Chain, graph: &Graph) -> String {
    let picture = build(chain, graph);
    let mut out = String::from("flowchart TD\n");
    for (id, shape, label) in &picture.nodes {
        let label = mermaid_label(label);
        let _ = match shape {
            Shape::Input => writeln!(out, "    {id}[/\"{label}\"/]"),
            Shape::Step => writeln!(out, "    {id}[\"{label}\"]"),
            Shape::Map => writeln!(out, "    {id}[[\"{label}\"]]"),
            Shape::Human => writeln!(out, "    {id}{{{{\"{label}\"}}}}"),
            Shape::Route => writeln!(out, "    {id}{{\"{label}\"}}"),
            Shape::Output => writeln!(out, "    {id}([\"{label}\"])"),
        };
    }
    for (from, to, label, alternative) in &picture.edges {
        let label = mermaid_label(label);
        let _ = if *alternative {
            writeln!(out, "    {from} -. \"{label}\" .-> {to}")
        } else {
            writeln!(out, "    {from} -->|\"{label}\"| {to}")
        };
    }
    out
}

fn dot_label(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The chain as a Graphviz DOT digraph.
pub(crate) fn dot(chain: &Chain, graph: &Graph) -> String {
    let picture = build(chain, graph);
    let mut out = format!(
        "digraph \"{}\" {{\n    rankdir=TB;\n    node [fontname=\"Helvetica\"];\n",
        dot_label(&chain.name.unraw().to_string())
    );
    for (id, shape, label) in &picture.nodes {
        let shape = match shape {
            Shape::Input => "parallelogram",
            Shape::Step => "box",
            Shape::Map => "box3d",
            Shape::Human => "hexagon",
            Shape::Route => "diamond",
            Shape::Output => "oval",
        };
        let _ = writeln!(
            out,
            "    {id} [shape={shape}, label=\"{}\"];",
            dot_label(label)
        );
    }
    for (from, to, label, alternative) in &picture.edges {
        let style = if *alternative { ", style=dashed" } else { "" };
        let _ = writeln!(
            out,
            "    {from} -> {to} [label=\"{}\"{style}];",
            dot_label(label)
        );
    }
    out.push_str("}\n");
    out
}

/// A `wait` in its largest whole unit: `48h`, `30m`, `90s`, `500ms`.
fn wait_text(ms: u64) -> String {
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}
