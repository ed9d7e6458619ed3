//! The contact plan: the best moments and channels to contact a debtor over
//! the coming days, each allowed by the contact rules at that moment given
//! the debtor's history, and the next allowed time per channel.
//!
//! Candidates are whole UTC hours (so that half-hour zones get half-hour local
//! starts) from the next hour on, each a one-hour contact on one channel.
//! Every candidate passes [`Jurisdiction::check`] before the contact model
//! scores it; the plan ranks by the model's probability, or with exploration
//! by a draw from a Beta posterior around it whose weight grows with the
//! debtor's attempts in that channel and hour. Slots are alternatives judged
//! against the history as it is now: after a contact, ask again.

use chrono::TimeZone;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use crate::events::{Channel, SECONDS_PER_HOUR, UnixTime};
use crate::features::contact::{ContactSummary, Slot};
use crate::models::ContactModel;
use crate::policy::{ContactContext, ContactPolicy, Denial, Zones};

/// Contact plan settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContactPlanConfig {
    /// Slots returned when the request does not say.
    pub default_slots: usize,
    /// Most slots a request may ask for.
    pub max_slots: usize,
    /// How far ahead slots are offered, in hours.
    pub horizon_hours: i64,
    /// How far ahead the next allowed time per channel is looked for, in days.
    pub lookahead_days: i64,
    /// Weight, in attempts, of the model's probability in the exploration
    /// posterior of a slot the debtor has no history in.
    pub prior_attempts: f64,
}

impl Default for ContactPlanConfig {
    fn default() -> Self {
        ContactPlanConfig {
            default_slots: 5,
            max_slots: 50,
            horizon_hours: 7 * 24,
            lookahead_days: 30,
            prior_attempts: 4.0,
        }
    }
}

/// How a caller wants the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanRequest {
    pub slots: usize,
    /// Rank by a posterior draw instead of the mean; the seed makes the draw
    /// reproducible.
    pub explore: Option<u64>,
}

/// One recommended contact.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSlot {
    pub start: UnixTime,
    /// The start in the plan's time zone, RFC 3339 with offset.
    pub local_start: String,
    pub channel: Channel,
    /// The contact model's probability of reaching the debtor.
    pub p_success: f64,
    /// The draw the slot was ranked by, when exploring.
    pub sampled: Option<f64>,
}

/// When a channel may next be used, or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelAvailability {
    pub channel: Channel,
    pub next_allowed: Option<UnixTime>,
    /// Why the channel cannot be used at the first candidate hour; empty when
    /// it can.
    pub blocked_reason: String,
}

/// A debtor's contact plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactPlan {
    /// The jurisdiction whose rules applied.
    pub jurisdiction: String,
    /// The zone local starts are shown in, if any is known or assumed.
    pub timezone: Option<chrono_tz::Tz>,
    /// Whether that zone was assumed because the debtor's is unknown.
    pub is_timezone_assumed: bool,
    /// Best first; empty without a contact model.
    pub slots: Vec<PlannedSlot>,
    pub next_allowed: Vec<ChannelAvailability>,
    pub contact_model_version: String,
}

/// The first whole UTC hour at or after `at`.
fn next_hour(at: UnixTime) -> UnixTime {
    UnixTime(at.0 + (SECONDS_PER_HOUR - at.0.rem_euclid(SECONDS_PER_HOUR)) % SECONDS_PER_HOUR)
}

fn local_text(zone: Option<chrono_tz::Tz>, at: UnixTime) -> String {
    let zone = zone.unwrap_or(chrono_tz::UTC);
    zone.timestamp_opt(at.0, 0)
        .single()
        .map_or_else(|| at.to_string(), |t| t.to_rfc3339())
}

