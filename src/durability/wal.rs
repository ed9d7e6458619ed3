//! The write-ahead log: every accepted batch, appended before it is
//! acknowledged, in segment files that together form one byte stream.
//!
//! A position in the log (an [`Lsn`]) is a byte offset in that stream; a
//! segment file is named by the position of its first byte. Each segment
//! starts with [`SEGMENT_MAGIC`]; each record is
//! `[length: u32 LE][crc32c of length and payload: u32 LE][payload]`, the
//! payload being one [`WalBatch`] in postcard encoding.
//!
//! Writers append under one lock, which the ingest path holds while it applies
//! the batch, so that the log's order is the order batches were applied in. A
//! background thread makes appended bytes durable according to the
//! [`FsyncPolicy`] and publishes how far they are; acknowledgements wait for
//! the position of their batch.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{DurabilityError, FsyncPolicy, sync_dir};
use crate::events::{Event, UnixTime};

/// A position in the log: bytes from the start of the first segment ever.
pub type Lsn = u64;

/// The first bytes of every segment: format name and version.
pub const SEGMENT_MAGIC: &[u8; 8] = b"MORAWAL1";

/// Bytes of a record's length and checksum.
pub const RECORD_HEADER_LEN: usize = 8;

/// Largest payload a record may have; a larger length is corruption.
pub const MAX_RECORD_LEN: usize = 256 << 20;

/// One logged batch: the events it applied for the first time, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalBatch {
    /// Server time of the apply, which decides the dedup epoch on replay.
    pub applied_at: UnixTime,
    pub events: Vec<Event>,
}

/// The same record as [`WalBatch`], encoded without copying the events.
#[derive(Serialize)]
struct WalBatchRef<'a> {
    applied_at: UnixTime,
    events: &'a [Event],
}

/// `[length][crc32c][payload]` for `payload`.
pub fn encode_record(payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    record.extend_from_slice(&len);
    record.extend_from_slice(&crc.to_le_bytes());
    record.extend_from_slice(payload);
    record
}

/// The name of the segment starting at `start`.
pub fn segment_name(start: Lsn) -> String {
    format!("wal-{start:020}.log")
}

/// The segments in `dir`, sorted by start position.
pub fn segments(dir: &Path) -> io::Result<Vec<(Lsn, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let start = name
            .strip_prefix("wal-")
            .and_then(|rest| rest.strip_suffix(".log"))
            .and_then(|digits| digits.parse::<Lsn>().ok());
        if let Some(start) = start {
            found.push((start, path));
        }
    }
    found.sort();
    Ok(found)
}

/// How far the log is durable, or that it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durable {
    Upto(Lsn),
    Failed,
}

/// The segment being appended to.
#[derive(Debug)]
struct Tail {
    file: Arc<File>,
    start: Lsn,
    /// End of the last complete record.
    end: Lsn,
    has_failed: bool,
}

/// State shared between appenders and the sync thread.
#[derive(Debug)]
struct Shared {
    tail: Mutex<Tail>,
    /// Signalled when bytes were appended (for [`FsyncPolicy::Always`]) or
    /// when the log closes.
    appended: Condvar,
    is_closing: Mutex<bool>,
    durable: watch::Sender<Durable>,
}

/// The log, open for appending.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    policy: FsyncPolicy,
    segment_bytes: u64,
    shared: Arc<Shared>,
    syncer: Mutex<Option<thread::JoinHandle<()>>>,
}

/// Exclusive right to append, held while a batch is applied and logged.
pub struct AppendGuard<'a> {
    wal: &'a Wal,
    tail: MutexGuard<'a, Tail>,
}

