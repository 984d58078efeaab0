//! The chain as a graph: who produces each key, who depends on whom, in which
//! order steps are polled, and where the cycles are.

use std::collections::{HashMap, HashSet};

use crate::ast::Chain;

/// Where a key comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Producer {
    /// Chain input number `n`.
    Input(usize),
    /// Step number `n`.
    Step(usize),
}

pub(crate) struct Graph {
    /// The first producer of each key (duplicates are reported by `valid`).
    pub(crate) producers: HashMap<String, Producer>,
    /// For each step, the steps it takes keys from (deduplicated).
    pub(crate) deps: Vec<Vec<usize>>,
    /// Steps in an order where each comes after the steps it depends on;
    /// steps caught in a cycle follow in declaration order.
    pub(crate) order: Vec<usize>,
    /// Keys some step takes.
    pub(crate) consumed: HashSet<String>,
}

impl Graph {
    pub(crate) fn build(chain: &Chain) -> Graph {
        let mut producers = HashMap::new();
        for (i, input) in chain.inputs.iter().enumerate() {
            producers
                .entry(input.key.to_string())
                .or_insert(Producer::Input(i));
        }
        for (i, step) in chain.steps.iter().enumerate() {
            producers
                .entry(step.key.to_string())
                .or_insert(Producer::Step(i));
        }
        let mut consumed = HashSet::new();
        let deps: Vec<Vec<usize>> = chain
            .steps
            .iter()
            .map(|step| {
                let mut deps = Vec::new();
                for arg in &step.args {
                    let key = arg.to_string();
                    if let Some(Producer::Step(j)) = producers.get(&key)
                        && !deps.contains(j)
                    {
                        deps.push(*j);
                    }
                    consumed.insert(key);
                }
                deps
            })
            .collect();
        let order = topological_order(&deps);
        Graph {
            producers,
            deps,
            order,
            consumed,
        }
    }

    /// Each cycle once, as a list of steps where each depends on the next and
    /// the last depends on the first.
    pub(crate) fn cycles(&self) -> Vec<Vec<usize>> {
        let n = self.deps.len();
        let sorted: HashSet<usize> = self.sorted_prefix().into_iter().collect();
        let mut reported = vec![false; n];
        let mut cycles = Vec::new();
        for start in 0..n {
            if sorted.contains(&start) || reported[start] {
                continue;
            }
            // Every unsorted step depends on some unsorted step; walk such
            // edges until a step repeats: the repeated stretch is a cycle.
            let mut path = vec![start];
            let mut position: HashMap<usize, usize> = HashMap::from([(start, 0)]);
            let mut current = start;
            while let Some(&next) = self.deps[current].iter().find(|d| !sorted.contains(d)) {
                if reported[next] {
                    break;
                }
                if let Some(&at) = position.get(&next) {
                    let cycle = path[at..].to_vec();
                    for &step in &cycle {
                        reported[step] = true;
                    }
                    cycles.push(cycle);
                    break;
                }
                position.insert(next, path.len());
                path.push(next);
                current = next;
            }
        }
        cycles
    }

    /// The steps Kahn's algorithm can order (those not in or behind a cycle).
    fn sorted_prefix(&self) -> Vec<usize> {
        kahn(&self.deps)
    }
}

fn kahn(deps: &[Vec<usize>]) -> Vec<usize> {
    let n = deps.len();
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (step, step_deps) in deps.iter().enumerate() {
        for &dep in step_deps {
            dependents[dep].push(step);
        }
    }
    let mut order = Vec::with_capacity(n);
    let mut ready: Vec<usize> = (0..n).filter(|&i| remaining[i] == 0).rev().collect();
    while let Some(step) = ready.pop() {
        order.push(step);
        for &dependent in dependents[step].iter().rev() {
            remaining[dependent] -= 1;
            if remaining[dependent] == 0 {
                ready.push(dependent);
            }
        }
    }
    order
}

fn topological_order(deps: &[Vec<usize>]) -> Vec<usize> {
    let mut order = kahn(deps);
    let placed: HashSet<usize> = order.iter().copied().collect();
    order.extend((0..deps.len()).filter(|i| !placed.contains(i)));
    order
}

#[cfg(test)]
mod tests {
    use super::{kahn, topological_order};

    #[test]
    fn orders_dependencies_first() {
        // 0 ← 1, 0 ← 2, {1,2} ← 3
        let deps = vec![vec![], vec![0], vec![0], vec![1, 2]];
        let order = topological_order(&deps);
        let pos = |s: usize| order.iter().position(|&x| x == s).unwrap_or(usize::MAX);
        assert!(pos(0) < pos(1) && pos(0) < pos(2) && pos(1) < pos(3) && pos(2) < pos(3));
    }

    #[test]
    fn leaves_cycles_out_of_kahn() {
        let deps = vec![vec![1], vec![0], vec![]];
        assert_eq!(kahn(&deps), vec![2]);
        assert_eq!(topological_order(&deps).len(), 3);
    }
}
