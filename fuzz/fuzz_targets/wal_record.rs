//! Write-ahead log bytes: read as a segment's records (framing, lengths,
//! checksums), and decoded as one record's payload whose events are then
//! replayed into a store as recovery does. Nothing may panic, and nothing
//! damaged may be visited.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mora::durability::wal::{self, SEGMENT_MAGIC};
use mora::state::{DedupEpoch, Store};

fuzz_target!(|data: &[u8]| {
    let len = (SEGMENT_MAGIC.len() + data.len()) as u64;
    let mut visited = 0;
    let (end, _damage) = wal::read_records(data, SEGMENT_MAGIC.len() as u64, len, |_, _| {
        visited += 1;
    })
    .expect("reading from memory cannot fail");
    assert!(end <= len);

    // The same bytes framed as a valid record reach the payload decoder.
    let framed = wal::encode_record(data);
    let (end, damage) =
        wal::read_records(&framed[..], 0, framed.len() as u64, |_, _| {}).expect("in memory");
    assert!(end == framed.len() as u64 || damage.is_some());

    if let Some(batch) = wal::decode_batch(data) {
        let store = Store::new();
        for event in &batch.events {
            let _ = store.replay_in(event, DedupEpoch::at(batch.applied_at, 86_400));
        }
    }
});
