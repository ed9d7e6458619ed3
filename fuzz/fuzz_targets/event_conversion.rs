//! Wire events from untrusted bytes: a protobuf `EventBatch` (first byte
//! even) or event-file JSON lines (odd), converted and checked as ingest does,
//! then applied to a store and turned into features. Nothing may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mora::api::{convert, event_file, proto};
use mora::events::{EventLimits, UnixTime};
use mora::features::extract;
use mora::state::Store;
use prost::Message;

/// A fixed "now", so that runs repeat: 2026-06-01T00:00:00Z.
const NOW: UnixTime = UnixTime(1_780_272_000);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let events: Vec<proto::Event> = if mode % 2 == 0 {
        match proto::EventBatch::decode(rest) {
            Ok(batch) => batch.events,
            Err(_) => return,
        }
    } else {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        text.lines()
            .filter_map(|line| event_file::parse_line(line).ok())
            .collect()
    };
    let limits = EventLimits {
        late_horizon_secs: if mode & 2 == 0 { 0 } else { 400 * 86_400 },
        ..EventLimits::default()
    };
    let mut store: Option<Store> = None;
    for message in events {
        if let Ok(event) = convert::event(message, &limits, NOW) {
            let store = store.get_or_insert_with(|| Store::with_max_debtors(64));
            let _ = store.apply(&event);
            let wire = convert::event_to_proto(&event);
            let again = convert::event(wire, &limits, NOW).expect("a checked event converts back");
            assert_eq!(again, event, "round trip through the wire form");
            store.read(&event.debtor_id, |debtor| extract(debtor, NOW));
        }
    }
});
