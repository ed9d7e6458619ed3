//! Boosted trees: fitted with the `forust-ml` gradient-boosting crate (log
//! loss, histogram splits), then copied into mora's own tree format so that the
//! model file and the scoring path depend on nothing but the trees themselves.

use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use forust_ml::sampler::SampleMethod;
use forust_ml::{GradientBooster, Matrix};

use super::TrainError;
use super::replay::Sample;
use crate::features::FEATURE_COUNT;
use crate::models::trees::{Node, Split, Tree, TreeEnsemble};

/// How the trees are grown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoostConfig {
    /// Most trees to grow; fewer are kept when the validation loss stops
    /// improving.
    pub trees: usize,
    /// Share of debtors set aside from the training set to decide how many
    /// trees to keep (never the evaluation set).
    pub validation_share: f64,
    /// Growing stops after this many trees without a better validation loss.
    pub early_stopping_rounds: usize,
    /// Shrinkage applied to every tree's output.
    pub learning_rate: f32,
    /// Depth limit of each tree.
    pub max_depth: usize,
    /// Smallest sum of hessians (≈ p(1 − p) per row) a leaf may hold.
    pub min_leaf_weight: f32,
    /// L2 penalty on leaf values.
    pub l2: f32,
    /// Share of rows each tree is grown on (1 = all).
    pub subsample: f32,
    /// Share of features each tree may split on (1 = all).
    pub colsample: f64,
    /// Seed of the row sampling, for reproducible models.
    pub seed: u64,
}

impl Default for BoostConfig {
    fn default() -> Self {
        BoostConfig {
            trees: 1_000,
            validation_share: 0.15,
            early_stopping_rounds: 50,
            learning_rate: 0.05,
            max_depth: 4,
            min_leaf_weight: 10.0,
            l2: 1.0,
            subsample: 0.8,
            colsample: 1.0,
            seed: 0,
        }
    }
}

/// Rows of `samples` as a column-major matrix, forust's layout.
fn column_major(samples: &[&Sample]) -> Vec<f64> {
    let mut data = Vec::with_capacity(samples.len() * FEATURE_COUNT);
    for feature in 0..FEATURE_COUNT {
        data.extend(samples.iter().map(|s| s.features.values()[feature]));
    }
    data
}

fn outcomes(samples: &[&Sample]) -> Vec<f64> {
    samples
        .iter()
        .map(|s| f64::from(u8::from(s.is_paid)))
        .collect()
}

/// Whether a sample's debtor belongs to the validation set: a fixed hash of
/// the debtor id, so that all of a debtor's decisions fall on one side.
fn is_validation(sample: &Sample, share: f64) -> bool {
    let hash = xxhash_rust::xxh3::xxh3_64(sample.debtor_id.as_bytes());
    (hash % 10_000) as f64 / 10_000.0 < share
}

/// Grows trees on most of `samples` while the rest decide when to stop, then,
/// with that many trees, grows them again on all of `samples`, so that no
/// training row is left out of the final model.
fn fit(samples: &[&Sample], config: &BoostConfig) -> Result<GradientBooster, TrainError> {
    let booster = fit_on(samples, config, config.validation_share)?;
    if config.validation_share <= 0.0 {
        return Ok(booster);
    }
    let kept = booster
        .prediction_iteration
        .unwrap_or(booster.trees.len())
        .min(booster.trees.len());
    let all = BoostConfig {
        trees: kept.max(1),
        ..*config
    };
    fit_on(samples, &all, 0.0)
}

/// Grows up to `config.trees` trees on `samples` but the `validation_share`
/// set aside to stop early.
fn fit_on(
    samples: &[&Sample],
    config: &BoostConfig,
    validation_share: f64,
) -> Result<GradientBooster, TrainError> {
    let (validation, training): (Vec<&Sample>, Vec<&Sample>) = samples
        .iter()
        .partition(|s| is_validation(s, validation_share));
    let data = column_major(&training);
    let matrix = Matrix::new(&data, training.len(), FEATURE_COUNT);
    let training_outcomes = outcomes(&training);
    let validation_data = column_major(&validation);
    let validation_outcomes = outcomes(&validation);
    let validation_weights = vec![1.0; validation.len()];
    let stopping = (!validation.is_empty()).then(|| {
        vec![(
            Matrix::new(&validation_data, validation.len(), FEATURE_COUNT),
            validation_outcomes.as_slice(),
            validation_weights.as_slice(),
        )]
    });
    let sampling = if config.subsample < 1.0 {
        SampleMethod::Random
    } else {
        SampleMethod::None
    };
    let mut booster = GradientBooster::default()
        .set_objective_type(ObjectiveType::LogLoss)
        .set_iterations(config.trees)
        .set_learning_rate(config.learning_rate)
        .set_max_depth(config.max_depth)
        .set_min_leaf_weight(config.min_leaf_weight)
        .set_l2(config.l2)
        .set_subsample(config.subsample)
        .set_colsample_bytree(config.colsample)
        .set_sample_method(sampling)
        .set_seed(config.seed)
        .set_initialize_base_score(true)
        .set_evaluation_metric(Some(Metric::LogLoss))
        .set_early_stopping_rounds(stopping.is_some().then_some(config.early_stopping_rounds));
    booster
        .fit_unweighted(&matrix, &training_outcomes, stopping)
        .map_err(|e| TrainError::Fit(e.to_string()))?;
    Ok(booster)
}

