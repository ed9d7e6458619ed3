//! Event files: JSON Lines, one `mora.v1.Event` per line in the proto3 JSON
//! mapping — the format a warehouse export can produce and `mora simulate`
//! writes. A file whose name ends in `.gz` is gzip-compressed.
//!
//! Reading checks every event exactly as ingest does; a line that fails names
//! its file, line and field. Enum values may be written with or without their
//! prefix (`"CHANNEL_CALL"` or `"CALL"`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde_json::Value;

use super::convert::{self, RejectedEvent};
use super::proto;
use crate::events::{Event, EventLimits, UnixTime};

/// Why an event file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum EventFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}:{line}: not a mora.v1.Event in JSON: {source}")]
    Json {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{path}:{line}: event {event_id:?}: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        event_id: String,
        reason: String,
    },
}

const WRITE_BUFFER_BYTES: usize = 256 * 1024;

fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Enum fields (single or repeated) and their prefixes, by JSON path under
/// the event, under both the JSON and the proto field names.
const ENUM_FIELDS: [(&str, &str, &str); 8] = [
    ("contact", "channel", "CHANNEL_"),
    ("contact", "outcome", "CONTACT_OUTCOME_"),
    ("optOut", "channel", "CHANNEL_"),
    ("opt_out", "channel", "CHANNEL_"),
    ("profile", "authorisedChannels", "CHANNEL_"),
    ("profile", "authorised_channels", "CHANNEL_"),
    ("accountStatus", "standing", "ACCOUNT_STANDING_"),
    ("account_status", "standing", "ACCOUNT_STANDING_"),
];

/// Adds the enum prefix where a value was written without it.
fn prefix_enums(value: &mut Value) {
    let add_prefix = |name: &mut Value, prefix: &str| {
        if let Value::String(name) = name
            && !name.starts_with(prefix)
        {
            *name = format!("{prefix}{name}");
        }
    };
    for (message, field, prefix) in ENUM_FIELDS {
        match value.get_mut(message).and_then(|m| m.get_mut(field)) {
            Some(Value::Array(names)) => names.iter_mut().for_each(|n| add_prefix(n, prefix)),
            Some(name) => add_prefix(name, prefix),
            None => {}
        }
    }
}

/// Parses one line of an event file into a wire event (not yet checked).
pub fn parse_line(line: &str) -> Result<proto::Event, serde_json::Error> {
    let mut value: Value = serde_json::from_str(line)?;
    prefix_enums(&mut value);
    serde_json::from_value(value)
}

