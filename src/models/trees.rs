//! Boosted decision trees: the form a model file stores them in, and the
//! compiled form the scoring path walks without allocating.
//!
//! Every tree is a list of nodes with the root first. A node with a split
//! sends a feature value below its threshold to `left` and any other value to
//! `right`; the ensemble's log-odds is `base_score` plus the value of the leaf
//! each tree reaches. Every node also carries a value (for a split node, what
//! it would output as a leaf), which is what attributes a prediction to
//! features: along the path of each tree, a split on feature *f* contributes
//! the change from the node's value to its child's.

use serde::{Deserialize, Serialize};

use super::ModelError;
use crate::features::{FEATURE_COUNT, FeatureVector};

/// A tree ensemble as a model file stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeEnsemble {
    /// Log-odds before any tree is added.
    pub base_score: f64,
    pub trees: Vec<Tree>,
}

/// One tree; `nodes[0]` is its root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// A leaf (no split) or a split node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Log-odds output of a leaf; for a split node, its output as a leaf.
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
}

/// Where a split node sends a feature vector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// Position of the feature in the schema.
    pub feature: usize,
    /// Values below go left; all others (including equal) go right.
    pub threshold: f64,
    /// Index of the left child within the tree; greater than this node's.
    pub left: usize,
    /// Index of the right child within the tree; greater than this node's.
    pub right: usize,
}

/// A node of all trees laid out in one array; the children of a split node
/// are adjacent, so that choosing one is arithmetic rather than a branch.
///
/// A leaf "splits" on feature 0 at −∞ into itself: every value (NaN
/// included) goes to `left + 1`, which is the leaf's own index. Walking a
/// fixed number of steps from the root therefore ends on the tree's leaf
/// whatever its depth, and the extra steps add nothing to a contribution.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CompiledNode {
    threshold: f64,
    value: f64,
    feature: u16,
    /// Absolute index of the left child; the right child follows it. For a
    /// leaf, its own index minus one (wrapping).
    left: u32,
}

/// An ensemble checked and flattened for scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledTrees {
    base_score: f64,
    /// `base_score` plus the value of every root: the log-odds that
    /// contributions are measured from.
    bias: f64,
    nodes: Box<[CompiledNode]>,
    roots: Box<[u32]>,
    /// Steps from a root to the deepest leaf of any tree.
    depth: usize,
}

fn invalid(reason: String) -> ModelError {
    ModelError::Invalid {
        field: "model.trees",
        reason,
    }
}

/// Checks one tree: every node finite, every split on a feature of the
/// schema, every child after its parent, within the tree, and the child of
/// exactly one parent.
fn check_tree(t: usize, tree: &Tree) -> Result<(), ModelError> {
    if tree.nodes.is_empty() {
        return Err(invalid(format!("tree {t} has no nodes")));
    }
    let mut has_parent = vec![false; tree.nodes.len()];
    for (i, node) in tree.nodes.iter().enumerate() {
        let at = |what: &str| invalid(format!("tree {t}, node {i}: {what}"));
        if !node.value.is_finite() {
            return Err(at("value is not finite"));
        }
        let Some(split) = node.split else { continue };
        if split.feature >= FEATURE_COUNT {
            return Err(at(&format!(
                "feature {} is outside the schema's {FEATURE_COUNT}",
                split.feature
            )));
        }
        if split.threshold.is_nan() {
            return Err(at("threshold is not a number"));
        }
        if split.left == split.right {
            return Err(at("both children are the same node"));
        }
        for child in [split.left, split.right] {
            if child <= i || child >= tree.nodes.len() {
                return Err(at(&format!(
                    "child {child} must come after the node and within the tree's {} nodes",
                    tree.nodes.len()
                )));
            }
            if std::mem::replace(&mut has_parent[child], true) {
                return Err(at(&format!("child {child} already has a parent")));
            }
        }
    }
    Ok(())
}

impl CompiledTrees {
    /// Checks that every tree is well formed and flattens the ensemble, each
    /// tree breadth first with siblings side by side.
    pub fn new(ensemble: &TreeEnsemble) -> Result<CompiledTrees, ModelError> {
        if !ensemble.base_score.is_finite() {
            return Err(ModelError::Invalid {
                field: "model.base_score",
                reason: "is not finite".into(),
            });
        }
        if ensemble.trees.is_empty() {
            return Err(invalid("has no trees".into()));
        }
        let mut nodes: Vec<CompiledNode> = Vec::new();
        let mut roots = Vec::with_capacity(ensemble.trees.len());
        let mut bias = ensemble.base_score;
        let mut depth = 0;
        for (t, tree) in ensemble.trees.iter().enumerate() {
            check_tree(t, tree)?;
            bias += tree.nodes[0].value;
            roots.push(index(nodes.len())?);
            // (position in the tree, position in `nodes`, depth), breadth first.
            let root_at = nodes.len();
            let mut queue = std::collections::VecDeque::from([(0usize, root_at, 0usize)]);
            nodes.push(compiled_leaf(&tree.nodes[0], root_at)?);
            while let Some((i, at, level)) = queue.pop_front() {
                let Some(split) = tree.nodes[i].split else {
                    depth = depth.max(level);
                    continue;
                };
                let left = nodes.len();
                nodes[at].feature = split.feature as u16;
                nodes[at].threshold = split.threshold;
                nodes[at].left = index(left)?;
                for (k, child) in [split.left, split.right].into_iter().enumerate() {
                    nodes.push(compiled_leaf(&tree.nodes[child], left + k)?);
                    queue.push_back((child, left + k, level + 1));
                }
            }
        }
        Ok(CompiledTrees {
            base_score: ensemble.base_score,
            bias,
            nodes: nodes.into_boxed_slice(),
            roots: roots.into_boxed_slice(),
            depth,
        })
    }

