//! The chain as a graph: where each key comes from as seen from each step (a
//! step inside a route arm sees more than one outside it), who depends on
//! whom, in which order nodes are polled, and where the cycles are.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::ast::{ArmRef, Chain};

/// A node of the graph: a step, or a route (which finishes when its arm does).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Node {
    Step(usize),
    Route(usize),
}

/// Where a consumer gets a key from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Source {
    /// Chain input number `n`.
    Input(usize),
    /// A step, or a route all of whose arms produce the key.
    Node(Node),
}

/// Why a key is not available to a consumer.
#[derive(Debug)]
pub(crate) enum Unavailable {
    /// Nothing produces it.
    Unknown,
    /// Some arms of a route produce it, these arms do not.
    PartialRoute { route: usize, missing: Vec<usize> },
    /// Only steps the consumer never runs with produce it (another arm).
    OtherArm { producer: usize },
}

pub(crate) struct Graph {
    inputs: HashMap<String, usize>,
    /// The steps writing each key.
    pub(crate) producers: HashMap<String, Vec<usize>>,
    /// Keys every arm of a route produces, per route.
    route_outputs: Vec<BTreeSet<String>>,
    /// For each node, the nodes it waits for, with the key it takes from them.
    deps: Vec<Vec<(Node, Option<String>)>>,
    /// Every node, each after the nodes it depends on; nodes caught in a
    /// cycle follow in declaration order.
    pub(crate) order: Vec<Node>,
    /// Keys some step or route reads.
    pub(crate) consumed: HashSet<String>,
    step_count: usize,
}

