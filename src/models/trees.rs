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

/// Marks a leaf in [`CompiledNode::feature`].
const LEAF: u16 = u16::MAX;

/// A node of all trees laid out in one array.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CompiledNode {
    threshold: f64,
    value: f64,
    /// [`LEAF`] for leaves.
    feature: u16,
    /// Absolute indices into the node array.
    left: u32,
    right: u32,
}

/// An ensemble checked and flattened for scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledTrees {
    /// `base_score` plus the value of every root: the log-odds that
    /// contributions are measured from.
    bias: f64,
    nodes: Box<[CompiledNode]>,
    roots: Box<[u32]>,
}

fn invalid(reason: String) -> ModelError {
    ModelError::Invalid {
        field: "model.trees",
        reason,
    }
}

impl CompiledTrees {
    /// Checks that every tree is well formed (children after their parent and
    /// within the tree, features of the schema, finite numbers) and flattens
    /// the ensemble.
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
        let mut nodes = Vec::new();
        let mut roots = Vec::with_capacity(ensemble.trees.len());
        let mut bias = ensemble.base_score;
        for (t, tree) in ensemble.trees.iter().enumerate() {
            let Some(root) = tree.nodes.first() else {
                return Err(invalid(format!("tree {t} has no nodes")));
            };
            bias += root.value;
            let offset = nodes.len();
            roots.push(index(offset)?);
            for (i, node) in tree.nodes.iter().enumerate() {
                let at = |what: &str| invalid(format!("tree {t}, node {i}: {what}"));
                if !node.value.is_finite() {
                    return Err(at("value is not finite"));
                }
                let compiled = match node.split {
                    None => CompiledNode {
                        threshold: 0.0,
                        value: node.value,
                        feature: LEAF,
                        left: 0,
                        right: 0,
                    },
                    Some(split) => {
                        if split.feature >= FEATURE_COUNT {
                            return Err(at(&format!(
                                "feature {} is outside the schema's {FEATURE_COUNT}",
                                split.feature
                            )));
                        }
                        if split.threshold.is_nan() {
                            return Err(at("threshold is not a number"));
                        }
                        for child in [split.left, split.right] {
                            if child <= i || child >= tree.nodes.len() {
                                return Err(at(&format!(
                                    "child {child} must come after the node and within the \
                                     tree's {} nodes",
                                    tree.nodes.len()
                                )));
                            }
                        }
                        CompiledNode {
                            threshold: split.threshold,
                            value: node.value,
                            feature: split.feature as u16,
                            left: index(offset + split.left)?,
                            right: index(offset + split.right)?,
                        }
                    }
                };
                nodes.push(compiled);
            }
        }
        Ok(CompiledTrees {
            bias,
            nodes: nodes.into_boxed_slice(),
            roots: roots.into_boxed_slice(),
        })
    }

    /// The log-odds for `features`, with the contribution of each feature:
    /// the log-odds equals `bias` plus the sum of contributions.
    pub fn predict(&self, features: &FeatureVector) -> (f64, [f64; FEATURE_COUNT]) {
        let values = features.values();
        let mut contributions = [0.0; FEATURE_COUNT];
        let mut logit = self.bias;
        for &root in &*self.roots {
            let mut node = self.nodes[root as usize];
            while node.feature != LEAF {
                let f = usize::from(node.feature);
                let next = if values[f] < node.threshold {
                    node.left
                } else {
                    node.right
                };
                let child = self.nodes[next as usize];
                contributions[f] += child.value - node.value;
                logit += child.value - node.value;
                node = child;
            }
        }
        (logit, contributions)
    }

    /// Number of trees.
    pub fn tree_count(&self) -> usize {
        self.roots.len()
    }
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
        let bias = -0.5 + 0.1 + 0.0;
        let total: f64 = contributions.iter().sum();
        assert!((bias + total - logit).abs() < 1e-12);
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
        let cases: [(Breakage, &str); 5] = [
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
