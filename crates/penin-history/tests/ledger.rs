//! The audit ledger: round trips across reopens, the exact bytes of a line, torn tails,
//! damage, Python's check, power loss and failed writes.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use penin_codec::{Map, Value};
use penin_history::ledger::{self, Error, Event, Fault, GENESIS, Ledger, Line, Summary, Torn};
use penin_store::testing::{Fault as IoFault, FaultyFs, Op};
use proptest::prelude::*;

/// An event with fields of every kind, non-ASCII text among them.
fn event(i: u64) -> Event {
    let mut nested = Map::new();
    nested.insert("a", Value::from(-1_i64));
    nested.insert("b", Value::Array(vec![]));
    let mut fields = Map::new();
    fields.insert("journal", Value::from(i64::try_from(i).unwrap()));
    fields.insert("key", Value::from(format!("k{i} é ✓ 😀 \"q\" \\ \t")));
    fields.insert("dimensions", Value::from(384_i64));
    fields.insert(
        "list",
        Value::Array(vec![
            Value::Null,
            Value::Bool(true),
            Value::from(1.5),
            Value::from(1e-05),
        ]),
    );
    fields.insert("nested", Value::from(nested));
    Event::new(
        format!("2026-11-29T07:05:{:02}.123456Z", i % 60),
        if i.is_multiple_of(2) { "put" } else { "delete" },
        fields,
        ledger::digest(&i.to_le_bytes()),
    )
}

fn events(range: std::ops::Range<u64>) -> Vec<Event> {
    range.map(event).collect()
}

/// A ledger of `n` lines at `path`, synced; its lines.
fn write_ledger(path: &Path, n: u64) -> Vec<Line> {
    let (mut ledger, torn) = Ledger::open(path).unwrap();
    assert_eq!(torn, None);
    let lines = ledger.append(&events(1..n + 1)).unwrap();
    ledger.sync().unwrap();
    lines
}

fn damaged(error: &Error) -> (Option<u64>, u64, &Fault) {
    match error {
        Error::Damaged {
            seq, offset, fault, ..
        } => (*seq, *offset, fault),
        other => panic!("expected damage, got {other:?}"),
    }
}

#[test]
fn batches_across_reopens_chain_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json.ledger");
    let mut written = Vec::new();
    let mut next = 1;
    for batch in [1, 3, 0, 5, 2] {
        let (mut ledger, torn) = Ledger::open(&path).unwrap();
        assert_eq!(torn, None);
        assert_eq!(ledger.next_seq(), next);
        assert_eq!(
            ledger.head(),
            written.last().map_or(GENESIS, |l: &Line| l.hash)
        );
        assert_eq!(ledger.last(), written.last());
        // Two appends on one handle, then a reopen.
        for part in [batch / 2, batch - batch / 2] {
            let lines = ledger.append(&events(next..next + part)).unwrap();
            assert_eq!(lines.len() as u64, part);
            for (line, seq) in lines.iter().zip(next..) {
                assert_eq!(line.seq, seq);
                assert_eq!(line.event, event(seq).event);
            }
            next += part;
            written.extend(lines);
        }
        ledger.sync().unwrap();
        assert_eq!(ledger.next_seq(), next);
        assert_eq!(ledger.head(), written.last().unwrap().hash);
        assert_eq!(ledger.last(), written.last());
        assert_eq!(ledger.len(), fs::metadata(&path).unwrap().len());
    }
    assert_eq!(written.len(), 11);
    for pair in written.windows(2) {
        assert_eq!(pair[1].prev, pair[0].hash);
    }
    assert_eq!(written[0].prev, GENESIS);

    let read = ledger::read(&path).unwrap();
    assert_eq!(
        read, written,
        "read gives back what append returned, offsets included"
    );
    for (line, seq) in read.iter().zip(1..) {
        let event = event(seq);
        assert_eq!(
            (&line.time, &line.event, &line.fields, line.digest),
            (&event.time, &event.event, &event.fields, event.digest)
        );
    }
    let summary = ledger::verify(&path).unwrap();
    assert_eq!(
        summary,
        Summary {
            lines: 11,
            head: written[10].hash,
            len: fs::metadata(&path).unwrap().len(),
            torn: None,
        }
    );
}

