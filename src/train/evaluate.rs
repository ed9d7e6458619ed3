//! How good a probability model is on held-out samples.

use std::collections::BTreeMap;

/// One bin of a calibration table: predictions within `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationBin {
    pub from: f64,
    pub to: f64,
    pub rows: usize,
    /// Mean predicted probability in the bin.
    pub mean_predicted: f64,
    /// Share of positive outcomes in the bin.
    pub observed_rate: f64,
}

/// Number of equal-width calibration bins.
pub const CALIBRATION_BINS: usize = 10;

/// Most points kept on the ROC curve (enough to draw it).
const ROC_POINTS: usize = 200;

/// Evaluation of predicted probabilities against outcomes.
#[derive(Debug, Clone, PartialEq)]
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
    /// Ten equal-width bins of predicted probability.
    pub calibration: Vec<CalibrationBin>,
    /// Expected calibration error: Σ (rows in bin ÷ rows) × |observed − predicted|.
    pub ece: f64,
    /// Positive rate among the 10 % highest predictions ÷ the base rate.
    pub top_decile_lift: f64,
    /// (false positive rate, true positive rate), from (0, 0) to (1, 1).
    pub roc: Vec<(f64, f64)>,
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
        let base_rate = positives as f64 / n;
        let calibration = calibration(predicted, actual);
        let ece = calibration
            .iter()
            .map(|b| b.rows as f64 / n * (b.observed_rate - b.mean_predicted).abs())
            .sum();
        Evaluation {
            auc: auc(predicted, actual),
            brier,
            log_loss,
            base_rate,
            rows,
            calibration,
            ece,
            top_decile_lift: top_decile_rate(predicted, actual) / base_rate.max(f64::MIN_POSITIVE),
            roc: roc(predicted, actual),
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
            ("ece".to_owned(), self.ece),
            ("top_decile_lift".to_owned(), self.top_decile_lift),
        ])
    }
}

fn calibration(predicted: &[f64], actual: &[bool]) -> Vec<CalibrationBin> {
    let width = 1.0 / CALIBRATION_BINS as f64;
    let mut sums = [(0usize, 0.0f64, 0usize); CALIBRATION_BINS];
    for (p, y) in predicted.iter().zip(actual) {
        let bin = ((p / width) as usize).min(CALIBRATION_BINS - 1);
        sums[bin].0 += 1;
        sums[bin].1 += p;
        sums[bin].2 += usize::from(*y);
    }
    sums.iter()
        .enumerate()
        .map(|(i, (rows, sum_p, positives))| CalibrationBin {
            from: i as f64 * width,
            to: (i + 1) as f64 * width,
            rows: *rows,
            mean_predicted: if *rows > 0 { sum_p / *rows as f64 } else { 0.0 },
            observed_rate: if *rows > 0 {
                *positives as f64 / *rows as f64
            } else {
                0.0
            },
        })
        .collect()
}

/// Positive rate among the highest tenth of predictions.
fn top_decile_rate(predicted: &[f64], actual: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..predicted.len()).collect();
    order.sort_by(|a, b| predicted[*b].total_cmp(&predicted[*a]));
    let top = (predicted.len() / 10).max(1).min(predicted.len());
    let positives = order[..top].iter().filter(|i| actual[**i]).count();
    positives as f64 / top.max(1) as f64
}

/// The ROC curve, thinned to at most [`ROC_POINTS`] points.
fn roc(predicted: &[f64], actual: &[bool]) -> Vec<(f64, f64)> {
    let positives = actual.iter().filter(|y| **y).count().max(1) as f64;
    let negatives = actual.iter().filter(|y| !**y).count().max(1) as f64;
    let mut order: Vec<usize> = (0..predicted.len()).collect();
    order.sort_by(|a, b| predicted[*b].total_cmp(&predicted[*a]));
    let step = (order.len() / ROC_POINTS).max(1);
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut curve = vec![(0.0, 0.0)];
    for (k, i) in order.iter().enumerate() {
        if actual[*i] {
            tp += 1.0
        } else {
            fp += 1.0
        }
        if (k + 1) % step == 0 {
            curve.push((fp / negatives, tp / positives));
        }
    }
    curve.push((1.0, 1.0));
    curve
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
    fn calibration_lift_and_roc_of_known_predictions() {
        // Ten rows at p = 0.15 of which 2 positive; ten at p = 0.85, 8 positive.
        let predicted: Vec<f64> = [0.15; 10].into_iter().chain([0.85; 10]).collect();
        let actual: Vec<bool> = (0..20)
            .map(|i| matches!(i, 0 | 1) || (12..20).contains(&i))
            .collect();
        let e = Evaluation::new(&predicted, &actual);
        assert_eq!(e.calibration.len(), CALIBRATION_BINS);
        assert_eq!((e.calibration[1].rows, e.calibration[8].rows), (10, 10));
        assert!((e.calibration[1].observed_rate - 0.2).abs() < 1e-12);
        assert!((e.ece - (0.5 * 0.05 + 0.5 * 0.05)).abs() < 1e-12);
        assert_eq!(e.roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(e.roc.last(), Some(&(1.0, 1.0)));
    }

    #[test]
    fn top_decile_lift_compares_the_highest_tenth_with_the_base_rate() {
        let predicted: Vec<f64> = (0..10).map(|i| f64::from(i) / 10.0).collect();
        let actual = [
            true, false, false, true, false, false, false, false, false, true,
        ];
        let e = Evaluation::new(&predicted, &actual);
        assert!(
            (e.top_decile_lift - 1.0 / 0.3).abs() < 1e-12,
            "{}",
            e.top_decile_lift
        );
    }

    #[test]
    fn brier_and_log_loss_of_known_predictions() {
        let e = Evaluation::new(&[0.8, 0.3], &[true, false]);
        assert!((e.brier - (0.04 + 0.09) / 2.0).abs() < 1e-12);
        assert!((e.log_loss - (-(0.8f64.ln()) - 0.7f64.ln()) / 2.0).abs() < 1e-12);
        assert_eq!(e.base_rate, 0.5);
    }
}
