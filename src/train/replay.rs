//! Point-in-time replay: decision points with the features the server would
//! have computed at that moment, and the label of what happened next.

use std::collections::HashMap;

use crate::events::{Event, EventKind, UnixTime};
use crate::features::{FeatureVector, extract};
use crate::state::Store;

/// When and how decision points are taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionPoint {
    /// Days between decision points.
    pub step_days: i64,
    /// Days of history before the first decision point.
    pub warmup_days: i64,
    /// Days after a decision point within which payments count for its label.
    pub horizon_days: i64,
    /// Share of the overdue amount that payments must cover to count as paid.
    pub min_paid_share: f64,
}

/// One labelled decision: a debtor, a moment, its features, and the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub debtor_id: String,
    pub at: UnixTime,
    pub features: FeatureVector,
    pub overdue_minor: i64,
    /// Whether net payments within the horizon covered the required share.
    pub is_paid: bool,
}

/// Net payments (payments minus reversals) of each debtor, sorted by time.
fn payment_timelines(events: &[Event]) -> HashMap<&str, Vec<(i64, i64)>> {
    let mut timelines: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    for event in events {
        let signed = match &event.kind {
            EventKind::Payment { amount, .. } => amount.minor_units,
            EventKind::PaymentReversed { amount, .. } => -amount.minor_units,
            _ => continue,
        };
        timelines
            .entry(&event.debtor_id)
            .or_default()
            .push((event.occurred_at.0, signed));
    }
    for timeline in timelines.values_mut() {
        timeline.sort_unstable();
    }
    timelines
}

/// Net paid in `(from, to]`.
fn paid_between(timeline: &[(i64, i64)], from: i64, to: i64) -> i64 {
    let start = timeline.partition_point(|(t, _)| *t <= from);
    timeline[start..]
        .iter()
        .take_while(|(t, _)| *t <= to)
        .map(|(_, m)| m)
        .sum()
}

/// Events in time order, applied to a store up to a moment that only moves
/// forward: what the server would have known at that moment.
pub(super) struct Replay<'a> {
    pub(super) events: &'a [Event],
    pub(super) next: usize,
    pub(super) store: Store,
}

impl<'a> Replay<'a> {
    pub(super) fn new(events: &'a mut [Event]) -> Self {
        events.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
        Replay {
            events,
            next: 0,
            store: Store::new(),
        }
    }

    /// Applies every event that occurred before `at`.
    pub(super) fn advance_to(&mut self, at: UnixTime) {
        while self.next < self.events.len() && self.events[self.next].occurred_at < at {
            // Events were validated when they were read; a currency conflict
            // is refused here exactly as the server would refuse it.
            let _ = self.store.apply(&self.events[self.next]);
            self.next += 1;
        }
    }
}

/// Replays `events` in time order and takes a decision point every
/// `step_days` for every debtor with an overdue balance at that moment.
/// A decision at time `t` sees exactly the events with `occurred_at < t`.
/// Decision points whose horizon ends after the last event are not taken,
/// since their label is not yet known.
pub fn decision_points(
    events: &mut [Event],
    points: DecisionPoint,
    mut progress: impl FnMut(usize, usize),
) -> Vec<Sample> {
    let replay = Replay::new(events);
    let (Some(first), Some(last)) = (replay.events.first(), replay.events.last()) else {
        return Vec::new();
    };
    let (first, last) = (first.occurred_at, last.occurred_at);
    let timelines = payment_timelines(replay.events);
    let mut replay = replay;
    let mut samples = Vec::new();

    let mut decision_at = first.plus_days(points.warmup_days);
    while decision_at.plus_days(points.horizon_days) <= last {
        replay.advance_to(decision_at);
        replay.store.for_each(|debtor_id, debtor| {
            let overdue_minor = debtor.balances(decision_at).overdue_minor;
            if overdue_minor <= 0 {
                return;
            }
            let horizon_end = decision_at.plus_days(points.horizon_days).0;
            let paid = timelines
                .get(debtor_id)
                .map_or(0, |t| paid_between(t, decision_at.0 - 1, horizon_end));
            samples.push(Sample {
                debtor_id: debtor_id.to_owned(),
                at: decision_at,
                features: extract(debtor, decision_at),
                overdue_minor,
                is_paid: paid as f64 >= points.min_paid_share * overdue_minor as f64,
            });
        });
        progress(replay.next, replay.events.len());
        decision_at = decision_at.plus_days(points.step_days);
    }
    // The store's iteration order is not deterministic; the samples' must be.
    samples.sort_by(|a, b| (a.at, &a.debtor_id).cmp(&(b.at, &b.debtor_id)));
    samples
}

/// A decision point whose outcome and set (training or evaluation) were
/// given from outside the event history, e.g. by a labels file.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub debtor_id: String,
    pub at: UnixTime,
    pub is_paid: bool,
    /// Whether the point belongs to the evaluation set.
    pub held_out: bool,
}

/// Decision points of given labels: the features of each label's debtor at
/// its moment, from a replay of `events`, as training and evaluation samples.
/// A label whose debtor has no event before its moment is an error, since
/// its features would describe a stranger.
pub fn labelled_points(
    events: &mut [Event],
    labels: &[Label],
    mut progress: impl FnMut(usize, usize),
) -> Result<(Vec<Sample>, Vec<Sample>), String> {
    let mut order: Vec<&Label> = labels.iter().collect();
    order.sort_by(|a, b| (a.at, &a.debtor_id).cmp(&(b.at, &b.debtor_id)));
    let mut replay = Replay::new(events);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (done, label) in order.into_iter().enumerate() {
        replay.advance_to(label.at);
        let sample = replay
            .store
            .read(&label.debtor_id, |debtor| Sample {
                debtor_id: label.debtor_id.clone(),
                at: label.at,
                features: extract(debtor, label.at),
                overdue_minor: debtor.balances(label.at).overdue_minor,
                is_paid: label.is_paid,
            })
            .ok_or_else(|| {
                format!(
                    "debtor {} has no event before its decision at {}",
                    label.debtor_id, label.at
                )
            })?;
        if label.held_out {
            test.push(sample);
        } else {
            train.push(sample);
        }
        if done % 4096 == 0 {
            progress(replay.next, replay.events.len());
        }
    }
    progress(replay.next, replay.events.len());
    Ok((train, test))
}
