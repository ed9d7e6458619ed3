//! `mora train`: replays event history (from files or the simulator) and
//! writes a model file with its evaluation report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};

use super::{KindArg, TrainArgs, progress_bar, spinner};
use crate::api::event_file;
use crate::events::{Channel, ContactOutcome, Event, EventLimits};
use crate::features::contact::SuccessDefinition;
use crate::models::ModelFile;
use crate::models::file::{LabelDefinition, SplitRecord};
use crate::sim::SimConfig;
use crate::train::{self, Algorithm, BoostConfig, Evaluation, TrainConfig};

/// Events to train on, where they came from, and a version name for them.
struct Input {
    events: Vec<Event>,
    source: String,
    default_version: String,
}

fn read_input(args: &TrainArgs, kind: &str) -> anyhow::Result<Input> {
    if let Some(debtors) = args.synthetic_debtors {
        let sim = SimConfig {
            debtors,
            months: args.months,
            seed: args.seed,
            ..SimConfig::default()
        };
        eprintln!(
            "Simulating {debtors} debtors over {} months (seed {})…",
            sim.months, sim.seed
        );
        let events = crate::sim::portfolio(&sim)
            .into_iter()
            .flat_map(|d| d.events)
            .collect();
        return Ok(Input {
            events,
            source: format!(
                "mora simulator: {debtors} debtors, {} months, seed {}",
                sim.months, sim.seed
            ),
            default_version: format!("{kind}-sim-s{}", sim.seed),
        });
    }
    let mut events = Vec::new();
    for path in &args.events {
        let count = event_file::read(path, &EventLimits::default(), |e| events.push(e))?;
        eprintln!("Read {count} events from {}", path.display());
    }
    let names: Vec<String> = args
        .events
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    Ok(Input {
        events,
        source: format!("event files: {}", names.join(", ")),
        default_version: format!("{kind}-events"),
    })
}

/// Parses `--success CHANNEL=OUTCOME,...` arguments.
fn success_definition(args: &[String]) -> anyhow::Result<SuccessDefinition> {
    let mut definition = SuccessDefinition::default();
    for arg in args {
        let Some((channel, outcomes)) = arg.split_once('=') else {
            bail!("--success {arg:?}: expected CHANNEL=OUTCOME,... e.g. call=right_party");
        };
        let channel = Channel::from_name(channel.trim())
            .with_context(|| format!("--success {arg:?}: unknown channel {channel:?}"))?;
        let outcomes = outcomes
            .split(',')
            .map(|o| {
                ContactOutcome::from_name(o.trim())
                    .with_context(|| format!("--success {arg:?}: unknown outcome {o:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        definition = definition.with(channel, &outcomes);
    }
    Ok(definition)
}

pub(super) fn train(args: TrainArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let kind = match args.kind {
        KindArg::Payment => "payment",
        KindArg::Contact => "contact",
    };
    if let KindArg::Contact = args.kind {
        if args.labels.is_some() {
            bail!("--labels gives payment outcomes; contact models learn from contact attempts");
        }
        if args.algorithm == Some(Algorithm::BoostedTrees) {
            bail!("contact models are logistic regressions; drop --algorithm");
        }
    } else if !args.success.is_empty() {
        bail!("--success defines contact success; it applies to --kind contact only");
    }
    let input = read_input(&args, kind)?;
    let mut config = TrainConfig {
        version: args.version.clone().unwrap_or(input.default_version),
        source: input.source,
        created_at: chrono::Utc::now(),
        algorithm: args.algorithm.unwrap_or(Algorithm::BoostedTrees),
        l2_penalty: args.l2_penalty,
        boost: BoostConfig {
            trees: args.trees,
            learning_rate: args.learning_rate,
            max_depth: args.max_depth,
            min_leaf_weight: args.min_leaf_weight,
            l2: args.leaf_l2,
            subsample: args.subsample,
            colsample: args.colsample,
            ..BoostConfig::default()
        },
        ..TrainConfig::default()
    };
    config.points.horizon_days = args.horizon_days;

    let mut events = input.events;
    let (file, evaluation) = match args.kind {
        KindArg::Payment => train_payment(&mut events, args.labels.as_deref(), &config)?,
        KindArg::Contact => {
            train_contact(&mut events, &success_definition(&args.success)?, &config)?
        }
    };

    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("models/{kind}.json")));
    write(&out, &file, &evaluation)?;
    eprintln!(
        "Wrote {} in {:.1} s ({} training / {} test rows). Held-out: AUC {:.4}, Brier {:.4}, \
         log loss {:.4}, base rate {:.4}",
        out.display(),
        started.elapsed().as_secs_f64(),
        file.training.train_rows,
        file.training.test_rows,
        evaluation.auc,
        evaluation.brier,
        evaluation.log_loss,
        evaluation.base_rate,
    );
    Ok(())
}

fn train_payment(
    events: &mut [Event],
    labels: Option<&Path>,
    config: &TrainConfig,
) -> anyhow::Result<(ModelFile, Evaluation)> {
    let bar = progress_bar(events.len(), "events replayed");
    let progress = |done: usize, _| bar.set_position(done as u64);
    let Some(path) = labels else {
        let samples = train::decision_points(events, config.points, progress);
        bar.finish_and_clear();
        let split =
            train::split_by_time(&samples, config.test_fraction, config.points.horizon_days);
        let fitting = spinner(format!("Fitting on {} decision points", samples.len()));
        let trained = train::train_payment_model(&split, config.replayed_label(), config);
        fitting.finish_and_clear();
        return Ok(trained?);
    };

    let labels = train::labels::read_labels(path).map_err(anyhow::Error::msg)?;
    let (train_set, test_set) = train::labelled_points(events, &labels, progress)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    bar.finish_and_clear();
    let fitting = spinner(format!(
        "Fitting on {} labelled decision points ({} held out)",
        labels.len(),
        test_set.len()
    ));
    let split = train::Split {
        train: train_set.iter().collect(),
        test: test_set.iter().collect(),
        record: SplitRecord::Given {
            description: format!("the split column of {}", path.display()),
        },
    };
    let label = LabelDefinition {
        min_paid_share: None,
        success_outcomes: None,
        description: format!("paid as given per decision point in {}", path.display()),
    };
    let trained = train::train_payment_model(&split, label, config);
    fitting.finish_and_clear();
    Ok(trained?)
}

fn train_contact(
    events: &mut [Event],
    success: &SuccessDefinition,
    config: &TrainConfig,
) -> anyhow::Result<(ModelFile, Evaluation)> {
    let bar = progress_bar(events.len(), "events replayed");
    let samples = train::contact_samples(events, success, |done, _| bar.set_position(done as u64));
    bar.finish_and_clear();
    let split = train::split_contacts_by_time(&samples, config.test_fraction);
    let fitting = spinner(format!("Fitting on {} contact attempts", samples.len()));
    let trained = train::train_contact_model(&split, success, config);
    fitting.finish_and_clear();
    Ok(trained?)
}

/// Writes the model file and its evaluation report beside it.
fn write(out: &Path, file: &ModelFile, evaluation: &Evaluation) -> anyhow::Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, file.to_json() + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    train::Report::render(file, evaluation, stem)
        .write_beside(out)
        .with_context(|| format!("writing the evaluation report beside {}", out.display()))
}