#[cfg(unix)]
#[test]
fn a_new_ledger_is_private_and_its_entry_synced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ledger");
    let (ledger, torn) = Ledger::open_in(FaultyFs::new(), &path).unwrap();
    assert_eq!(torn, None);
    assert_eq!(
        ledger.fs().ops(),
        [Op::OpenAppend, Op::CreateNew, Op::SyncDir, Op::OpenAppend]
    );
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        (ledger.next_seq(), ledger.head(), ledger.last()),
        (1, GENESIS, None)
    );
    assert!(ledger.is_empty());
}

#[test]
fn an_append_is_one_write_and_a_sync_one_sync_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ledger");
    write_ledger(&path, 2);
    let (mut ledger, _) = Ledger::open_in(FaultyFs::new(), &path).unwrap();
    let opened = ledger.fs().ops().len();
    ledger.append(&events(3..10)).unwrap();
    assert_eq!(ledger.fs().ops()[opened..], [Op::Write]);
    ledger.sync().unwrap();
    assert_eq!(ledger.fs().ops()[opened..], [Op::Write, Op::SyncData]);
    // An empty batch writes nothing.
    assert_eq!(ledger.append(&[]).unwrap(), []);
    assert_eq!(ledger.fs().ops().len(), opened + 2);
    assert_eq!(ledger::verify(&path).unwrap().lines, 9);
}

/// Lowercase hex, written here apart from `ledger::hex`.
fn lowercase_hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, byte| {
        write!(text, "{byte:02x}").unwrap();
        text
    })
}

#[test]
fn golden_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ledger");
    let mut fields = Map::new();
    fields.insert("journal", Value::from(17_i64));
    fields.insert("key", Value::from("caf\u{e9} \u{1f600}"));
    fields.insert("dimensions", Value::from(384_i64));
    fields.insert("score", Value::from(0.5));
    let first = Event::new("2026-11-29T07:05:40.123456Z", "put", fields, [0xab; 32]);
    let second = Event::new("2026-11-29T07:05:41Z", "checkpoint", Map::new(), [0x01; 32]);
    let (mut ledger, _) = Ledger::open(&path).unwrap();
    let lines = ledger.append(&[first, second]).unwrap();

    let hashed1 = format!(
        r#"{{"seq":1,"time":"2026-11-29T07:05:40.123456Z","event":"put","journal":17,"key":"caf\u00e9 \ud83d\ude00","dimensions":384,"score":0.5,"digest":"{}","prev":"{}""#,
        "ab".repeat(32),
        "0".repeat(64)
    );
    let hash1 = Blake2b::<U32>::digest(hashed1.as_bytes());
    let hash1 = lowercase_hex(&hash1);
    let hashed2 = format!(
        r#"{{"seq":2,"time":"2026-11-29T07:05:41Z","event":"checkpoint","digest":"{}","prev":"{hash1}""#,
        "01".repeat(32),
    );
    let hash2 = Blake2b::<U32>::digest(hashed2.as_bytes());
    let hash2 = lowercase_hex(&hash2);
    let expected = format!("{hashed1},\"hash\":\"{hash1}\"}}\n{hashed2},\"hash\":\"{hash2}\"}}\n");
    assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    assert_eq!(ledger::hex(&lines[0].hash), hash1);
    assert_eq!(ledger::hex(&lines[1].hash), hash2);
    assert_eq!(lines[1].offset, hashed1.len() as u64 + 76);
}