impl AppendGuard<'_> {
    /// Appends the batch `events` applied at `applied_at` (nothing when
    /// `events` is empty) and returns the position an acknowledgement must
    /// wait for: the end of the log, which covers every batch applied before.
    pub fn append(
        mut self,
        applied_at: UnixTime,
        events: &[Event],
    ) -> Result<Lsn, DurabilityError> {
        if self.tail.has_failed {
            return Err(DurabilityError::Failed);
        }
        if !events.is_empty() {
            let payload = postcard::to_stdvec(&WalBatchRef { applied_at, events })
                .map_err(|e| DurabilityError::Encode(e.to_string()))?;
            let record = encode_record(&payload);
            if let Err(error) = self.write(&record) {
                self.tail.has_failed = true;
                self.wal.shared.durable.send_replace(Durable::Failed);
                return Err(DurabilityError::Io(format!(
                    "appending to the log: {error}"
                )));
            }
        }
        let end = self.tail.end;
        drop(self.tail);
        match self.wal.policy {
            FsyncPolicy::Never => {
                self.wal.shared.durable.send_modify(|d| {
                    if let Durable::Upto(upto) = d {
                        *upto = (*upto).max(end);
                    }
                });
            }
            FsyncPolicy::Always => self.wal.shared.appended.notify_one(),
            FsyncPolicy::Interval => {}
        }
        Ok(end)
    }

    /// Writes one record, first moving to a new segment when the current
    /// one is full.
    fn write(&mut self, record: &[u8]) -> io::Result<()> {
        let used = self.tail.end - self.tail.start;
        if used + record.len() as u64 > self.wal.segment_bytes && used > SEGMENT_MAGIC.len() as u64
        {
            if self.wal.policy != FsyncPolicy::Never {
                self.tail.file.sync_data()?;
            }
            let end = self.tail.end;
            self.tail.file = Arc::new(create_segment(&self.wal.dir, end)?);
            self.tail.start = end;
            self.tail.end = end + SEGMENT_MAGIC.len() as u64;
        }
        (&*self.tail.file).write_all(record)?;
        self.tail.end += record.len() as u64;
        Ok(())
    }
}

/// Creates the segment starting at `start`, with its magic, and makes its
/// name durable.
fn create_segment(dir: &Path, start: Lsn) -> io::Result<File> {
    let path = dir.join(segment_name(start));
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)?;
    file.write_all(SEGMENT_MAGIC)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

impl Wal {
    /// Opens the log in `dir` for appending in a new segment starting at
    /// `end`, the end of the last valid record (as recovery found it).
    pub fn open(
        dir: &Path,
        end: Lsn,
        policy: FsyncPolicy,
        fsync_interval: Duration,
        segment_bytes: u64,
    ) -> Result<Wal, DurabilityError> {
        let io = |what: &str, e: io::Error| DurabilityError::Io(format!("{what}: {e}"));
        fs::create_dir_all(dir).map_err(|e| io("creating the log directory", e))?;
        let file = create_segment(dir, end).map_err(|e| io("creating a log segment", e))?;
        let start_end = end + SEGMENT_MAGIC.len() as u64;
        let (durable, _) = watch::channel(Durable::Upto(start_end));
        let shared = Arc::new(Shared {
            tail: Mutex::new(Tail {
                file: Arc::new(file),
                start: end,
                end: start_end,
                has_failed: false,
            }),
            appended: Condvar::new(),
            is_closing: Mutex::new(false),
            durable,
        });
        let syncer = match policy {
            FsyncPolicy::Never => None,
            FsyncPolicy::Always | FsyncPolicy::Interval => {
                let shared = shared.clone();
                Some(
                    thread::Builder::new()
                        .name("mora-wal-sync".into())
                        .spawn(move || sync_loop(&shared, policy, fsync_interval))
                        .map_err(|e| io("starting the log sync thread", e))?,
                )
            }
        };
        Ok(Wal {
            dir: dir.to_owned(),
            policy,
            segment_bytes,
            shared,
            syncer: Mutex::new(syncer),
        })
    }