    /// The log-odds for `features`, with the contribution of each feature:
    /// the log-odds equals the bias (base score plus every root's value) plus
    /// the sum of contributions.
    pub fn predict(&self, features: &FeatureVector) -> (f64, [f64; FEATURE_COUNT]) {
        let values = features.values();
        let mut contributions = [0.0; FEATURE_COUNT];
        let mut logit = self.base_score;
        for &root in &*self.roots {
            let mut at = root as usize;
            for _ in 0..self.depth {
                let node = &self.nodes[at];
                let f = usize::from(node.feature);
                // NaN compares false and goes right, like any value ≥ threshold.
                let goes_left = values[f] < node.threshold;
                let next = node.left.wrapping_add(u32::from(!goes_left)) as usize;
                contributions[f] += self.nodes[next].value - node.value;
                at = next;
            }
            logit += self.nodes[at].value;
        }
        (logit, contributions)
    }

    /// The log-odds that contributions are measured from.
    pub fn bias(&self) -> f64 {
        self.bias
    }

    /// Number of trees.
    pub fn tree_count(&self) -> usize {
        self.roots.len()
    }
}

/// A node at `at` as a leaf that leads to itself; a split node gets its split
/// when its children are placed.
fn compiled_leaf(node: &Node, at: usize) -> Result<CompiledNode, ModelError> {
    Ok(CompiledNode {
        threshold: f64::NEG_INFINITY,
        value: node.value,
        feature: 0,
        left: index(at)?.wrapping_sub(1),
    })
}

fn index(i: usize) -> Result<u32, ModelError> {
    u32::try_from(i).map_err(|_| invalid("has more than 2^32 nodes".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(value: f64) -> Node {
        Node { value, split: None }
    }

    fn split(value: f64, feature: usize, threshold: f64, left: usize, right: usize) -> Node {
        Node {
            value,
            split: Some(Split {
                feature,
                threshold,
                left,
                right,
            }),
        }
    }

    fn stump() -> TreeEnsemble {
        TreeEnsemble {
            base_score: -0.5,
            trees: vec![
                Tree {
                    nodes: vec![split(0.1, 0, 10.0, 1, 2), leaf(-1.0), leaf(1.0)],
                },
                Tree {
                    nodes: vec![
                        split(0.0, 3, 0.5, 1, 2),
                        leaf(0.25),
                        split(-0.1, 0, 20.0, 3, 4),
                        leaf(-0.3),
                        leaf(0.4),
                    ],
                },
            ],
        }
    }

    #[test]
    fn the_log_odds_is_the_base_plus_the_leaves_reached_and_contributions_add_up() {
        let trees = CompiledTrees::new(&stump()).unwrap();
        let mut x = [0.0; FEATURE_COUNT];
        x[0] = 15.0;
        x[3] = 0.7;
        let (logit, contributions) = trees.predict(&FeatureVector::from_values(x));
        // Tree 1: 15 ≥ 10 → right (1.0). Tree 2: 0.7 ≥ 0.5 → right, 15 < 20 → left (−0.3).
        assert!((logit - (-0.5 + 1.0 - 0.3)).abs() < 1e-12, "{logit}");
        assert_eq!(trees.bias(), -0.5 + 0.1 + 0.0);
        let total: f64 = contributions.iter().sum();
        assert!((trees.bias() + total - logit).abs() < 1e-12);
        assert!((contributions[0] - ((1.0 - 0.1) + (-0.3 + 0.1))).abs() < 1e-12);
        assert!((contributions[3] - (-0.1)).abs() < 1e-12);
    }

    #[test]
    fn a_value_equal_to_the_threshold_goes_right() {
        let trees = CompiledTrees::new(&stump()).unwrap();
        let mut x = [0.0; FEATURE_COUNT];
        x[0] = 10.0;
        let (logit, _) = trees.predict(&FeatureVector::from_values(x));
        assert!((logit - (-0.5 + 1.0 + 0.25)).abs() < 1e-12);
    }

    #[test]
    fn malformed_trees_are_refused_with_the_place_named() {
        type Breakage = fn(&mut TreeEnsemble);
        let cases: [(Breakage, &str); 6] = [
            (
                |e| e.trees[0].nodes[0].split.as_mut().unwrap().left = 0,
                "tree 0, node 0: child 0 must come after the node",
            ),
            (
                |e| e.trees[1].nodes[2].split.as_mut().unwrap().right = 9,
                "tree 1, node 2: child 9",
            ),
            (
                |e| e.trees[1].nodes[0].split.as_mut().unwrap().feature = FEATURE_COUNT,
                "tree 1, node 0: feature",
            ),
            (
                |e| e.trees[0].nodes[1].value = f64::NAN,
                "value is not finite",
            ),
            (
                |e| e.trees[1].nodes[0].split.as_mut().unwrap().right = 3,
                "tree 1, node 2: child 3 already has a parent",
            ),
            (|e| e.trees.clear(), "has no trees"),
        ];
        for (break_it, expected) in cases {
            let mut ensemble = stump();
            break_it(&mut ensemble);
            let message = CompiledTrees::new(&ensemble).unwrap_err().to_string();
            assert!(message.starts_with("model.trees"), "{message}");
            assert!(message.contains(expected), "{message} lacks {expected:?}");
        }
    }
}