#[test]
fn reserved_fields_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ledger");
    write_ledger(&path, 1);
    let before = fs::read(&path).unwrap();
    let (mut ledger, _) = Ledger::open(&path).unwrap();
    for key in ledger::RESERVED {
        let mut bad = event(3);
        bad.fields.insert(key, Value::from(1_i64));
        let error = ledger.append(&[event(2), bad]).unwrap_err();
        assert!(
            matches!(&error, Error::Reserved { key: k } if k == key),
            "{error:?}"
        );
    }
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(ledger.next_seq(), 2);
    ledger.append(&[event(2)]).unwrap();
    assert_eq!(ledger::verify(&path).unwrap().lines, 2);
}

#[test]
fn a_missing_ledger_is_empty_and_sound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.ledger");
    assert_eq!(ledger::read(&path).unwrap(), []);
    assert_eq!(
        ledger::verify(&path).unwrap(),
        Summary {
            lines: 0,
            head: GENESIS,
            len: 0,
            torn: None
        }
    );
    assert!(!path.exists(), "reading creates nothing");
}

#[test]
fn a_torn_tail_at_every_offset_is_cut_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.ledger");
    let lines = write_ledger(&source, 3);
    let bytes = fs::read(&source).unwrap();
    let last = lines[2].offset;
    let path = dir.path().join("s.ledger");
    for cut in last + 1..bytes.len() as u64 {
        let image = &bytes[..cut as usize];
        fs::write(&path, image).unwrap();
        let torn = Torn {
            offset: last,
            bytes: cut - last,
        };
        // Before the cut, verify sees two sound lines and the torn tail.
        let summary = ledger::verify(&path).unwrap();
        assert_eq!(
            (summary.lines, summary.len, summary.torn),
            (2, last, Some(torn))
        );
        assert_eq!(ledger::read(&path).unwrap(), lines[..2]);

        let (mut ledger, found) = Ledger::open(&path).unwrap();
        assert_eq!(found, Some(torn), "cut at {cut}");
        assert_eq!(
            fs::read(&path).unwrap(),
            bytes[..last as usize],
            "cut at {cut}"
        );
        assert_eq!((ledger.next_seq(), ledger.head()), (3, lines[1].hash));
        // The chain goes on from the line before the torn one.
        let again = ledger.append(&[event(3)]).unwrap();
        assert_eq!(again[0].prev, lines[1].hash);
        assert_eq!(ledger::verify(&path).unwrap().torn, None);
        assert_eq!(ledger::verify(&path).unwrap().lines, 3);
    }
    // A first line torn: nothing is left.
    fs::write(&path, &bytes[..10]).unwrap();
    let (ledger, found) = Ledger::open(&path).unwrap();
    assert_eq!(
        found,
        Some(Torn {
            offset: 0,
            bytes: 10
        })
    );
    assert_eq!((ledger.next_seq(), ledger.head()), (1, GENESIS));
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn a_one_byte_change_in_any_line_is_found_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ledger");
    let lines = write_ledger(&path, 4);
    let bytes = fs::read(&path).unwrap();
    let ends: Vec<u64> = lines
        .iter()
        .skip(1)
        .map(|line| line.offset)
        .chain([bytes.len() as u64])
        .collect();
    for (line, end) in lines.iter().zip(ends) {
        for at in line.offset..end {
            // Every byte of line 1 to 3, newline included; of the last line, all but its
            // newline, whose loss makes it a torn tail (below).
            if at == bytes.len() as u64 - 1 {
                continue;
            }
            for change in [0x01, 0x80] {
                let mut changed = bytes.clone();
                changed[at as usize] ^= change;
                fs::write(&path, &changed).unwrap();
                let error = ledger::verify(&path).unwrap_err();
                let (seq, offset, _) = damaged(&error);
                assert_eq!(
                    (seq, offset),
                    (Some(line.seq), line.offset),
                    "byte {at} ^ {change:#x}: {error:?}"
                );
            }
        }
    }
    let mut changed = bytes.clone();
    *changed.last_mut().unwrap() = b' ';
    fs::write(&path, &changed).unwrap();
    let summary = ledger::verify(&path).unwrap();
    assert_eq!(summary.lines, 3);
    assert_eq!(summary.torn.unwrap().offset, lines[3].offset);
}