    /// Takes the exclusive right to append; apply the batch, then append it.
    pub fn begin(&self) -> AppendGuard<'_> {
        AppendGuard {
            wal: self,
            tail: lock(&self.shared.tail),
        }
    }

    /// The end of the log: every batch applied so far is logged before it.
    pub fn end(&self) -> Lsn {
        lock(&self.shared.tail).end
    }

    /// Waits until the log is durable up to `lsn` by the fsync policy.
    pub async fn wait_durable(&self, lsn: Lsn) -> Result<(), DurabilityError> {
        let mut durable = self.shared.durable.subscribe();
        let reached = durable
            .wait_for(|d| match d {
                Durable::Upto(upto) => *upto >= lsn,
                Durable::Failed => true,
            })
            .await
            .map(|d| *d);
        match reached {
            Ok(Durable::Upto(_)) => Ok(()),
            Ok(Durable::Failed) | Err(_) => Err(DurabilityError::Failed),
        }
    }

    /// Removes the segments that end at or before `lsn`: a snapshot covers
    /// them. Returns how many were removed.
    pub fn remove_covered(&self, lsn: Lsn) -> Result<usize, DurabilityError> {
        let io = |e: io::Error| DurabilityError::Io(format!("removing covered segments: {e}"));
        let current = lock(&self.shared.tail).start;
        let all = segments(&self.dir).map_err(io)?;
        let mut removed = 0;
        for pair in all.windows(2) {
            let ((start, path), (next_start, _)) = (&pair[0], &pair[1]);
            if *next_start <= lsn && *start < current {
                fs::remove_file(path).map_err(io)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Makes everything appended durable and stops the sync thread.
    pub fn close(&self) -> Result<(), DurabilityError> {
        *lock(&self.shared.is_closing) = true;
        self.shared.appended.notify_all();
        if let Some(syncer) = lock(&self.syncer).take() {
            let _ = syncer.join();
        }
        let tail = lock(&self.shared.tail);
        if self.policy != FsyncPolicy::Never && !tail.has_failed {
            tail.file
                .sync_data()
                .map_err(|e| DurabilityError::Io(format!("syncing the log: {e}")))?;
        }
        Ok(())
    }
}

/// Locks `mutex`, carrying on past a panic of another holder: the log's state
/// stays consistent between statements.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes appended bytes durable: right away for [`FsyncPolicy::Always`]
/// (one fsync covers every batch appended meanwhile), every interval for
/// [`FsyncPolicy::Interval`].
fn sync_loop(shared: &Shared, policy: FsyncPolicy, interval: Duration) {
    loop {
        let is_closing = {
            let closing = lock(&shared.is_closing);
            let closing = match policy {
                FsyncPolicy::Always => {
                    let is_behind = || {
                        let end = lock(&shared.tail).end;
                        matches!(*shared.durable.borrow(), Durable::Upto(upto) if upto < end)
                    };
                    if !*closing && !is_behind() {
                        shared
                            .appended
                            .wait_timeout(closing, Duration::from_millis(100))
                            .map(|(guard, _)| guard)
                            .unwrap_or_else(|poisoned| poisoned.into_inner().0)
                    } else {
                        closing
                    }
                }
                _ => {
                    drop(closing);
                    thread::sleep(interval);
                    lock(&shared.is_closing)
                }
            };
            *closing
        };

        let (file, end, has_failed) = {
            let tail = lock(&shared.tail);
            (tail.file.clone(), tail.end, tail.has_failed)
        };
        let is_behind = matches!(*shared.durable.borrow(), Durable::Upto(upto) if upto < end);
        if is_behind && !has_failed {
            match file.sync_data() {
                Ok(()) => {
                    shared.durable.send_modify(|d| {
                        if let Durable::Upto(upto) = d {
                            *upto = (*upto).max(end);
                        }
                    });
                }
                Err(error) => {
                    tracing::error!(%error, "Write-ahead log sync failed; ingest stops");
                    lock(&shared.tail).has_failed = true;
                    shared.durable.send_replace(Durable::Failed);
                }
            }
        }
        if is_closing {
            return;
        }
    }
}

/// Why reading a segment stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The file ends inside a record: a write that never finished.
    Torn,
    /// A record's length or checksum is wrong, or its payload does not decode.
    Corrupt,
}

/// What reading the log from a position found.
#[derive(Debug, Default)]
pub struct LogTail {
    /// End of the last valid record.
    pub end: Lsn,
    /// Bytes removed after the last valid record, and why reading stopped.
    pub cut: Option<(u64, Damage)>,
    /// Bytes missing between `from` and the first segment: the log was
    /// removed up to a snapshot that could not be read.
    pub missing: u64,
}

/// Calls `visit` with every valid record at or after `from`, in order, then
/// cuts the log after the last valid one: a damaged record and everything
/// after it are removed, never replayed. `from` must be a record boundary.
pub fn replay(
    dir: &Path,
    from: Lsn,
    mut visit: impl FnMut(Lsn, WalBatch),
) -> Result<LogTail, DurabilityError> {
    let io = |what: &str, e: io::Error| DurabilityError::Io(format!("{what}: {e}"));
    let all = segments(dir).map_err(|e| io("listing log segments", e))?;
    let mut tail = LogTail {
        end: from,
        ..LogTail::default()
    };
    let mut next_expected: Option<Lsn> = None;
    for (i, (start, path)) in all.iter().enumerate() {
        let next_start = all.get(i + 1).map(|(s, _)| *s);
        if next_start.is_some_and(|next| next <= from) {
            continue;
        }
        let len = fs::metadata(path)
            .map_err(|e| io("sizing a segment", e))?
            .len();

        // After damage or a gap nothing can be trusted to follow on.
        if tail.cut.is_some() || next_expected.is_some_and(|expected| *start != expected) {
            fs::remove_file(path).map_err(|e| io("removing a segment after damage", e))?;
            let (bytes, damage) = tail.cut.unwrap_or((0, Damage::Corrupt));
            tail.cut = Some((bytes + len, damage));
            continue;
        }
        if next_expected.is_none() && *start > from {
            tail.missing = start - from;
        }

        let skip = from.saturating_sub(*start);
        let (valid_len, damage) = read_segment(path, skip, |offset, batch| {
            visit(start + offset, batch);
        })
        .map_err(|e| io("reading a log segment", e))?;
        // Never before `from`: new records must not fall inside what the
        // snapshot already covers.
        tail.end = (start + valid_len).max(from);
        if let Some(damage) = damage {
            if valid_len < SEGMENT_MAGIC.len() as u64 {
                fs::remove_file(path).map_err(|e| io("removing a damaged segment", e))?;
            } else {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| io("opening a damaged segment", e))?;
                file.set_len(valid_len)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io("cutting a damaged segment", e))?;
            }
            tail.cut = Some((len - valid_len, damage));
        }
        next_expected = Some(tail.end);
    }
    Ok(tail)
}

