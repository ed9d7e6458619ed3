//! Measures the memory mora's state takes per debtor: every byte allocated
//! while debtors are loaded into a `Store`, divided by the number of debtors.
//! This includes the map's own tables and keys, not only the debtor states.
//!
//! The typical history is loaded for `MORA_MEMORY_DEBTORS` debtors (200,000
//! by default; one count per run, so that each count starts from a fresh
//! process), the simulated one for 200,000: once applied all at once with ids
//! remembered forever (no late-event horizon), once as a live server with a
//! horizon of `MORA_MEMORY_HORIZON_DAYS` (30 by default) would hold it, each
//! event applied in the dedup epoch of its occurrence.
//!
//! ```text
//! cargo bench --bench state_memory
//! MORA_MEMORY_DEBTORS=10000000 cargo bench --bench state_memory
//! ```

// Counting allocations means implementing `GlobalAlloc`, an unsafe trait; the
// implementation only forwards to the system allocator.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use common::typical;
use mora::durability;
use mora::events::Event;
use mora::sim::{self, SimConfig};
use mora::state::{DedupEpoch, Store};

/// The system allocator, counting live bytes.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Resident set size of this process, in bytes.
fn resident_bytes() -> f64 {
    common::resident_bytes() as f64
}

/// What loading one portfolio cost.
struct Cost {
    allocated_per_debtor: f64,
    resident_per_debtor: f64,
    events_per_debtor: f64,
}

/// Loads `debtors` histories made by `history` into a fresh store. The store
/// is returned so that the caller keeps it alive: pages it frees would
/// otherwise be reused by the next measurement and hide from its RSS.
fn measure(debtors: usize, history: impl Fn(usize) -> Vec<Event>) -> (Cost, Store) {
    measure_with(debtors, history, |store, event| {
        store.apply(event).unwrap();
    })
}

/// [`measure`], applying each event with `apply`.
fn measure_with(
    debtors: usize,
    history: impl Fn(usize) -> Vec<Event>,
    apply: impl Fn(&Store, &Event),
) -> (Cost, Store) {
    let store = Store::new();
    let resident_before = resident_bytes();
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut events = 0usize;
    for d in 0..debtors {
        // Each history is built and dropped here, so only the store's growth
        // remains counted.
        for event in history(d) {
            apply(&store, &event);
            events += 1;
        }
    }
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    assert_eq!(store.len(), debtors);
    let n = debtors as f64;
    let cost = Cost {
        allocated_per_debtor: (after - before) as f64 / n,
        resident_per_debtor: (resident_bytes() - resident_before) / n,
        events_per_debtor: events as f64 / n,
    };
    (cost, store)
}

fn report(what: &str, debtors: usize, cost: Cost) {
    println!(
        "{what}: {debtors} debtors, {:.1} events each: {:.0} bytes allocated per debtor, \
         {:.0} bytes resident per debtor",
        cost.events_per_debtor, cost.allocated_per_debtor, cost.resident_per_debtor
    );
}

fn main() {
    let debtors = 200_000;
    let state_size = std::mem::size_of::<mora::state::DebtorState>();
    println!("size_of::<DebtorState>() = {state_size} bytes");
    let typical_debtors = common::setting("MORA_MEMORY_DEBTORS", debtors);
    let started = std::time::Instant::now();
    let (typical_cost, _typical_store) = measure(typical_debtors, typical);
    report("typical history", typical_debtors, typical_cost);
    println!("  loaded in {:.1} s", started.elapsed().as_secs_f64());
    let sim = SimConfig {
        debtors,
        ..SimConfig::default()
    };
    let (simulated, simulated_store) = measure(debtors, |d| sim::debtor(&sim, d).events);
    report("simulated 6-month history", debtors, simulated);

    // A live server with a late-event horizon applies each event about when
    // it occurs and forgets ids two epochs on.
    let horizon_days = common::setting("MORA_MEMORY_HORIZON_DAYS", 30) as i64;
    let epoch_secs = durability::dedup_epoch_secs(horizon_days * 86_400, 300);
    let (live, _live_store) = measure_with(
        debtors,
        |d| sim::debtor(&sim, d).events,
        |store, event| {
            let epoch = DedupEpoch::at(event.occurred_at, epoch_secs);
            store.apply_in(event, epoch).unwrap();
        },
    );
    report(
        &format!("simulated 6-month history, applied live with a {horizon_days}-day horizon"),
        debtors,
        live,
    );
    drop(simulated_store);
}