#[test]
fn a_broken_chain_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ledger");
    write_ledger(&path, 3);
    let text = fs::read_to_string(&path).unwrap();
    let rows: Vec<(String, u64, &str)> = vec![
        // A line removed: the next one's seq and prev are wrong.
        (
            text.split_inclusive('\n')
                .enumerate()
                .filter(|(i, _)| *i != 1)
                .map(|(_, l)| l)
                .collect(),
            2,
            "its seq is 3, not 2",
        ),
        // Two lines swapped.
        (
            {
                let l: Vec<&str> = text.lines().collect();
                format!("{}\n{}\n{}\n", l[1], l[0], l[2])
            },
            1,
            "its seq is 2, not 1",
        ),
        // The first line removed.
        (
            text.split_inclusive('\n').skip(1).collect(),
            1,
            "its seq is 2, not 1",
        ),
        // An empty line.
        (text.replacen('\n', "\n\n", 1), 2, "the line is not JSON"),
    ];
    for (changed, seq, message) in rows {
        fs::write(&path, &changed).unwrap();
        let error = ledger::verify(&path).unwrap_err();
        let (found, _, fault) = damaged(&error);
        assert_eq!(
            (found, fault.to_string().as_str()),
            (Some(seq), message),
            "{changed}"
        );
    }

    // A line that follows another ledger's chain: its seq is right, its prev is not.
    let other = dir.path().join("other.ledger");
    let (mut ledger, _) = Ledger::open(&other).unwrap();
    ledger.append(&[event(9), event(1)]).unwrap();
    let second = fs::read_to_string(&other)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    let first = text.lines().next().unwrap();
    fs::write(&path, format!("{first}\n{second}\n")).unwrap();
    let error = ledger::verify(&path).unwrap_err();
    let (seq, offset, fault) = damaged(&error);
    assert_eq!((seq, offset), (Some(2), first.len() as u64 + 1));
    assert!(matches!(fault, Fault::Prev { .. }), "{fault:?}");
    assert!(
        error.to_string().ends_with(&format!(
            "s.ledger: seq 2 at byte {} is damaged",
            first.len() + 1
        )),
        "{error}"
    );
}

#[test]
fn a_damaged_last_line_fails_open_and_is_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ledger");
    let lines = write_ledger(&path, 3);
    let bytes = fs::read(&path).unwrap();
    let last = lines[2].offset as usize;
    for at in last..bytes.len() - 1 {
        for change in [0x01, 0x80] {
            let mut changed = bytes.clone();
            changed[at] ^= change;
            // With a torn tail after it, which is not cut either.
            changed.extend_from_slice(b"{\"seq\":4");
            fs::write(&path, &changed).unwrap();
            let error = Ledger::open(&path).unwrap_err();
            let (seq, offset, fault) = damaged(&error);
            assert_eq!(offset, last as u64, "byte {at} ^ {change:#x}: {error:?}");
            // When the line still parses, the hash is what is wrong and its seq is known
            // (its own, which the change may have hit).
            if let Fault::Hash { .. } = fault {
                assert!(seq.is_some(), "byte {at} ^ {change:#x}");
            }
            assert_eq!(fs::read(&path).unwrap(), changed, "damage is never cut");
        }
    }
    // The message names the line; its source says what is wrong.
    let mut changed = bytes.clone();
    let time = last + bytes[last..].windows(4).position(|w| w == b"2026").unwrap();
    changed[time] = b'3';
    fs::write(&path, &changed).unwrap();
    let error = Ledger::open(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("{}: seq 3 at byte {last} is damaged", path.display())
    );
    let source = std::error::Error::source(&error).unwrap().to_string();
    assert!(source.starts_with("its hash is "), "{source}");
}

