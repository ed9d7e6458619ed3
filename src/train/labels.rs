//! Labels files: decision points whose outcome is known from outside the event
//! history (a bureau's default flag, a warehouse's collection outcome), with
//! the set each belongs to.
//!
//! CSV with the header `debtor_id,decision_at,paid,split`; `decision_at` is
//! RFC 3339, `paid` is `1`/`0` or `true`/`false`, `split` is `train` or
//! `test`. Fields are not quoted, so debtor ids must not contain commas.

use std::io::BufRead;
use std::path::Path;

use super::replay::Label;
use crate::events::UnixTime;

/// The header a labels file starts with.
pub const HEADER: &str = "debtor_id,decision_at,paid,split";

/// Reads a labels file; errors name the file, line and column.
pub fn read_labels(path: &Path) -> Result<Vec<Label>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(std::io::BufReader::new(file)).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse(reader: impl BufRead) -> Result<Vec<Label>, String> {
    let mut lines = reader.lines();
    let header = lines
        .next()
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    if header.trim_end() != HEADER {
        return Err(format!(
            "line 1: the header must be {HEADER:?}, found {header:?}"
        ));
    }
    let mut labels = Vec::new();
    for (i, line) in lines.enumerate() {
        let number = i + 2;
        let line = line.map_err(|e| format!("line {number}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        labels.push(parse_line(&line).map_err(|e| format!("line {number}: {e}"))?);
    }
    Ok(labels)
}

fn parse_line(line: &str) -> Result<Label, String> {
    let fields: Vec<&str> = line.trim_end().split(',').collect();
    let [debtor_id, decision_at, paid, split] = fields[..] else {
        return Err(format!("expected 4 fields, found {}", fields.len()));
    };
    if debtor_id.is_empty() {
        return Err("debtor_id: is empty".into());
    }
    let at = chrono::DateTime::parse_from_rfc3339(decision_at)
        .map_err(|e| format!("decision_at: {decision_at:?} is not RFC 3339 ({e})"))?;
    let is_paid = match paid {
        "1" | "true" => true,
        "0" | "false" => false,
        other => return Err(format!("paid: must be 1, 0, true or false, got {other:?}")),
    };
    let held_out = match split {
        "train" => false,
        "test" => true,
        other => return Err(format!("split: must be train or test, got {other:?}")),
    };
    Ok(Label {
        debtor_id: debtor_id.to_owned(),
        at: UnixTime(at.timestamp()),
        is_paid,
        held_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_labels_file_reads_into_labels() {
        let text = format!(
            "{HEADER}\nd1,2005-10-01T00:00:00Z,1,train\n\nd2,2005-10-01T08:00:00+08:00,false,test\n"
        );
        let labels = parse(text.as_bytes()).unwrap();
        assert_eq!(labels.len(), 2);
        assert_eq!(labels[0].at, labels[1].at);
        assert!(labels[0].is_paid && !labels[0].held_out);
        assert!(!labels[1].is_paid && labels[1].held_out);
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let cases = [
            ("a,b,c\n", "line 1: the header must be"),
            ("HEADER\nd1,2005-10-01,1,train\n", "line 2: decision_at"),
            (
                "HEADER\nd1,2005-10-01T00:00:00Z,yes,train\n",
                "line 2: paid",
            ),
            (
                "HEADER\nd1,2005-10-01T00:00:00Z,1,validate\n",
                "line 2: split",
            ),
            (
                "HEADER\nd1,2005-10-01T00:00:00Z,1\n",
                "line 2: expected 4 fields",
            ),
        ];
        for (text, expected) in cases {
            let text = text.replace("HEADER", HEADER);
            let err = parse(text.as_bytes()).unwrap_err();
            assert!(
                err.starts_with(expected),
                "{err} should start with {expected}"
            );
        }
    }
}
