//! The step dependency graph and its ready-set queue, kept apart from the executor so that the
//! scheduling rules (critical path first, dependents of a failure skipped, dependents that
//! need only a step's outputs started once it publishes them) are plain data structures with
//! unit tests.

use std::collections::HashMap;

/// A problem with how steps declare their dependencies.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    #[error("step `{step}` depends on `{dep}`, which is not a step")]
    UnknownDependency { step: String, dep: String },
    #[error("step `{0}` is declared twice")]
    Duplicate(String),
    #[error("steps depend on each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

/// One node: a step name, what it depends on and its estimated duration (seconds).
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub deps: Vec<usize>,
    /// Parallel to `deps`: the dependency is needed only for the outputs it publishes
    /// before it ends (declared as `~name`), see [`ReadyQueue::release`].
    pub early: Vec<bool>,
    pub weight: u64,
}

/// Prefix of a dependency that is satisfied once the step has published its outputs
/// ([`crate::step::StepCtx::release`]), not only when it ends: the database needs the
/// network's subnets and security groups, not its NAT gateways.
pub const OUTPUTS_ONLY: char = '~';

/// An acyclic graph of steps.
#[derive(Debug, Clone)]
pub struct Graph {
    nodes: Vec<Node>,
}

impl Graph {
    /// Builds the graph from `(name, dependencies, estimated seconds)`, rejecting unknown
    /// dependencies, duplicates and cycles.
    pub fn new<S: AsRef<str>>(items: &[(S, Vec<S>, u64)]) -> Result<Graph, GraphError> {
        let mut index = HashMap::new();
        for (i, (name, _, _)) in items.iter().enumerate() {
            if index.insert(name.as_ref().to_string(), i).is_some() {
                return Err(GraphError::Duplicate(name.as_ref().to_string()));
            }
        }
        let mut nodes = Vec::with_capacity(items.len());
        for (name, deps, weight) in items {
            let early: Vec<bool> = deps
                .iter()
                .map(|d| d.as_ref().starts_with(OUTPUTS_ONLY))
                .collect();
            let deps = deps
                .iter()
                .map(|d| {
                    let d = d.as_ref().trim_start_matches(OUTPUTS_ONLY);
                    index
                        .get(d)
                        .copied()
                        .ok_or_else(|| GraphError::UnknownDependency {
                            step: name.as_ref().to_string(),
                            dep: d.to_string(),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            nodes.push(Node {
                name: name.as_ref().to_string(),
                deps,
                early,
                weight: *weight,
            });
        }
        let g = Graph { nodes };
        g.check_acyclic()?;
        Ok(g)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// For each node, the nodes that depend on it directly.
    fn dependents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &d in &n.deps {
                out[d].push(i);
            }
        }
        out
    }

    /// Every node that depends on `i`, directly or not, in index order.
    pub fn downstream(&self, i: usize) -> Vec<usize> {
        let dependents = self.dependents();
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = dependents[i].clone();
        while let Some(d) = stack.pop() {
            if !std::mem::replace(&mut seen[d], true) {
                stack.extend(dependents[d].iter().copied());
            }
        }
        (0..self.nodes.len()).filter(|&d| seen[d]).collect()
    }

    /// The same nodes with no edges: all ready at once (`plan`'s first pass, see
    /// [`crate::engine::plan`]).
    pub fn without_edges(&self) -> Graph {
        Graph {
            nodes: self
                .nodes
                .iter()
                .map(|n| Node {
                    deps: Vec::new(),
                    early: Vec::new(),
                    ..n.clone()
                })
                .collect(),
        }
    }

    fn check_acyclic(&self) -> Result<(), GraphError> {
        // Depth-first search with three colours; a grey node reached again closes a cycle.
        #[derive(Clone, Copy, PartialEq)]
        enum Colour {
            White,
            Grey,
            Black,
        }
        fn visit(
            g: &Graph,
            i: usize,
            colour: &mut [Colour],
            path: &mut Vec<usize>,
        ) -> Result<(), GraphError> {
            colour[i] = Colour::Grey;
            path.push(i);
            for &d in &g.nodes[i].deps {
                match colour[d] {
                    Colour::Grey => {
                        let start = path.iter().position(|&p| p == d).expect("on path");
                        let mut cycle: Vec<String> = path[start..]
                            .iter()
                            .map(|&p| g.nodes[p].name.clone())
                            .collect();
                        cycle.push(g.nodes[d].name.clone());
                        return Err(GraphError::Cycle(cycle));
                    }
                    Colour::White => visit(g, d, colour, path)?,
                    Colour::Black => {}
                }
            }
            path.pop();
            colour[i] = Colour::Black;
            Ok(())
        }
        let mut colour = vec![Colour::White; self.nodes.len()];
        for i in 0..self.nodes.len() {
            if colour[i] == Colour::White {
                visit(self, i, &mut colour, &mut Vec::new())?;
            }
        }
        Ok(())
    }

    /// Length (sum of weights) of the longest chain that starts at each node and runs through
    /// its dependents: the work that cannot start before this node ends.
    pub fn critical_path(&self) -> Vec<u64> {
        let dependents = self.dependents();
        let mut memo: Vec<Option<u64>> = vec![None; self.nodes.len()];
        fn longest(
            g: &Graph,
            dependents: &[Vec<usize>],
            memo: &mut [Option<u64>],
            i: usize,
        ) -> u64 {
            if let Some(v) = memo[i] {
                return v;
            }
            let tail = dependents[i]
                .iter()
                .map(|&d| longest(g, dependents, memo, d))
                .max()
                .unwrap_or(0);
            let v = g.nodes[i].weight + tail;
            memo[i] = Some(v);
            v
        }
        (0..self.nodes.len())
            .map(|i| longest(self, &dependents, &mut memo, i))
            .collect()
    }
}

/// Where a node is in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Waiting,
    Running,
    Done,
    Failed,
    /// Not run because something it depends on failed or was skipped.
    Skipped,
}

/// The ready set: which steps may start now, most urgent first.
#[derive(Debug)]
pub struct ReadyQueue {
    graph: Graph,
    dependents: Vec<Vec<usize>>,
    priority: Vec<u64>,
    pending_deps: Vec<usize>,
    state: Vec<NodeState>,
    /// Running nodes that have published their outputs.
    released: Vec<bool>,
}

impl ReadyQueue {
    pub fn new(graph: Graph) -> ReadyQueue {
        let dependents = graph.dependents();
        let priority = graph.critical_path();
        let pending_deps = graph.nodes.iter().map(|n| n.deps.len()).collect();
        let state = vec![NodeState::Waiting; graph.len()];
        let released = vec![false; graph.len()];
        ReadyQueue {
            graph,
            dependents,
            priority,
            pending_deps,
            state,
            released,
        }
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn state(&self, i: usize) -> NodeState {
        self.state[i]
    }

    /// Takes the ready node with the longest remaining chain (ties: declaration order).
    pub fn pop(&mut self) -> Option<usize> {
        let best = (0..self.graph.len())
            .filter(|&i| self.state[i] == NodeState::Waiting && self.pending_deps[i] == 0)
            .max_by(|&a, &b| self.priority[a].cmp(&self.priority[b]).then(b.cmp(&a)))?;
        self.state[best] = NodeState::Running;
        Some(best)
    }

    /// Whether `d`'s dependency on `i` needs only `i`'s outputs.
    fn is_early(&self, d: usize, i: usize) -> bool {
        let n = &self.graph.nodes[d];
        n.deps
            .iter()
            .zip(&n.early)
            .any(|(&x, &early)| x == i && early)
    }

    /// A running node has published its outputs: the dependents that need only those may
    /// start. (Once: a second release, or the finish after it, does not count again.)
    pub fn release(&mut self, i: usize) {
        if self.state[i] != NodeState::Running || self.released[i] {
            return;
        }
        self.released[i] = true;
        for d in self.dependents[i].clone() {
            if self.is_early(d, i) {
                self.pending_deps[d] -= 1;
            }
        }
    }

    /// Marks a running node finished. On failure every node that depends on it, directly or
    /// not, is skipped; the skipped ones are returned.
    pub fn finish(&mut self, i: usize, ok: bool) -> Vec<usize> {
        assert_eq!(
            self.state[i],
            NodeState::Running,
            "finish of a node not running"
        );
        if ok {
            self.state[i] = NodeState::Done;
            for d in self.dependents[i].clone() {
                if !(self.released[i] && self.is_early(d, i)) {
                    self.pending_deps[d] -= 1;
                }
            }
            return Vec::new();
        }
        self.state[i] = NodeState::Failed;
        let mut skipped = Vec::new();
        let mut stack = self.dependents[i].clone();
        while let Some(d) = stack.pop() {
            if self.state[d] == NodeState::Waiting {
                self.state[d] = NodeState::Skipped;
                skipped.push(d);
                stack.extend(self.dependents[d].iter().copied());
            }
        }
        skipped.sort_unstable();
        skipped
    }

    /// Nodes that can still start (not done, failed, skipped or running).
    pub fn waiting(&self) -> Vec<usize> {
        (0..self.graph.len())
            .filter(|&i| self.state[i] == NodeState::Waiting)
            .collect()
    }

    /// True when no node is waiting or running.
    pub fn is_finished(&self) -> bool {
        !self
            .state
            .iter()
            .any(|s| matches!(s, NodeState::Waiting | NodeState::Running))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(items: &[(&str, &[&str], u64)]) -> Result<Graph, GraphError> {
        let v: Vec<(&str, Vec<&str>, u64)> =
            items.iter().map(|(n, d, w)| (*n, d.to_vec(), *w)).collect();
        Graph::new(&v)
    }

    #[test]
    fn downstream_is_transitive_and_without_edges_frees_every_node() {
        let graph = g(&[
            ("a", &[], 1),
            ("b", &["a"], 1),
            ("c", &["~b"], 1),
            ("d", &[], 1),
        ])
        .unwrap();
        assert_eq!(graph.downstream(0), vec![1, 2]);
        assert_eq!(graph.downstream(1), vec![2]);
        assert!(graph.downstream(3).is_empty());
        let mut q = ReadyQueue::new(graph.without_edges());
        let mut started = Vec::new();
        while let Some(i) = q.pop() {
            started.push(i);
        }
        started.sort_unstable();
        assert_eq!(started, vec![0, 1, 2, 3], "nothing waits on anything");
    }

    fn drain(q: &mut ReadyQueue) -> Vec<String> {
        let mut order = Vec::new();
        while let Some(i) = q.pop() {
            order.push(q.graph().name(i).to_string());
            q.finish(i, true);
        }
        order
    }

    #[test]
    fn dependencies_come_first() {
        let graph = g(&[
            ("alarms", &["alb", "database"], 1),
            ("alb", &["network"], 1),
            ("database", &["network", "kms"], 1),
            ("network", &[], 1),
            ("kms", &[], 1),
        ])
        .unwrap();
        let order = drain(&mut ReadyQueue::new(graph));
        let pos = |n: &str| order.iter().position(|o| o == n).unwrap();
        assert!(pos("network") < pos("alb"));
        assert!(pos("kms") < pos("database"));
        assert!(pos("alb") < pos("alarms") && pos("database") < pos("alarms"));
        assert_eq!(order.len(), 5);
    }

    #[test]
    fn longest_chain_starts_first() {
        // kms leads to a 600 s database; network only to a 10 s step: kms must start first
        // even though network is declared first.
        let graph = g(&[
            ("network", &[], 100),
            ("small", &["network"], 10),
            ("kms", &[], 5),
            ("database", &["kms"], 600),
        ])
        .unwrap();
        assert_eq!(graph.critical_path(), vec![110, 10, 605, 600]);
        let mut q = ReadyQueue::new(graph);
        let first = q.pop().unwrap();
        assert_eq!(q.graph().name(first), "kms");
        let second = q.pop().unwrap();
        assert_eq!(q.graph().name(second), "network");
    }

    #[test]
    fn cycle_is_rejected_naming_the_steps() {
        let err = g(&[("a", &["b"], 1), ("b", &["c"], 1), ("c", &["a"], 1)]).unwrap_err();
        match &err {
            GraphError::Cycle(names) => {
                assert_eq!(names.first(), names.last());
                for n in ["a", "b", "c"] {
                    assert!(names.iter().any(|x| x == n));
                }
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains(" -> "));
        assert!(matches!(
            g(&[("a", &["a"], 1)]).unwrap_err(),
            GraphError::Cycle(_)
        ));
    }

    #[test]
    fn unknown_and_duplicate_steps_are_rejected() {
        assert_eq!(
            g(&[("a", &["nope"], 1)]).unwrap_err(),
            GraphError::UnknownDependency {
                step: "a".into(),
                dep: "nope".into()
            }
        );
        assert_eq!(
            g(&[("a", &[], 1), ("a", &[], 1)]).unwrap_err(),
            GraphError::Duplicate("a".into())
        );
    }

    #[test]
    fn failure_skips_transitive_dependents_only() {
        let graph = g(&[
            ("network", &[], 1),
            ("kms", &[], 1),
            ("database", &["network", "kms"], 1),
            ("alarms", &["database"], 1),
            ("sessions", &["kms"], 1),
        ])
        .unwrap();
        let mut q = ReadyQueue::new(graph);
        let mut started = Vec::new();
        while let Some(i) = q.pop() {
            let name = q.graph().name(i).to_string();
            let skipped = q.finish(i, name != "network");
            if name == "network" {
                let names: Vec<_> = skipped.iter().map(|&s| q.graph().name(s)).collect();
                assert_eq!(names, vec!["database", "alarms"]);
            }
            started.push(name);
        }
        assert!(started.contains(&"kms".to_string()));
        assert!(started.contains(&"sessions".to_string()));
        assert!(!started.contains(&"database".to_string()));
        assert!(q.is_finished());
    }

    #[test]
    fn an_outputs_only_dependent_starts_at_the_release_and_is_counted_once() {
        let graph = g(&[
            ("network", &[], 1),
            ("database", &["~network"], 1),
            ("services", &["network", "database"], 1),
        ])
        .unwrap();
        let mut q = ReadyQueue::new(graph);
        let net = q.pop().unwrap();
        assert!(q.pop().is_none(), "nothing before the release");
        q.release(net);
        q.release(net);
        let db = q.pop().unwrap();
        assert_eq!(q.graph().name(db), "database");
        assert!(q.pop().is_none(), "services needs the network done");
        q.finish(net, true);
        assert!(q.pop().is_none(), "and the database done");
        q.finish(db, true);
        let services = q.pop().unwrap();
        assert_eq!(q.graph().name(services), "services");
    }

    #[test]
    fn nothing_is_ready_while_a_dependency_runs() {
        let graph = g(&[("a", &[], 1), ("b", &["a"], 1)]).unwrap();
        let mut q = ReadyQueue::new(graph);
        let a = q.pop().unwrap();
        assert!(q.pop().is_none());
        q.finish(a, true);
        assert!(q.pop().is_some());
    }
}