/// One of forust's trees with nodes renumbered in depth-first order, so that
/// children always follow their parent.
fn convert_tree(tree: &forust_ml::tree::Tree) -> Result<Tree, TrainError> {
    let nodes = &tree.nodes;
    let missing = |num| TrainError::Fit(format!("a fitted tree lacks its node {num}"));
    let mut order = Vec::with_capacity(nodes.len());
    let mut stack = vec![0usize];
    while let Some(num) = stack.pop() {
        let node = nodes.get(num).ok_or_else(|| missing(num))?;
        if order.len() > nodes.len() {
            return Err(TrainError::Fit("a fitted tree has a cycle".into()));
        }
        order.push(num);
        if !node.is_leaf {
            stack.push(node.right_child);
            stack.push(node.left_child);
        }
    }
    let mut position = vec![usize::MAX; nodes.len()];
    for (i, num) in order.iter().enumerate() {
        position[*num] = i;
    }
    let tree_nodes = order
        .iter()
        .map(|num| {
            let node = &nodes[*num];
            Node {
                value: f64::from(node.weight_value),
                split: (!node.is_leaf).then(|| Split {
                    feature: node.split_feature,
                    threshold: node.split_value,
                    left: position[node.left_child],
                    right: position[node.right_child],
                }),
            }
        })
        .collect();
    Ok(Tree { nodes: tree_nodes })
}

/// Fits boosted trees on `samples` (label: paid) and returns them in mora's
/// tree format.
pub fn fit_boosted_trees(
    samples: &[&Sample],
    config: &BoostConfig,
) -> Result<TreeEnsemble, TrainError> {
    let booster = fit(samples, config)?;
    let kept = booster
        .prediction_iteration
        .unwrap_or(booster.trees.len())
        .min(booster.trees.len());
    let trees = booster.trees[..kept]
        .iter()
        .map(convert_tree)
        .collect::<Result<Vec<_>, _>>()?;
    if trees.is_empty() {
        return Err(TrainError::Fit("boosting grew no tree".into()));
    }
    Ok(TreeEnsemble {
        base_score: booster.base_score,
        trees,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::UnixTime;
    use crate::features::FeatureVector;
    use crate::models::trees::CompiledTrees;
    use rand::{Rng, SeedableRng};

    /// Samples whose label depends on two features, with noise.
    fn samples(n: usize) -> Vec<Sample> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        (0..n)
            .map(|i| {
                let values: [f64; FEATURE_COUNT] = std::array::from_fn(|_| rng.r#gen::<f64>());
                let signal = 2.0 * values[0] - 3.0 * (values[5] - 0.5).abs();
                Sample {
                    debtor_id: format!("d{i}"),
                    at: UnixTime(0),
                    features: FeatureVector::from_values(values),
                    overdue_minor: 1,
                    is_paid: signal + rng.r#gen::<f64>() > 1.0,
                }
            })
            .collect()
    }

    #[test]
    fn converted_trees_predict_what_the_booster_predicts() {
        let samples = samples(2_000);
        let rows: Vec<&Sample> = samples.iter().collect();
        let config = BoostConfig::default();
        let booster = fit(&rows, &config).unwrap();
        let ensemble = fit_boosted_trees(&rows, &config).unwrap();
        let compiled = CompiledTrees::new(&ensemble).unwrap();
        assert!(compiled.tree_count() > 1);

        let data = column_major(&rows);
        let theirs = booster.predict(&Matrix::new(&data, rows.len(), FEATURE_COUNT), false);
        for (sample, expected) in rows.iter().zip(theirs) {
            let (ours, contributions) = compiled.predict(&sample.features);
            assert!((ours - expected).abs() < 1e-9, "{ours} vs {expected}");
            assert!(contributions.iter().all(|c| c.is_finite()));
        }
    }
}
