//! Unit tests of the graph analysis, on chains built from tokens the way
//! `#[chain]` receives them.

use syn::{ItemFn, parse_quote};

use super::{Graph, Node, Source, Unavailable, ancestors, exclusive, scope_of};
use crate::ast::{ArmRef, Chain};
use crate::ctxt::Ctxt;

/// The model of a chain that parses without errors, and its graph.
fn analyze(item: ItemFn) -> (Chain, Graph) {
    let mut cx = Ctxt::default();
    let chain = Chain::from_syn(&mut cx, item).expect("the chain parses");
    assert_eq!(cx.messages(), Vec::<String>::new());
    let graph = Graph::build(&chain);
    (chain, graph)
}

fn arm(route: usize, arm: usize) -> Option<ArmRef> {
    Some(ArmRef { route, arm })
}

/// A ticket router: `reply` comes from both arms of the route, `notes`
/// only from the second one.
///
/// Steps: 0 `category`, 1 `reply` (arm 0), 2 `notes` (arm 1),
/// 3 `reply` (arm 1), 4 `sent`.
fn router() -> (Chain, Graph) {
    analyze(parse_quote! {
        async fn router(ticket: String) -> String {
            step!(category = classify(ticket));
            route!(category {
                Category::Billing => step!(reply = billing(ticket)),
                Category::Technical => {
                    step!(notes = diagnose(ticket));
                    step!(reply = technical(ticket, notes));
                }
            });
            step!(sent = send(reply));
            sent
        }
    })
}

#[test]
fn steps_are_polled_after_their_inputs_whatever_the_declaration_order() {
    let (chain, graph) = analyze(parse_quote! {
        async fn backwards(text: String) -> String {
            step!(c = join(a, b));
            step!(b = second(a));
            step!(a = first(text));
            c
        }
    });
    assert_eq!(
        graph.order_in(&chain, None),
        [Node::Step(2), Node::Step(1), Node::Step(0)]
    );
    assert!(graph.cycles().is_empty());
}

#[test]
fn independent_steps_keep_their_declaration_order() {
    let (chain, graph) = analyze(parse_quote! {
        async fn fan_in(text: String) -> String {
            step!(a = left(text));
            step!(b = right(text));
            step!(c = join(a, b));
            c
        }
    });
    assert_eq!(
        graph.order_in(&chain, None),
        [Node::Step(0), Node::Step(1), Node::Step(2)]
    );
    assert_eq!(
        graph.deps_of(Node::Step(2)),
        [
            (Node::Step(0), Some("a".to_owned())),
            (Node::Step(1), Some("b".to_owned())),
        ]
    );
    // Chain inputs are not nodes: a step reading only inputs waits for nothing.
    assert!(graph.deps_of(Node::Step(0)).is_empty());
}

#[test]
fn keys_resolve_to_inputs_and_producers() {
    let (chain, graph) = analyze(parse_quote! {
        async fn wiring(text: String, audience: String) -> String {
            step!(summary = summarize(text, audience));
            step!(review = check(summary));
            review
        }
    });
    assert_eq!(graph.producers["summary"], [0]);
    assert_eq!(graph.producers["review"], [1]);
    assert!(matches!(
        graph.resolve(&chain, "audience", None),
        Ok(Source::Input(1))
    ));
    assert!(matches!(
        graph.resolve(&chain, "summary", None),
        Ok(Source::Node(Node::Step(0)))
    ));
    assert!(matches!(
        graph.resolve(&chain, "summery", None),
        Err(Unavailable::Unknown)
    ));
    // `review` is only returned, never read by a step.
    assert!(graph.consumed.contains("summary") && graph.consumed.contains("text"));
    assert!(!graph.consumed.contains("review"));
}

#[test]
fn a_cycle_is_found_once_and_its_nodes_polled_last() {
    let (chain, graph) = analyze(parse_quote! {
        async fn looped(text: String) -> String {
            step!(a = first(b));
            step!(b = second(a));
            step!(c = other(text));
            c
        }
    });
    assert_eq!(graph.cycles(), [vec![Node::Step(0), Node::Step(1)]]);
    assert_eq!(
        graph.order_in(&chain, None),
        [Node::Step(2), Node::Step(0), Node::Step(1)]
    );
}

#[test]
fn a_step_reading_its_own_key_is_a_cycle() {
    let (_, graph) = analyze(parse_quote! {
        async fn selfish(text: String) -> String {
            step!(a = grow(a, text));
            a
        }
    });
    assert_eq!(graph.cycles(), [vec![Node::Step(0)]]);
}

#[test]
fn a_node_behind_a_cycle_is_not_reported_as_one() {
    let (_, graph) = analyze(parse_quote! {
        async fn behind(text: String) -> String {
            step!(a = first(b));
            step!(b = second(a));
            step!(c = after(a));
            c
        }
    });
    assert_eq!(graph.cycles(), [vec![Node::Step(0), Node::Step(1)]]);
}