impl Graph {
    pub(crate) fn build(chain: &Chain) -> Graph {
        let inputs: HashMap<String, usize> = chain
            .inputs
            .iter()
            .enumerate()
            .map(|(i, input)| (input.key.to_string(), i))
            .collect();
        let mut producers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, step) in chain.steps.iter().enumerate() {
            producers.entry(step.key.to_string()).or_default().push(i);
        }
        let mut route_outputs = vec![BTreeSet::new(); chain.routes.len()];
        // Nested routes are declared after the route holding them, so going
        // backwards computes inner routes first.
        for r in (0..chain.routes.len()).rev() {
            let mut outputs: Option<BTreeSet<String>> = None;
            for arm in &chain.routes[r].arms {
                let mut produced: BTreeSet<String> = arm
                    .steps
                    .iter()
                    .map(|&s| chain.steps[s].key.to_string())
                    .collect();
                for &inner in &arm.routes {
                    produced.extend(route_outputs[inner].iter().cloned());
                }
                outputs = Some(match outputs {
                    None => produced,
                    Some(so_far) => so_far.intersection(&produced).cloned().collect(),
                });
            }
            route_outputs[r] = outputs.unwrap_or_default();
        }
        let mut graph = Graph {
            inputs,
            producers,
            route_outputs,
            deps: Vec::new(),
            order: Vec::new(),
            consumed: HashSet::new(),
            step_count: chain.steps.len(),
        };
        let mut deps = Vec::with_capacity(chain.steps.len() + chain.routes.len());
        for step in &chain.steps {
            let mut step_deps = Vec::new();
            for arg in &step.args {
                let key = arg.to_string();
                if let Ok(Source::Node(node)) = graph.resolve(chain, &key, step.scope) {
                    step_deps.push((node, Some(key.clone())));
                }
                graph.consumed.insert(key);
            }
            deps.push(step_deps);
        }
        for route in &chain.routes {
            let mut route_deps = Vec::new();
            let key = route.key.to_string();
            if let Ok(Source::Node(node)) = graph.resolve(chain, &key, route.scope) {
                route_deps.push((node, Some(key.clone())));
            }
            graph.consumed.insert(key);
            for arm in &route.arms {
                route_deps.extend(arm.steps.iter().map(|&s| (Node::Step(s), None)));
                route_deps.extend(arm.routes.iter().map(|&q| (Node::Route(q), None)));
            }
            deps.push(route_deps);
        }
        graph.deps = deps;
        graph.order = graph.topological_order();
        graph
    }

    fn id(&self, node: Node) -> usize {
        match node {
            Node::Step(s) => s,
            Node::Route(r) => self.step_count + r,
        }
    }

    fn node(&self, id: usize) -> Node {
        if id < self.step_count {
            Node::Step(id)
        } else {
            Node::Route(id - self.step_count)
        }
    }

    /// The nodes `node` waits for, with the key taken from each.
    pub(crate) fn deps_of(&self, node: Node) -> &[(Node, Option<String>)] {
        &self.deps[self.id(node)]
    }

    /// Where a consumer sitting in `scope` gets `key` from.
    pub(crate) fn resolve(
        &self,
        chain: &Chain,
        key: &str,
        scope: Option<ArmRef>,
    ) -> Result<Source, Unavailable> {
        if let Some(&i) = self.inputs.get(key) {
            return Ok(Source::Input(i));
        }
        let visible = ancestors(chain, scope);
        let producers = self.producers.get(key).map_or(&[][..], Vec::as_slice);
        if let Some(&p) = producers
            .iter()
            .find(|&&p| visible.contains(&chain.steps[p].scope))
        {
            return Ok(Source::Node(Node::Step(p)));
        }
        let inside = |r: usize| visible.iter().flatten().any(|arm| arm.route == r);
        for (r, outputs) in self.route_outputs.iter().enumerate() {
            if outputs.contains(key) && visible.contains(&chain.routes[r].scope) && !inside(r) {
                return Ok(Source::Node(Node::Route(r)));
            }
        }
        for (r, route) in chain.routes.iter().enumerate() {
            if !visible.contains(&route.scope) || inside(r) {
                continue;
            }
            let arms_with: Vec<bool> = (0..route.arms.len())
                .map(|a| self.arm_produces(chain, r, a, key))
                .collect();
            if arms_with.iter().any(|&with| with) {
                let missing = arms_with
                    .iter()
                    .enumerate()
                    .filter(|(_, with)| !**with)
                    .map(|(a, _)| a)
                    .collect();
                return Err(Unavailable::PartialRoute { route: r, missing });
            }
        }
        match producers.first() {
            Some(&producer) => Err(Unavailable::OtherArm { producer }),
            None => Err(Unavailable::Unknown),
        }
    }

    /// Whether arm `a` of route `r` always produces `key`.
    fn arm_produces(&self, chain: &Chain, r: usize, a: usize, key: &str) -> bool {
        let arm = &chain.routes[r].arms[a];
        arm.steps.iter().any(|&s| chain.steps[s].key == key)
            || arm
                .routes
                .iter()
                .any(|&q| self.route_outputs[q].contains(key))
    }

    /// Each cycle once, as a list of nodes where each depends on the next and
    /// the last depends on the first.
    pub(crate) fn cycles(&self) -> Vec<Vec<Node>> {
        let n = self.deps.len();
        let sorted: HashSet<usize> = self.kahn().into_iter().collect();
        let mut reported = vec![false; n];
        let mut cycles = Vec::new();
        for start in 0..n {
            if sorted.contains(&start) || reported[start] {
                continue;
            }
            // Every unsorted node depends on some unsorted node; walk such
            // edges until a node repeats: the repeated stretch is a cycle.
            let mut path = vec![start];
            let mut position: HashMap<usize, usize> = HashMap::from([(start, 0)]);
            let mut current = start;
            while let Some(next) = self.deps[current]
                .iter()
                .map(|(node, _)| self.id(*node))
                .find(|d| !sorted.contains(d))
            {
                if reported[next] {
                    break;
                }
                if let Some(&at) = position.get(&next) {
                    let cycle: Vec<usize> = path[at..].to_vec();
                    for &id in &cycle {
                        reported[id] = true;
                    }
                    cycles.push(cycle.into_iter().map(|id| self.node(id)).collect());
                    break;
                }
                position.insert(next, path.len());
                path.push(next);
                current = next;
            }
        }
        cycles
    }

    /// The nodes Kahn's algorithm can order (those not in or behind a cycle).
    fn kahn(&self) -> Vec<usize> {
        let n = self.deps.len();
        let mut remaining: Vec<usize> = vec![0; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (id, deps) in self.deps.iter().enumerate() {
            let mut seen = HashSet::new();
            for (node, _) in deps {
                let dep = self.id(*node);
                if seen.insert(dep) {
                    remaining[id] += 1;
                    dependents[dep].push(id);
                }
            }
        }
        let mut order = Vec::with_capacity(n);
        let mut ready: Vec<usize> = (0..n).filter(|&i| remaining[i] == 0).rev().collect();
        while let Some(id) = ready.pop() {
            order.push(id);
            for &dependent in dependents[id].iter().rev() {
                remaining[dependent] -= 1;
                if remaining[dependent] == 0 {
                    ready.push(dependent);
                }
            }
        }
        order
    }

    fn topological_order(&self) -> Vec<Node> {
        let mut order = self.kahn();
        let placed: HashSet<usize> = order.iter().copied().collect();
        order.extend((0..self.deps.len()).filter(|i| !placed.contains(i)));
        order.into_iter().map(|id| self.node(id)).collect()
    }

    /// The nodes directly in `scope`, in polling order.
    pub(crate) fn order_in(&self, chain: &Chain, scope: Option<ArmRef>) -> Vec<Node> {
        self.order
            .iter()
            .copied()
            .filter(|&node| scope_of(chain, node) == scope)
            .collect()
    }

    /// Whether `key` has a value on every path through the chain (a top-level
    /// step's key, or an output of a top-level route); other keys exist only
    /// when the arm producing them ran.
    pub(crate) fn always_produced(&self, chain: &Chain, key: &str) -> bool {
        self.inputs.contains_key(key)
            || matches!(
                self.producers.get(key).and_then(|p| p.first()),
                Some(&p) if chain.steps[p].scope.is_none()
            )
            || chain
                .routes
                .iter()
                .enumerate()
                .any(|(r, route)| route.scope.is_none() && self.route_outputs[r].contains(key))
    }
}

/// The arm a node sits in.
pub(crate) fn scope_of(chain: &Chain, node: Node) -> Option<ArmRef> {
    match node {
        Node::Step(s) => chain.steps[s].scope,
        Node::Route(r) => chain.routes[r].scope,
    }
}

/// `scope`, the arms around it, and the top (`None`).
pub(crate) fn ancestors(chain: &Chain, scope: Option<ArmRef>) -> Vec<Option<ArmRef>> {
    let mut chain_of = vec![scope];
    let mut current = scope;
    while let Some(arm) = current {
        current = chain.routes[arm.route].scope;
        chain_of.push(current);
    }
    chain_of
}

/// Whether two scopes never run together: they sit in different arms of one route.
pub(crate) fn exclusive(chain: &Chain, a: Option<ArmRef>, b: Option<ArmRef>) -> bool {
    let a = ancestors(chain, a);
    let b = ancestors(chain, b);
    a.iter().flatten().any(|x| {
        b.iter()
            .flatten()
            .any(|y| x.route == y.route && x.arm != y.arm)
    })
}

#[cfg(test)]
mod tests;