/// Plans contacts for the debtor of `context` at `now`.
pub fn plan(
    policy: &ContactPolicy,
    model: Option<&ContactModel>,
    context: &ContactContext<'_>,
    now: UnixTime,
    request: PlanRequest,
    config: &ContactPlanConfig,
) -> ContactPlan {
    let profile = context.profile.as_ref();
    let jurisdiction = policy.jurisdiction(profile.map(|p| p.country));
    let zones = jurisdiction.zones(profile);
    let first = next_hour(now);
    let hours = config.horizon_hours.max(1);

    // The clock rules hold for every channel: judge each hour once.
    let time_ok: Vec<Result<(), Denial>> = (0..hours)
        .map(|h| {
            jurisdiction.check_time(
                zones,
                UnixTime(first.0 + h * SECONDS_PER_HOUR),
                SECONDS_PER_HOUR,
            )
        })
        .collect();
    let allowed = |channel: Channel, h: i64| -> Result<(), Denial> {
        let at = UnixTime(first.0 + h * SECONDS_PER_HOUR);
        jurisdiction.check_channel(context, channel)?;
        match time_ok.get(h as usize) {
            Some(result) => result.clone()?,
            None => jurisdiction.check_time(zones, at, SECONDS_PER_HOUR)?,
        }
        jurisdiction.check_history(context.log, channel, at)
    };

    let next_allowed = Channel::ALL
        .into_iter()
        .map(|channel| {
            let blocked_reason = match allowed(channel, 0) {
                Ok(()) => String::new(),
                Err(denial) => denial.to_string(),
            };
            let never = jurisdiction.check_channel(context, channel).is_err();
            let next_allowed = (!never)
                .then(|| (0..config.lookahead_days * 24).find(|h| allowed(channel, *h).is_ok()))
                .flatten()
                .map(|h| UnixTime(first.0 + h * SECONDS_PER_HOUR));
            ChannelAvailability {
                channel,
                next_allowed,
                blocked_reason,
            }
        })
        .collect();

    let display_zone = zones.display_zone();
    let mut plan = ContactPlan {
        jurisdiction: jurisdiction.name.clone(),
        timezone: display_zone,
        is_timezone_assumed: matches!(zones, Zones::Assumed(_)),
        slots: Vec::new(),
        next_allowed,
        contact_model_version: model.map_or_else(String::new, |m| m.version().to_owned()),
    };
    let Some(model) = model else {
        return plan;
    };

    // Features read local time in the debtor's own zone (UTC when unknown),
    // exactly as training did.
    let feature_zone = profile.and_then(|p| p.timezone);
    let summary = ContactSummary::new(context.log, feature_zone, now, model.success());
    let mut rng = request.explore.map(ChaCha8Rng::seed_from_u64);
    let mut candidates = Vec::new();
    // A slot's features depend only on its channel, local hour and day type,
    // which repeat over the days of the plan: predict each once.
    let mut predicted = [[[None::<f64>; 2]; 24]; 4];
    for h in 0..hours {
        if time_ok[h as usize].is_err() {
            continue;
        }
        let start = UnixTime(first.0 + h * SECONDS_PER_HOUR);
        // Local hour and day type, read once for every channel.
        let at_hour = Slot::at(Channel::Call, start, feature_zone);
        for channel in Channel::ALL {
            if allowed(channel, h).is_err() {
                continue;
            }
            let slot = Slot { channel, ..at_hour };
            let memo = &mut predicted[channel.index()][slot.local_hour.min(23) as usize]
                [usize::from(slot.is_weekend)];
            let p_success = *memo.get_or_insert_with(|| model.predict(&summary.features(slot)));
            let sampled = rng.as_mut().map(|rng| {
                let weight = config.prior_attempts + summary.attempts_in(slot);
                let (a, b) = (p_success * weight + 1e-3, (1.0 - p_success) * weight + 1e-3);
                Beta::new(a, b).map_or(p_success, |beta| beta.sample(rng))
            });
            candidates.push(PlannedSlot {
                start,
                // Written for the slots kept, once ranked.
                local_start: String::new(),
                channel,
                p_success,
                sampled,
            });
        }
    }
    let rank = |s: &PlannedSlot| s.sampled.unwrap_or(s.p_success);
    let order = |a: &PlannedSlot, b: &PlannedSlot| {
        rank(b)
            .total_cmp(&rank(a))
            .then(a.start.cmp(&b.start))
            .then(a.channel.index().cmp(&b.channel.index()))
    };
    if request.slots < candidates.len() {
        // Only the best few are kept: select them, then sort only those.
        candidates.select_nth_unstable_by(request.slots, order);
        candidates.truncate(request.slots);
    }
    candidates.sort_by(order);
    for slot in &mut candidates {
        slot.local_start = local_text(display_zone, slot.start);
    }
    plan.slots = candidates;
    plan
}