/// Reads the records of one segment from byte `skip` (at least past the
/// magic); returns the end of the last valid record and, if reading stopped
/// early, why.
fn read_segment(
    path: &Path,
    skip: u64,
    visit: impl FnMut(u64, WalBatch),
) -> io::Result<(u64, Option<Damage>)> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut magic = [0u8; SEGMENT_MAGIC.len()];
    if len < magic.len() as u64 {
        return Ok((0, Some(Damage::Torn)));
    }
    file.read_exact(&mut magic)?;
    if &magic != SEGMENT_MAGIC {
        return Ok((0, Some(Damage::Corrupt)));
    }
    let offset = skip.max(magic.len() as u64);
    if offset > len {
        return Ok((len, Some(Damage::Torn)));
    }
    file.seek(SeekFrom::Start(offset))?;
    read_records(
        io::BufReader::with_capacity(1 << 20, file),
        offset,
        len,
        visit,
    )
}

/// Reads records from `reader`, positioned at byte `offset` of a segment
/// `len` bytes long; returns the end of the last valid record and, if
/// reading stopped early, why. Every record is checked before its batch is
/// visited: nothing damaged is ever visited.
pub fn read_records(
    mut reader: impl Read,
    mut offset: u64,
    len: u64,
    mut visit: impl FnMut(u64, WalBatch),
) -> io::Result<(u64, Option<Damage>)> {
    let mut payload = Vec::new();
    loop {
        if offset == len {
            return Ok((offset, None));
        }
        if len - offset < RECORD_HEADER_LEN as u64 {
            return Ok((offset, Some(Damage::Torn)));
        }
        let mut header = [0u8; RECORD_HEADER_LEN];
        reader.read_exact(&mut header)?;
        let record_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if record_len > MAX_RECORD_LEN {
            return Ok((offset, Some(Damage::Corrupt)));
        }
        if len - offset - (RECORD_HEADER_LEN as u64) < record_len as u64 {
            return Ok((offset, Some(Damage::Torn)));
        }
        payload.resize(record_len, 0);
        reader.read_exact(&mut payload)?;
        if crc32c::crc32c_append(crc32c::crc32c(&header[..4]), &payload) != crc {
            return Ok((offset, Some(Damage::Corrupt)));
        }
        let Some(batch) = decode_batch(&payload) else {
            return Ok((offset, Some(Damage::Corrupt)));
        };
        visit(offset, batch);
        offset += (RECORD_HEADER_LEN + record_len) as u64;
    }
}

/// The batch a record's payload holds, or `None` if it does not decode
/// (including values the domain types refuse, such as a malformed currency).
pub fn decode_batch(payload: &[u8]) -> Option<WalBatch> {
    postcard::from_bytes::<WalBatch>(payload).ok()
}