#[test]
fn open_reads_the_last_line_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ledger");
    let lines = write_ledger(&path, 3);
    let mut bytes = fs::read(&path).unwrap();
    // Lines 1 and 2 overwritten with garbage: open does not see it, verify does.
    for byte in &mut bytes[..lines[2].offset as usize - 1] {
        *byte = b'x';
    }
    fs::write(&path, &bytes).unwrap();
    let (ledger, torn) = Ledger::open(&path).unwrap();
    assert_eq!(torn, None);
    assert_eq!((ledger.next_seq(), ledger.head()), (4, lines[2].hash));
    assert_eq!(ledger.last(), Some(&lines[2]));
    let (seq, offset, _) = damaged(&ledger::verify(&path).unwrap_err());
    assert_eq!((seq, offset), (Some(1), 0));
    let (seq, _, _) = damaged(&ledger::read(&path).unwrap_err());
    assert_eq!(seq, Some(1));
}

#[test]
fn a_failed_write_poisons_the_ledger_until_it_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ledger");
    write_ledger(&path, 2);
    // The write of the batch writes half of it, then the disk is full.
    let fs = FaultyFs::failing_op(Op::Write, 1, IoFault::Os(28)).short_write();
    let (mut ledger, _) = Ledger::open_in(fs, &path).unwrap();
    // Three lines of unequal length: half of them ends inside the second.
    let error = ledger.append(&events(3..6)).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Io {
                action: "write",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("cannot write {}", path.display())
    );
    // Nothing more goes after a half-written batch.
    ledger.fs().clear();
    for error in [
        ledger.append(&events(3..4)).unwrap_err(),
        ledger.sync().unwrap_err(),
    ] {
        assert!(matches!(error, Error::Poisoned { .. }), "{error:?}");
    }
    assert_eq!(ledger.fs().ops(), [], "a poisoned ledger makes no call");
    drop(ledger);

    // Reopened, the complete lines of the half are kept, the torn one cut.
    let (mut ledger, torn) = Ledger::open(&path).unwrap();
    assert!(torn.is_some());
    let kept = ledger.next_seq() - 1;
    assert_eq!(kept, 3, "half of the batch holds its first line whole");
    let next = ledger.next_seq();
    ledger.append(&events(next..next + 2)).unwrap();
    let summary = ledger::verify(&path).unwrap();
    assert_eq!((summary.lines, summary.torn), (kept + 2, None));
}

#[test]
fn a_failed_sync_poisons_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ledger");
    let fs = FaultyFs::failing_op(Op::SyncData, 1, IoFault::Os(5));
    let (mut ledger, _) = Ledger::open_in(fs, &path).unwrap();
    ledger.append(&events(1..3)).unwrap();
    let error = ledger.sync().unwrap_err();
    assert!(
        matches!(error, Error::Io { action: "sync", .. }),
        "{error:?}"
    );
    let error = ledger.append(&events(3..4)).unwrap_err();
    assert!(matches!(error, Error::Poisoned { .. }), "{error:?}");
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/ledger_check.py")
}

/// Runs the Python check: its exit code and output.
fn python_check(path: &Path) -> (i32, String) {
    let output = Command::new("python3")
        .arg(script())
        .arg(path)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    (output.status.code().unwrap(), stdout)
}

