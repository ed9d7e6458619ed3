//! Snapshots: the whole store at one log position, written atomically.
//!
//! A snapshot file is `snapshot-<lsn>.snap`: [`SNAPSHOT_MAGIC`], the log
//! position it covers (u64 LE), then chunks of debtors, each
//! `[length: u32][debtors: u32][crc32c of payload: u32][payload]` where the
//! payload is that many `(debtor id, state)` pairs in postcard encoding, and
//! last an end chunk (length 0) whose `debtors` field is the total and whose
//! checksum covers the total. A file without a valid end chunk is incomplete.
//!
//! The store is read one shard at a time while ingest and scoring go on; the
//! log position is taken first, so replaying the log from it re-applies at
//! most events the snapshot already holds, which idempotence makes harmless.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::wal::Lsn;
use super::{DurabilityError, sync_dir};
use crate::state::{DebtorState, DebtorStateV1, Store};

/// The first bytes of every snapshot written: format name and version.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"MORASNP2";

/// The first bytes of a format-1 snapshot (debtor states without account
/// statuses), still read so that an upgrade keeps its state.
const SNAPSHOT_MAGIC_V1: &[u8; 8] = b"MORASNP1";

/// Payload bytes after which a chunk is closed.
const CHUNK_BYTES: usize = 1 << 20;

/// Bytes of a chunk header.
const CHUNK_HEADER_LEN: usize = 12;

/// Largest chunk payload a reader accepts; a larger length is corruption.
const MAX_CHUNK_BYTES: usize = 64 << 20;

/// The name of the snapshot covering the log up to `lsn`.
pub fn snapshot_name(lsn: Lsn) -> String {
    format!("snapshot-{lsn:020}.snap")
}

/// The snapshots in `dir`, newest (highest position) first.
pub fn snapshots(dir: &Path) -> io::Result<Vec<(Lsn, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let lsn = name
            .strip_prefix("snapshot-")
            .and_then(|rest| rest.strip_suffix(".snap"))
            .and_then(|digits| digits.parse::<Lsn>().ok());
        if let Some(lsn) = lsn {
            found.push((lsn, path));
        }
    }
    found.sort_by(|a, b| b.cmp(a));
    Ok(found)
}

/// What writing a snapshot produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub lsn: Lsn,
    pub debtors: u64,
    pub bytes: u64,
}

/// Writes `store` as the snapshot covering the log up to `lsn`: to a
/// temporary file, synced, then renamed into place.
pub fn write(dir: &Path, store: &Store, lsn: Lsn) -> Result<Written, DurabilityError> {
    let io = |what: &str, e: io::Error| DurabilityError::Io(format!("{what}: {e}"));
    let path = dir.join(snapshot_name(lsn));
    let temporary = path.with_extension("snap.tmp");
    let file = File::create(&temporary).map_err(|e| io("creating a snapshot", e))?;
    let mut out = BufWriter::with_capacity(4 << 20, file);

    out.write_all(SNAPSHOT_MAGIC)
        .and_then(|()| out.write_all(&lsn.to_le_bytes()))
        .map_err(|e| io("writing a snapshot", e))?;
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
    let mut in_chunk = 0u32;
    let mut debtors = 0u64;
    let mut failure: Option<DurabilityError> = None;
    store.for_each(|id, state| {
        if failure.is_some() {
            return;
        }
        if let Err(e) = postcard::to_io(&(id, state), &mut chunk) {
            failure = Some(DurabilityError::Encode(e.to_string()));
            return;
        }
        in_chunk += 1;
        debtors += 1;
        if chunk.len() >= CHUNK_BYTES {
            if let Err(e) = write_chunk(&mut out, &chunk, in_chunk) {
                failure = Some(io("writing a snapshot", e));
            }
            chunk.clear();
            in_chunk = 0;
        }
    });
    if let Some(error) = failure {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    let finish = |out: &mut BufWriter<File>| -> io::Result<()> {
        if in_chunk > 0 {
            write_chunk(out, &chunk, in_chunk)?;
        }
        let total = debtors.to_le_bytes();
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&(debtors.min(u64::from(u32::MAX)) as u32).to_le_bytes())?;
        out.write_all(&crc32c::crc32c(&total).to_le_bytes())?;
        out.write_all(&total)?;
        out.flush()?;
        out.get_ref().sync_all()
    };
    if let Err(e) = finish(&mut out) {
        let _ = fs::remove_file(&temporary);
        return Err(io("writing a snapshot", e));
    }
    let bytes = out.get_ref().metadata().map(|m| m.len()).unwrap_or(0);
    drop(out);
    fs::rename(&temporary, &path).map_err(|e| io("renaming a snapshot into place", e))?;
    sync_dir(dir).map_err(|e| io("syncing the state directory", e))?;
    Ok(Written {
        path,
        lsn,
        debtors,
        bytes,
    })
}

