//! `mora simulate`: writes a synthetic portfolio as an event file, and its
//! hidden traits beside it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use anyhow::Context;

use super::{SimulateArgs, progress_bar};
use crate::api::event_file::EventWriter;
use crate::sim::SimConfig;

pub(super) fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let sim = SimConfig {
        debtors: args.debtors,
        months: args.months,
        seed: args.seed,
        ..SimConfig::default()
    };
    let mut events = EventWriter::create(&args.out)?;
    let mut traits = match &args.traits {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };

    let bar = progress_bar(sim.debtors, "debtors");
    let mut written = 0usize;
    for index in 0..sim.debtors {
        let debtor = crate::sim::debtor(&sim, index);
        for event in &debtor.events {
            events.write(event)?;
        }
        written += debtor.events.len();
        if let Some(out) = traits.as_mut() {
            serde_json::to_writer(&mut *out, &debtor)?;
            out.write_all(b"\n")?;
        }
        bar.inc(1);
    }
    events.finish()?;
    if let Some(mut out) = traits {
        out.flush()?;
    }
    bar.finish_and_clear();
    eprintln!(
        "Wrote {written} events for {} debtors to {} in {:.1} s",
        sim.debtors,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
