//! Training the contact model. Every logged contact attempt is a sample: the
//! contact features of its slot (channel, local hour, day type), computed
//! from the debtor's state with exactly the events before the attempt, and
//! whether it reached the debtor by the chosen success definition. Samples
//! are split by time; the later part evaluates.

use ndarray::Array1;

use super::fit::{fit_logistic_rows, to_utc, training_data};
use super::replay::Replay;
use super::{Evaluation, TrainConfig, TrainError};
use crate::events::{Channel, Event, EventKind, UnixTime};
use crate::features::contact::{
    CONTACT_FEATURE_COUNT, ContactFeatures, ContactSummary, Slot, SuccessDefinition,
};
use crate::models::contact::success_record;
use crate::models::file::{FORMAT_VERSION, FeatureSchemaRecord, LabelDefinition, SplitRecord};
use crate::models::{ContactModel, ModelFile, ModelKind};
use crate::state::contacts::ContactLog;

/// One logged attempt as a training sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactSample {
    pub debtor_id: String,
    pub at: UnixTime,
    pub channel: Channel,
    pub features: ContactFeatures,
    pub is_success: bool,
}

/// Replays `events` in time order and takes every contact attempt as a
/// sample, with the features the server would have computed just before it.
pub fn contact_samples(
    events: &mut [Event],
    success: &SuccessDefinition,
    mut progress: impl FnMut(usize, usize),
) -> Vec<ContactSample> {
    let mut replay = Replay::new(events);
    let empty = ContactLog::default();
    let mut samples = Vec::new();
    for i in 0..replay.events.len() {
        let event = &replay.events[i];
        let EventKind::Contact { channel, outcome } = event.kind else {
            continue;
        };
        let (debtor_id, at) = (event.debtor_id.clone(), event.occurred_at);
        replay.advance_to(at);
        let features = replay
            .store
            .read(&debtor_id, |debtor| {
                let zone = debtor.profile().and_then(|p| p.timezone);
                let summary = ContactSummary::new(debtor.contact_log(), zone, at, success);
                summary.features(Slot::at(channel, at, zone))
            })
            .unwrap_or_else(|| {
                let summary = ContactSummary::new(&empty, None, at, success);
                summary.features(Slot::at(channel, at, None))
            });
        samples.push(ContactSample {
            debtor_id,
            at,
            channel,
            features,
            is_success: success.is_success(channel, outcome),
        });
        if i % 4096 == 0 {
            progress(replay.next, replay.events.len());
        }
    }
    progress(replay.events.len(), replay.events.len());
    samples
}

/// Contact samples divided by time into training and evaluation.
#[derive(Debug, Clone)]
pub struct ContactSplit<'a> {
    pub train: Vec<&'a ContactSample>,
    pub test: Vec<&'a ContactSample>,
    pub record: SplitRecord,
}

/// Holds out the attempts of the last `test_fraction` of the time range.
pub fn split_contacts_by_time(samples: &[ContactSample], test_fraction: f64) -> ContactSplit<'_> {
    let first = samples.iter().map(|s| s.at.0).min().unwrap_or(0);
    let last = samples.iter().map(|s| s.at.0).max().unwrap_or(0);
    let test_from = UnixTime(first + ((last - first) as f64 * (1.0 - test_fraction)) as i64);
    ContactSplit {
        train: samples.iter().filter(|s| s.at < test_from).collect(),
        test: samples.iter().filter(|s| s.at >= test_from).collect(),
        record: SplitRecord::ByTime {
            test_from: to_utc(test_from),
        },
    }
}

/// The success definition in words.
fn describe(success: &SuccessDefinition) -> String {
    let parts: Vec<String> = Channel::ALL
        .into_iter()
        .map(|c| {
            let names: Vec<&str> = success.successes(c).iter().map(|o| o.name()).collect();
            format!("{} {}", c.name(), names.join("/"))
        })
        .collect();
    format!(
        "reached: the attempt's outcome counts as success ({})",
        parts.join("; ")
    )
}

/// Fits the contact model on the training part of `split` and evaluates it
/// on the rest, through the serving model.
pub fn train_contact_model(
    split: &ContactSplit<'_>,
    success: &SuccessDefinition,
    config: &TrainConfig,
) -> Result<(ModelFile, Evaluation), TrainError> {
    let (train, test) = (&split.train, &split.test);
    let positives = train.iter().filter(|s| s.is_success).count();
    if train.len() < 100 || test.is_empty() || positives == 0 || positives == train.len() {
        return Err(TrainError::TooFewSamples(format!(
            "need at least 100 training attempts with both outcomes and some test attempts; \
             got {} training ({positives} successful) and {} test",
            train.len(),
            test.len()
        )));
    }
    let rows: Vec<&[f64]> = train.iter().map(|s| &s.features.values()[..]).collect();
    let targets: Array1<bool> = train.iter().map(|s| s.is_success).collect();
    let model = fit_logistic_rows(&rows, targets, CONTACT_FEATURE_COUNT, config)?;

    let mut file = ModelFile {
        format_version: FORMAT_VERSION,
        kind: ModelKind::Contact,
        version: config.version.clone(),
        created_at: config.created_at,
        feature_schema: FeatureSchemaRecord::of(ModelKind::Contact),
        horizon_days: None,
        label: LabelDefinition {
            min_paid_share: None,
            success_outcomes: Some(success_record(success)),
            description: describe(success),
        },
        training: training_data(
            config,
            train.iter().chain(test.iter()).map(|s| s.at),
            split.record.clone(),
            train.len(),
            test.len(),
        ),
        metrics: Default::default(),
        base_rate: positives as f64 / train.len() as f64,
        model,
    };

    let model = ContactModel::new(file.clone()).map_err(|e| TrainError::Fit(e.to_string()))?;
    let predicted: Vec<f64> = test.iter().map(|s| model.predict(&s.features)).collect();
    let actual: Vec<bool> = test.iter().map(|s| s.is_success).collect();
    let evaluation = Evaluation::new(&predicted, &actual);
    file.metrics = evaluation.to_map();
    Ok((file, evaluation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimConfig;

    #[test]
    fn a_contact_model_trained_on_simulation_beats_chance_on_later_attempts() {
        let sim = SimConfig {
            debtors: 1_500,
            ..SimConfig::default()
        };
        let mut events: Vec<Event> = crate::sim::portfolio(&sim)
            .into_iter()
            .flat_map(|d| d.events)
            .collect();
        let success = SuccessDefinition::default();
        let samples = contact_samples(&mut events, &success, |_, _| {});
        let config = TrainConfig::default();
        let split = split_contacts_by_time(&samples, config.test_fraction);
        let SplitRecord::ByTime { test_from } = split.record else {
            unreachable!()
        };
        assert!(split.train.iter().all(|s| s.at.0 < test_from.timestamp()));
        assert!(split.test.iter().all(|s| s.at.0 >= test_from.timestamp()));

        let (file, evaluation) = train_contact_model(&split, &success, &config).unwrap();
        assert!(evaluation.auc > 0.65, "held-out AUC {}", evaluation.auc);
        let base = evaluation.base_rate;
        assert!(
            evaluation.brier < base * (1.0 - base),
            "Brier {}",
            evaluation.brier
        );
        let again = ModelFile::from_json(file.to_json().as_bytes(), std::path::Path::new("c"));
        let model = ContactModel::new(again.unwrap()).unwrap();
        assert_eq!(model.success(), &success);
        model.check_canary().unwrap();
    }
}