fn write_chunk(out: &mut impl Write, payload: &[u8], debtors: u32) -> io::Result<()> {
    out.write_all(&(payload.len() as u32).to_le_bytes())?;
    out.write_all(&debtors.to_le_bytes())?;
    out.write_all(&crc32c::crc32c(payload).to_le_bytes())?;
    out.write_all(payload)
}

/// Why a snapshot could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is damaged at byte {offset}: {reason}")]
    Damaged {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },
}

/// What loading a snapshot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub lsn: Lsn,
    pub debtors: u64,
}

/// Loads the snapshot at `path` into `store`, which must be empty; on error
/// the store may hold part of the snapshot and must be discarded.
/// `progress` is told the bytes read so far.
pub fn load(
    path: &Path,
    store: &Store,
    mut progress: impl FnMut(u64),
) -> Result<Loaded, SnapshotError> {
    let io = |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    };
    let damaged = |offset, reason| SnapshotError::Damaged {
        path: path.to_owned(),
        offset,
        reason,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut input = BufReader::with_capacity(4 << 20, file);

    let mut head = [0u8; 16];
    if len < head.len() as u64 {
        return Err(damaged(0, "shorter than its header"));
    }
    input.read_exact(&mut head).map_err(io)?;
    let format_1 = match &head[..8] {
        magic if magic == SNAPSHOT_MAGIC => false,
        magic if magic == SNAPSHOT_MAGIC_V1 => true,
        _ => {
            return Err(damaged(
                0,
                "not a mora snapshot of a format this version reads",
            ));
        }
    };
    let lsn = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());

    let mut offset = head.len() as u64;
    let mut debtors = 0u64;
    let mut payload = Vec::new();
    loop {
        if len - offset < CHUNK_HEADER_LEN as u64 {
            return Err(damaged(offset, "ends before its end marker"));
        }
        let mut header = [0u8; CHUNK_HEADER_LEN];
        input.read_exact(&mut header).map_err(io)?;
        let word =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (payload_len, count, crc) = (word(0) as usize, word(4), word(8));
        offset += CHUNK_HEADER_LEN as u64;

        if payload_len == 0 {
            let mut total = [0u8; 8];
            if len - offset < 8 {
                return Err(damaged(offset, "ends inside its end marker"));
            }
            input.read_exact(&mut total).map_err(io)?;
            if crc32c::crc32c(&total) != crc || u64::from_le_bytes(total) != debtors {
                return Err(damaged(
                    offset,
                    "end marker does not match the debtors read",
                ));
            }
            return Ok(Loaded { lsn, debtors });
        }
        if payload_len > MAX_CHUNK_BYTES || len - offset < payload_len as u64 {
            return Err(damaged(offset, "chunk length beyond the file"));
        }
        payload.resize(payload_len, 0);
        input.read_exact(&mut payload).map_err(io)?;
        if crc32c::crc32c(&payload) != crc {
            return Err(damaged(offset, "chunk checksum mismatch"));
        }
        let mut rest = &payload[..];
        for _ in 0..count {
            let decoded = if format_1 {
                postcard::take_from_bytes::<(Box<str>, DebtorStateV1)>(rest)
                    .map(|((id, state), after)| ((id, DebtorState::from(state)), after))
            } else {
                postcard::take_from_bytes::<(Box<str>, DebtorState)>(rest)
            };
            let Ok(((id, state), after)) = decoded else {
                return Err(damaged(offset, "debtor state does not decode"));
            };
            store.insert(id, state);
            rest = after;
        }
        if !rest.is_empty() {
            return Err(damaged(offset, "chunk holds more than its debtors"));
        }
        debtors += u64::from(count);
        offset += payload_len as u64;
        progress(offset);
    }
}