#[test]
fn python_checks_the_chain() {
    if !penin_testkit::python3("python_checks_the_chain", "hashlib cannot check the ledger") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ledger");
    let lines = write_ledger(&path, 5);
    let (mut ledger, _) = Ledger::open(&path).unwrap();
    let mut odd = Map::new();
    odd.insert("nan", Value::from(f64::NAN));
    odd.insert(
        "big",
        penin_codec::from_str("123456789012345678901234567890").unwrap(),
    );
    ledger
        .append(&[Event::new("t", "odd", odd, [0; 32])])
        .unwrap();
    drop(ledger);
    assert_eq!(python_check(&path), (0, "ok 6 lines\n".to_owned()));

    let bytes = fs::read(&path).unwrap();
    // (line, byte in it, replacement, what Python says)
    let rows: [(usize, &str, u8, &str); 5] = [
        (3, "2026", b'3', "its hash does not match its bytes"),
        (1, "\"prev\":\"0", b'1', "its hash does not match its bytes"),
        (4, "{", b'[', "it is not a ledger line"),
        (2, "\"hash", b'H', "it does not end with its hash"),
        (5, "\"seq\":5", b'6', "its hash does not match its bytes"),
    ];
    for (k, needle, replacement, why) in rows {
        let line = &lines[k - 1];
        let start = line.offset as usize;
        let at = start
            + bytes[start..]
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap()
            + needle.len()
            - 1;
        let mut changed = bytes.clone();
        changed[at] = replacement;
        fs::write(&path, &changed).unwrap();
        let (code, out) = python_check(&path);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.starts_with(&format!("bad seq {k} at byte {start}: {why}")),
            "line {k}: {out}"
        );
        let (seq, _, _) = damaged(&ledger::verify(&path).unwrap_err());
        assert_eq!(seq, Some(k as u64), "Rust agrees");
    }

    // A torn tail is reported, not taken for a broken chain.
    let mut torn = bytes.clone();
    torn.extend_from_slice(b"{\"seq\":7,");
    fs::write(&path, &torn).unwrap();
    assert_eq!(
        python_check(&path),
        (
            0,
            format!(
                "ok 6 lines, then a torn tail of 9 bytes at byte {}\n",
                bytes.len()
            )
        )
    );
}

#[cfg(unix)]
#[test]
fn a_power_loss_keeps_a_prefix_of_lines_and_every_synced_one() {
    use penin_store::testing::CrashFs;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let path = root.join("s.ledger");
    let (mut ledger, _) = Ledger::open_in(CrashFs::at(&root).unwrap(), &path).unwrap();
    let mut synced_at = Vec::new();
    for batch in [0..3, 3..5, 5..6] {
        ledger
            .append(&events(batch.start + 1..batch.end + 1))
            .unwrap();
        ledger.sync().unwrap();
        synced_at.push((ledger.fs().ops().len(), ledger.len()));
    }
    let full = fs::read(&path).unwrap();
    let crash = ledger.fs();
    let calls = crash.ops().len();
    let entry_synced = crash
        .ops()
        .iter()
        .position(|op| *op == Op::SyncDir)
        .unwrap()
        + 1;
    let mut torn_seen = 0;
    for call in 0..=calls {
        // The lines any power loss after this call must keep: those of the last sync before.
        let durable = synced_at
            .iter()
            .filter(|(at, _)| *at <= call)
            .map(|(_, len)| *len)
            .max()
            .unwrap_or(0);
        for image in crash.images_after(call).unwrap() {
            let Some(bytes) = image.file("s.ledger") else {
                assert!(
                    call < entry_synced,
                    "call {call}: the ledger is lost: {image}"
                );
                continue;
            };
            assert!(full.starts_with(bytes), "call {call}: {image}");
            assert!(bytes.len() as u64 >= durable, "call {call}: {image}");

            // Restarted on the real file system: the torn line is cut, the rest is sound.
            let restart = tempfile::tempdir().unwrap();
            image.materialise(restart.path()).unwrap();
            let restarted = restart.path().join("s.ledger");
            let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let (mut reopened, torn) = Ledger::open(&restarted).unwrap();
            let expected_torn = (complete < bytes.len()).then(|| Torn {
                offset: complete as u64,
                bytes: (bytes.len() - complete) as u64,
            });
            assert_eq!(torn, expected_torn, "call {call}: {image}");
            torn_seen += usize::from(torn.is_some());
            assert_eq!(
                fs::read(&restarted).unwrap(),
                full[..complete],
                "call {call}"
            );
            let lines = bytes[..complete].split(|&b| b == b'\n').count() as u64 - 1;
            assert_eq!(reopened.next_seq(), lines + 1, "call {call}: {image}");
            let next = reopened.next_seq();
            reopened.append(&[event(next)]).unwrap();
            assert_eq!(ledger::verify(&restarted).unwrap().lines, lines + 1);
        }
    }
    assert!(torn_seen > 0, "some image holds half a write");
}

