//! How good a probability model is on held-out samples.

use std::collections::BTreeMap;

/// Evaluation of predicted probabilities against outcomes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Area under the ROC curve (ties count one half).
    pub auc: f64,
    /// Mean squared error of the probabilities.
    pub brier: f64,
    /// Mean negative log-likelihood, probabilities clipped to [1e-15, 1 − 1e-15].
    pub log_loss: f64,
    /// Share of positive outcomes.
    pub base_rate: f64,
    pub rows: usize,
}

impl Evaluation {
    /// Evaluates `predicted` probabilities against `actual` outcomes.
    pub fn new(predicted: &[f64], actual: &[bool]) -> Evaluation {
        assert_eq!(predicted.len(), actual.len(), "one prediction per outcome");
        let rows = predicted.len();
        let n = rows.max(1) as f64;
        let brier = predicted
            .iter()
            .zip(actual)
            .map(|(p, y)| (p - f64::from(u8::from(*y))).powi(2))
            .sum::<f64>()
            / n;
        let log_loss = predicted
            .iter()
            .zip(actual)
            .map(|(p, y)| {
                let p = p.clamp(1e-15, 1.0 - 1e-15);
                if *y { -p.ln() } else { -(1.0 - p).ln() }
            })
            .sum::<f64>()
            / n;
        let positives = actual.iter().filter(|y| **y).count();
        Evaluation {
            auc: auc(predicted, actual),
            brier,
            log_loss,
            base_rate: positives as f64 / n,
            rows,
        }
    }

    /// The figures as the model file's `metrics` map.
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("auc".to_owned(), self.auc),
            ("brier".to_owned(), self.brier),
            ("log_loss".to_owned(), self.log_loss),
            ("base_rate".to_owned(), self.base_rate),
            ("rows".to_owned(), self.rows as f64),
        ])
    }
}

/// ROC AUC by ranks (the Mann–Whitney statistic), with tied scores averaged.
fn auc(predicted: &[f64], actual: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..predicted.len()).collect();
    order.sort_by(|a, b| predicted[*a].total_cmp(&predicted[*b]));
    let positives = actual.iter().filter(|y| **y).count() as f64;
    let negatives = actual.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && predicted[order[j + 1]] == predicted[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mean_rank * order[i..=j].iter().filter(|k| actual[**k]).count() as f64;
        i = j + 1;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_random_and_inverted_rankings() {
        let actual = [false, false, true, true];
        assert_eq!(Evaluation::new(&[0.1, 0.2, 0.8, 0.9], &actual).auc, 1.0);
        assert_eq!(Evaluation::new(&[0.9, 0.8, 0.2, 0.1], &actual).auc, 0.0);
        assert_eq!(Evaluation::new(&[0.5; 4], &actual).auc, 0.5);
        // One positive outranked by one negative out of four pairs.
        assert_eq!(Evaluation::new(&[0.1, 0.6, 0.5, 0.9], &actual).auc, 0.75);
    }

    #[test]
    fn brier_and_log_loss_of_known_predictions() {
        let e = Evaluation::new(&[0.8, 0.3], &[true, false]);
        assert!((e.brier - (0.04 + 0.09) / 2.0).abs() < 1e-12);
        assert!((e.log_loss - (-(0.8f64.ln()) - 0.7f64.ln()) / 2.0).abs() < 1e-12);
        assert_eq!(e.base_rate, 0.5);
    }
}