#[test]
fn a_route_waits_for_its_key_and_its_arms() {
    let (chain, graph) = router();
    assert_eq!(
        graph.order_in(&chain, None),
        [Node::Step(0), Node::Route(0), Node::Step(4)]
    );
    assert_eq!(graph.order_in(&chain, arm(0, 0)), [Node::Step(1)]);
    assert_eq!(
        graph.order_in(&chain, arm(0, 1)),
        [Node::Step(2), Node::Step(3)]
    );
    assert_eq!(
        graph.deps_of(Node::Route(0)),
        [
            (Node::Step(0), Some("category".to_owned())),
            (Node::Step(1), None),
            (Node::Step(2), None),
            (Node::Step(3), None),
        ]
    );
    // After the route, `reply` comes from the route, not from one arm's step.
    assert_eq!(
        graph.deps_of(Node::Step(4)),
        [(Node::Route(0), Some("reply".to_owned()))]
    );
    assert_eq!(scope_of(&chain, Node::Step(3)), arm(0, 1));
    assert_eq!(scope_of(&chain, Node::Route(0)), None);
}

#[test]
fn keys_inside_arms_resolve_by_scope() {
    let (chain, graph) = router();
    assert_eq!(graph.producers["reply"], [1, 3]);
    assert!(matches!(
        graph.resolve(&chain, "reply", None),
        Ok(Source::Node(Node::Route(0)))
    ));
    assert!(matches!(
        graph.resolve(&chain, "notes", arm(0, 1)),
        Ok(Source::Node(Node::Step(2)))
    ));
    assert!(matches!(
        graph.resolve(&chain, "notes", None),
        Err(Unavailable::PartialRoute { route: 0, ref missing }) if *missing == [0]
    ));
    assert!(matches!(
        graph.resolve(&chain, "notes", arm(0, 0)),
        Err(Unavailable::OtherArm { producer: 2 })
    ));
}

#[test]
fn only_keys_of_every_path_are_always_produced() {
    let (chain, graph) = router();
    assert!(graph.always_produced(&chain, "ticket"));
    assert!(graph.always_produced(&chain, "category"));
    assert!(graph.always_produced(&chain, "reply"));
    assert!(graph.always_produced(&chain, "sent"));
    assert!(!graph.always_produced(&chain, "notes"));
    assert!(!graph.always_produced(&chain, "nothing"));
}

/// An outer route whose second arm holds an inner route; `reply` comes
/// from every inner arm, `extra` from one only.
///
/// Steps: 0 `kind`, 1 `reply` (outer arm 0), 2 `reply` (inner arm 0),
/// 3 `extra` (inner arm 0), 4 `reply` (inner arm 1).
fn nested() -> (Chain, Graph) {
    analyze(parse_quote! {
        async fn nested(ticket: String, vip: bool) -> String {
            step!(kind = classify(ticket));
            route!(kind {
                Kind::Simple => step!(reply = simple(ticket)),
                Kind::Hard => {
                    route!(vip {
                        true => {
                            step!(reply = priority(ticket));
                            step!(extra = gift(ticket));
                        }
                        false => step!(reply = queue(ticket)),
                    });
                }
            });
            reply
        }
    })
}

#[test]
fn a_nested_route_counts_for_the_arm_holding_it() {
    let (chain, graph) = nested();
    assert_eq!(chain.routes[1].scope, arm(0, 1));
    assert!(graph.always_produced(&chain, "reply"));
    assert!(!graph.always_produced(&chain, "extra"));
    assert!(matches!(
        graph.resolve(&chain, "reply", None),
        Ok(Source::Node(Node::Route(0)))
    ));
    // Inside the outer arm, the inner route is where `reply` comes from.
    assert!(matches!(
        graph.resolve(&chain, "reply", arm(0, 1)),
        Ok(Source::Node(Node::Route(1)))
    ));
    // No arm of the outer route produces `extra` on every path through
    // it, so from the top it is a key of another arm, named by its step.
    assert!(matches!(
        graph.resolve(&chain, "extra", None),
        Err(Unavailable::OtherArm { producer: 3 })
    ));
    assert!(matches!(
        graph.resolve(&chain, "extra", arm(0, 1)),
        Err(Unavailable::PartialRoute { route: 1, ref missing }) if *missing == [1]
    ));
    // The outer route waits for the inner one, which waits for its steps.
    assert!(
        graph
            .deps_of(Node::Route(0))
            .contains(&(Node::Route(1), None))
    );
    let order = &graph.order;
    let at = |node| order.iter().position(|&n| n == node);
    assert!(at(Node::Step(3)) < at(Node::Route(1)));
    assert!(at(Node::Route(1)) < at(Node::Route(0)));
}

#[test]
fn arms_of_one_route_are_exclusive() {
    let (chain, _) = nested();
    assert!(exclusive(&chain, arm(0, 0), arm(0, 1)));
    // An arm of the inner route sits inside the outer route's second arm.
    assert!(exclusive(&chain, arm(0, 0), arm(1, 0)));
    assert!(exclusive(&chain, arm(1, 0), arm(1, 1)));
    assert!(!exclusive(&chain, arm(0, 1), arm(1, 0)));
    assert!(!exclusive(&chain, None, arm(1, 1)));
    assert!(!exclusive(&chain, arm(1, 1), arm(1, 1)));
    assert_eq!(ancestors(&chain, arm(1, 1)), [arm(1, 1), arm(0, 1), None]);
}