/// A sound ledger, then edits: bytes set, the end cut, bytes added.
fn mangled() -> impl Strategy<Value = Vec<u8>> {
    let sound = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.ledger");
        write_ledger(&path, 4);
        fs::read(&path).unwrap()
    };
    let len = sound.len();
    (
        prop::collection::vec((0..len, any::<u8>()), 0..4),
        0..=len,
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(move |(edits, keep, tail)| {
            let mut bytes = sound.clone();
            for (at, byte) in edits {
                bytes[at] = byte;
            }
            bytes.truncate(keep);
            bytes.extend(tail);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_read_verified_and_opened_without_panic(
        bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..600), mangled()]
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.ledger");
        fs::write(&path, &bytes).unwrap();
        let read = ledger::read(&path);
        let verified = ledger::verify(&path);
        if let Ok(summary) = &verified {
            // A sound chain reads back line for line.
            prop_assert_eq!(read.as_ref().map(Vec::len).ok(), Some(summary.lines as usize));
        }
        match Ledger::open(&path) {
            Ok((ledger, torn)) => {
                let after = fs::read(&path).unwrap();
                prop_assert!(after.is_empty() || after.ends_with(b"\n"));
                prop_assert_eq!(after.len() as u64 + torn.map_or(0, |t| t.bytes), bytes.len() as u64);
                prop_assert_eq!(ledger.len(), after.len() as u64);
                if let Ok(summary) = verified {
                    prop_assert_eq!((ledger.head(), ledger.next_seq()), (summary.head, summary.lines + 1));
                }
            }
            Err(error) => {
                prop_assert!(matches!(error, Error::Damaged { .. } | Error::Full { .. }), "{:?}", error);
                prop_assert_eq!(fs::read(&path).unwrap(), bytes);
            }
        }
    }
}

#[test]
fn docs_show_the_python_check_as_it_is() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = fs::read_to_string(script()).unwrap();
    let code = &script[script.find("import hashlib").unwrap()..];
    let docs = fs::read_to_string(root.join("docs/format.md")).unwrap();
    assert!(
        docs.contains(&format!("```python\n{code}```\n")),
        "docs/format.md shows tests/python/ledger_check.py from `import hashlib` on, verbatim"
    );
}

#[test]
fn last_reads_the_head_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json.ledger");
    assert_eq!(ledger::last(&path).unwrap(), (0, None));
    assert!(!path.exists(), "a read-only look creates nothing");
    // Empty, and a torn line alone: no line yet, and nothing cut.
    fs::write(&path, b"").unwrap();
    assert_eq!(ledger::last(&path).unwrap(), (0, None));
    fs::write(&path, b"{\"v\":1,\"se").unwrap();
    assert_eq!(ledger::last(&path).unwrap(), (0, None));
    assert_eq!(fs::read(&path).unwrap(), b"{\"v\":1,\"se");
    fs::remove_file(&path).unwrap();

    let lines = write_ledger(&path, 5);
    let size = fs::metadata(&path).unwrap().len();
    let (len, last) = ledger::last(&path).unwrap();
    assert_eq!(len, size);
    assert_eq!(last.as_ref(), lines.last());

    // A torn tail is not a line, and is left where it is.
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"v\":1,\"seq\":6");
    fs::write(&path, &bytes).unwrap();
    let (len, last) = ledger::last(&path).unwrap();
    assert_eq!((len, last.as_ref()), (size, lines.last()));
    assert_eq!(fs::read(&path).unwrap(), bytes);

    // A last line that does not match its hash is damage, named.
    let mut bytes = fs::read(&path).unwrap();
    bytes.truncate(usize::try_from(size).unwrap());
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let error = ledger::last(&path).unwrap_err();
    assert_eq!(damaged(&error).1, lines[4].offset, "{error}");
}