/// Reads every event of the file at `path`, checked as ingest checks them,
/// and hands each to `each`. Returns the number of events read.
pub fn read(
    path: &Path,
    limits: &EventLimits,
    mut each: impl FnMut(Event),
) -> Result<usize, EventFileError> {
    let io_error = |source| EventFileError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let reader: Box<dyn BufRead> = if is_gzip(path) {
        Box::new(BufReader::new(MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };

    let now = UnixTime::now();
    let mut count = 0;
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(io_error)?;
        if line.trim().is_empty() {
            continue;
        }
        let line_number = index + 1;
        let message = parse_line(&line).map_err(|source| EventFileError::Json {
            path: path.to_owned(),
            line: line_number,
            source,
        })?;
        let event =
            convert::event(message, limits, now).map_err(|RejectedEvent { event_id, error }| {
                EventFileError::Invalid {
                    path: path.to_owned(),
                    line: line_number,
                    event_id,
                    reason: error.to_string(),
                }
            })?;
        each(event);
        count += 1;
    }
    Ok(count)
}

/// Where an event writer's bytes go.
enum Sink {
    Plain(BufWriter<File>),
    Gzip(BufWriter<GzEncoder<File>>),
}

/// Writes events to a file, one JSON line each, gzip-compressed when the file
/// name ends in `.gz`. Call [`EventWriter::finish`] to complete the file.
pub struct EventWriter {
    path: PathBuf,
    sink: Sink,
}

impl EventWriter {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<EventWriter, EventFileError> {
        let file = File::create(path).map_err(|source| EventFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        // The buffer sits in front of the compressor: serde writes many tiny
        // pieces, and each write into a compressor costs far more than a copy.
        let sink = if is_gzip(path) {
            let encoder = GzEncoder::new(file, Compression::fast());
            Sink::Gzip(BufWriter::with_capacity(WRITE_BUFFER_BYTES, encoder))
        } else {
            Sink::Plain(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file))
        };
        Ok(EventWriter {
            path: path.to_owned(),
            sink,
        })
    }

    fn io_error(&self, source: io::Error) -> EventFileError {
        EventFileError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends one event.
    pub fn write(&mut self, event: &Event) -> Result<(), EventFileError> {
        let message = convert::event_to_proto(event);
        let out: &mut dyn Write = match &mut self.sink {
            Sink::Plain(out) => out,
            Sink::Gzip(out) => out,
        };
        let written = serde_json::to_writer(&mut *out, &message)
            .map_err(io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        written.map_err(|e| self.io_error(e))
    }

    /// Writes what is buffered and, for gzip, the trailer; then syncs the file.
    pub fn finish(self) -> Result<(), EventFileError> {
        let done = match self.sink {
            Sink::Plain(out) => out.into_inner().map_err(|e| e.into_error()),
            Sink::Gzip(out) => out
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(GzEncoder::finish),
        };
        done.and_then(|file| file.sync_all())
            .map_err(|source| EventFileError::Io {
                path: self.path,
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AccountStatus, EventKind};
    use crate::sim::{self, SimConfig};

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("mora-event-file-{}-{name}", std::process::id()))
    }

    #[test]
    fn simulated_events_round_trip_through_plain_and_gzip_files() {
        let config = SimConfig {
            debtors: 30,
            ..SimConfig::default()
        };
        let mut events: Vec<Event> = sim::portfolio(&config)
            .into_iter()
            .flat_map(|d| d.events)
            .collect();
        // The simulator reports no account statuses.
        let status = Event {
            event_id: "status-1".into(),
            kind: EventKind::AccountStatus {
                status: AccountStatus::Delinquent { cycles: 3 },
            },
            ..events[0].clone()
        };
        events.push(status);
        for name in ["events.jsonl", "events.jsonl.gz"] {
            let path = temp(name);
            let mut writer = EventWriter::create(&path).unwrap();
            for event in &events {
                writer.write(event).unwrap();
            }
            writer.finish().unwrap();
            let mut read_back = Vec::new();
            let count = read(&path, &EventLimits::default(), |e| read_back.push(e)).unwrap();
            assert_eq!(count, events.len());
            assert_eq!(read_back, events);
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn lines_use_the_proto_json_mapping_and_accept_short_enum_names() {
        let line = r#"{"eventId":"e1","debtorId":"d1","occurredAt":"2026-03-01T10:00:00Z","contact":{"channel":"SMS","outcome":"CONTACT_OUTCOME_REPLIED"}}"#;
        let message = parse_line(line).unwrap();
        assert_eq!(message.event_id, "e1");
        let Some(proto::event::Kind::Contact(contact)) = message.kind else {
            panic!("parsed {message:?}");
        };
        assert_eq!(contact.channel, proto::Channel::Sms as i32);
        assert_eq!(contact.outcome, proto::ContactOutcome::Replied as i32);

        let line = r#"{"eventId":"e2","debtorId":"d1","occurredAt":"2026-03-05T00:00:00Z","accountStatus":{"standing":"DELINQUENT","cyclesPastDue":2}}"#;
        let Some(proto::event::Kind::AccountStatus(status)) = parse_line(line).unwrap().kind else {
            panic!("not an account status");
        };
        assert_eq!(status.standing, proto::AccountStanding::Delinquent as i32);
        assert_eq!(status.cycles_past_due, 2);

        let line = r#"{"eventId":"e3","debtorId":"d1","occurredAt":"2026-03-05T00:00:00Z","profile":{"timezone":"America/Bogota","country":"CO","authorisedChannels":["SMS","CHANNEL_EMAIL"]}}"#;
        let Some(proto::event::Kind::Profile(profile)) = parse_line(line).unwrap().kind else {
            panic!("not a profile");
        };
        let email = proto::Channel::Email as i32;
        assert_eq!(
            profile.authorised_channels,
            [proto::Channel::Sms as i32, email]
        );
    }

    #[test]
    fn a_bad_line_is_reported_with_its_file_line_and_field() {
        let path = temp("bad.jsonl");
        let good = r#"{"eventId":"e1","debtorId":"d1","occurredAt":"2026-03-01T10:00:00Z","optOut":{"channel":"EMAIL"}}"#;
        let bad = r#"{"eventId":"e2","debtorId":"d1","occurredAt":"2026-03-01T10:00:00Z","payment":{"amount":{"minorUnits":"-5","currency":"USD"}}}"#;
        std::fs::write(&path, format!("{good}\n\n{bad}\n")).unwrap();
        let err = read(&path, &EventLimits::default(), |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                ":3: event \"e2\": payment.amount.minor_units: must be greater than 0, got -5"
            ),
            "{err}"
        );
        std::fs::write(&path, "{not json\n").unwrap();
        let err = read(&path, &EventLimits::default(), |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains(":1: not a mora.v1.Event in JSON"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
