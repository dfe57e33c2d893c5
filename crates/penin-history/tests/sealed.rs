//! Sealed journals: round trips under an identity, the wrong identity, a seal of another
//! journal, every flipped bit, records moved or altered under a valid checksum, and torn tails
//! cut back and written again.

use std::path::{Path, PathBuf};

use age::x25519;
use penin_history::journal::{
    self, Error, HEADER_LEN, Header, Identity, Record, SEAL_OVERHEAD, Seal, Torn, Writer,
};

fn snapshot() -> Identity {
    Identity {
        size: 2,
        mtime: 3,
        inode: 4,
        xxh3: 5,
    }
}

/// Payloads of every size class: empty, short, and a 3 KB change.
fn payloads() -> Vec<Vec<u8>> {
    vec![
        b"first change".to_vec(),
        Vec::new(),
        (0..3000_u32).map(|i| (i % 251) as u8).collect(),
    ]
}

/// A sealed journal at `dir/name` holding `payloads` (sequence numbers from 11, times from
/// 100, kind 1 + i), written and synced; returns its path and seal.
fn sealed_journal(
    dir: &Path,
    name: &str,
    recipient: &x25519::Recipient,
    payloads: &[Vec<u8>],
) -> (PathBuf, Seal) {
    let path = dir.join(name);
    let seal = Seal::generate(std::slice::from_ref(recipient)).unwrap();
    let header = Header::new(10, 0, 1, snapshot());
    let mut writer = Writer::create_with(&path, &header, Some(seal.clone())).unwrap();
    for (i, payload) in (0_u8..).zip(payloads) {
        writer.push(100 + i64::from(i), 1 + i, payload);
    }
    writer.write().unwrap();
    writer.sync().unwrap();
    (path, seal)
}

/// What `replay_with` hands over: (sequence number, time, kind, change).
type Seen = Vec<(u64, i64, u8, Vec<u8>)>;

fn replayed(path: &Path, seal: Option<&Seal>) -> Result<(Seen, journal::Summary), Error> {
    let mut seen = Vec::new();
    let summary = journal::replay_with(path, seal, |record, payload| {
        seen.push((record.seq, record.time, record.kind, payload.to_vec()));
        true
    })?
    .expect("the journal exists");
    Ok((seen, summary))
}

fn expected(payloads: &[Vec<u8>]) -> Seen {
    (0_u8..)
        .zip(payloads)
        .map(|(i, p)| (11 + u64::from(i), 100 + i64::from(i), 1 + i, p.clone()))
        .collect()
}

/// The stored bytes of a journal with `edit` applied to the frame of its record `index`,
/// whose CRC is then made valid again: a change no checksum sees.
fn with_frame_edited(bytes: &[u8], record: &Record, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    let start = record.offset as usize;
    let end = record.end() as usize;
    edit(&mut bytes[start..end]);
    let crc = crc32c::crc32c(&bytes[start + 4..end]);
    bytes[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn a_sealed_journal_round_trips_under_its_identity() {
    let dir = tempfile::tempdir().unwrap();
    let identity = x25519::Identity::generate();
    let payloads = payloads();
    let (path, _) = sealed_journal(dir.path(), "j", &identity.to_public(), &payloads);

    // Reopened from the file, with the identity alone.
    let seal = Seal::read(&path, std::slice::from_ref(&identity))
        .unwrap()
        .expect("the journal is sealed");
    let (seen, summary) = replayed(&path, Some(&seal)).unwrap();
    assert_eq!(seen, expected(&payloads));
    assert_eq!(summary.last_seq, 13);
    assert!(summary.torn.is_none());
    assert_eq!(summary.valid_len, std::fs::metadata(&path).unwrap().len());

    // The whole-file scan, opened record by record, says the same.
    let scan = journal::read(&path).unwrap().unwrap();
    let opened: Vec<Vec<u8>> = scan
        .records
        .iter()
        .map(|r| {
            r.open(&scan.bytes, Some(&seal), &path)
                .unwrap()
                .into_owned()
        })
        .collect();
    assert_eq!(opened, payloads);
    for (record, payload) in scan.records.iter().zip(&payloads) {
        assert!(record.sealed);
        assert_eq!(record.len as usize, payload.len() + SEAL_OVERHEAD);
    }
    // No change is in the file in the clear.
    assert!(
        !scan
            .bytes
            .windows(payloads[0].len())
            .any(|w| w == payloads[0])
    );
    assert!(!scan.bytes.windows(64).any(|w| w == &payloads[2][..64]));

    // Appending after reopening goes on sealing, from the next sequence number.
    let mut opened = Writer::open_with(&path, Some(seal.clone())).unwrap();
    assert!(opened.torn.is_none());
    assert_eq!(opened.header.encoded_len(), opened.writer.header_len());
    assert_eq!(opened.writer.push(200, 9, b"after reopening"), 14);
    opened.writer.write().unwrap();
    opened.writer.sync().unwrap();
    let (seen, _) = replayed(&path, Some(&seal)).unwrap();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[3], (14, 200, 9, b"after reopening".to_vec()));
}

#[test]
fn header_and_framing_read_without_any_identity() {
    let dir = tempfile::tempdir().unwrap();
    let identity = x25519::Identity::generate();
    let (path, seal) = sealed_journal(dir.path(), "j", &identity.to_public(), &payloads());
    let header = journal::read_header(&path).unwrap().unwrap();
    assert_eq!(header.base, 10);
    assert_eq!(header.sealed.map(|s| s.id), Some(seal.id()));
    assert_eq!(
        header.encoded_len(),
        (HEADER_LEN + 8 + seal.key_block().len()) as u64
    );
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[8..10], &[2, 0], "version 2");
    assert_eq!(journal::first_record_seq(&bytes), Some(11));
    assert_eq!(journal::last_valid_seq(&bytes), 13);
    let scan = journal::scan(bytes, &path).unwrap();
    assert_eq!(
        scan.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [11, 12, 13]
    );
    // The changes themselves need the key.
    let error = scan.records[0].open(&scan.bytes, None, &path).unwrap_err();
    assert!(matches!(error, Error::Sealed { .. }), "{error}");
    let error = journal::replay(&path, |_, _| true).unwrap_err();
    assert!(matches!(error, Error::Sealed { .. }), "{error}");
    let error = Writer::open(&path).err().unwrap();
    assert!(matches!(error, Error::Sealed { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "{} is a sealed journal: reading its changes or appending to it needs an identity",
            path.display()
        )
    );
}

#[test]
fn a_wrong_identity_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let identity = x25519::Identity::generate();
    let (path, _) = sealed_journal(dir.path(), "j", &identity.to_public(), &payloads());
    let others = [x25519::Identity::generate(), x25519::Identity::generate()];
    let error = Seal::read(&path, &others).unwrap_err();
    assert!(matches!(&error, Error::WrongIdentity { path: p } if *p == path));
    assert_eq!(
        error.to_string(),
        format!(
            "none of the identities given opens the sealed journal {}",
            path.display()
        )
    );
    // Among others, the right one opens it.
    let [first, second] = others;
    let seal = Seal::read(&path, &[first, identity, second]).unwrap();
    assert!(seal.is_some());
    let error = Seal::read(&path, &[]).unwrap_err();
    assert!(matches!(error, Error::Sealed { .. }), "{error}");
}

#[test]
fn a_journal_sealed_for_several_recipients_opens_for_each() {
    let dir = tempfile::tempdir().unwrap();
    let identities: Vec<x25519::Identity> = (0..3).map(|_| x25519::Identity::generate()).collect();
    let recipients: Vec<x25519::Recipient> =
        identities.iter().map(x25519::Identity::to_public).collect();
    let path = dir.path().join("j");
    let seal = Seal::generate(&recipients).unwrap();
    let mut writer =
        Writer::create_with(&path, &Header::new(0, 0, 0, snapshot()), Some(seal)).unwrap();
    writer.push(1, 1, b"shared");
    writer.write().unwrap();
    for identity in identities {
        let seal = Seal::read(&path, &[identity]).unwrap().unwrap();
        let (seen, _) = replayed(&path, Some(&seal)).unwrap();
        assert_eq!(seen, [(1, 1, 1, b"shared".to_vec())]);
    }
    let error = Seal::generate(&[]).unwrap_err();
    assert!(matches!(error, Error::Wrap { .. }), "{error}");
}

#[test]
fn a_seal_opens_only_its_own_journal() {
    let dir = tempfile::tempdir().unwrap();
    let recipient = x25519::Identity::generate().to_public();
    let (first, first_seal) = sealed_journal(dir.path(), "a", &recipient, &payloads());
    let (second, _) = sealed_journal(dir.path(), "b", &recipient, &payloads());
    let error = replayed(&second, Some(&first_seal)).unwrap_err();
    assert!(matches!(&error, Error::SealMismatch { path } if *path == second));
    let error = Writer::open_with(&second, Some(first_seal.clone()))
        .err()
        .unwrap();
    assert!(matches!(error, Error::SealMismatch { .. }), "{error}");
    // Nor a plaintext journal, whose records are not sealed.
    let plain = dir.path().join("plain");
    let mut writer = Writer::create(&plain, &Header::new(10, 0, 1, snapshot())).unwrap();
    writer.push(100, 1, b"clear");
    writer.write().unwrap();
    assert_eq!(
        Seal::read(&plain, &[x25519::Identity::generate()])
            .unwrap()
            .map(|s| s.id()),
        None
    );
    let error = replayed(&plain, Some(&first_seal)).unwrap_err();
    assert!(matches!(error, Error::SealMismatch { .. }), "{error}");
    let scan = journal::read(&plain).unwrap().unwrap();
    let error = scan.records[0]
        .open(&scan.bytes, Some(&first_seal), &plain)
        .unwrap_err();
    assert!(matches!(error, Error::SealMismatch { .. }), "{error}");
    assert_eq!(
        &*scan.records[0].open(&scan.bytes, None, &plain).unwrap(),
        b"clear"
    );
    assert!(replayed(&first, Some(&first_seal)).is_ok());
}

/// Every bit of a small sealed journal flipped in turn: the header refuses it, or the
/// records read are a prefix of those written (the rest torn or damaged), each opening to
/// exactly the change written. Never another change.
#[test]
fn a_flipped_bit_anywhere_is_refused_or_torn_never_another_change() {
    let dir = tempfile::tempdir().unwrap();
    let identity = x25519::Identity::generate();
    let payloads = vec![b"one".to_vec(), b"two two".to_vec(), b"three".to_vec()];
    let (path, _) = sealed_journal(dir.path(), "j", &identity.to_public(), &payloads);
    let whole = std::fs::read(&path).unwrap();
    let good = journal::scan(whole.clone(), &path).unwrap();
    let header_len = good.header.encoded_len() as usize;
    let identities = [identity];
    let flipped_path = dir.path().join("flipped");
    for byte in 0..whole.len() {
        for bit in 0..8 {
            let mut bytes = whole.clone();
            bytes[byte] ^= 1 << bit;
            let at = format!("byte {byte} bit {bit}");
            let seal = match Seal::open(&bytes, &path, &identities) {
                Ok(seal) => seal.expect("still sealed"),
                Err(Error::Damaged { seq: 0, .. }) => {
                    assert!(byte < header_len, "{at}");
                    continue;
                }
                Err(Error::NotAJournal { .. } | Error::NewerVersion { .. }) => {
                    assert!(byte < 10, "{at}");
                    continue;
                }
                Err(other) => panic!("{at}: {other}"),
            };
            assert!(byte >= header_len, "{at}: a changed header opened");
            // In memory, record by record.
            match journal::scan(bytes.clone(), &path) {
                Ok(scan) => {
                    let last = good.records[2];
                    assert!(byte >= last.offset as usize, "{at}");
                    assert_eq!(scan.records, good.records[..2], "{at}");
                    assert_eq!(scan.torn.map(|t| t.offset), Some(last.offset), "{at}");
                    for (record, payload) in scan.records.iter().zip(&payloads) {
                        let opened = record.open(&scan.bytes, Some(&seal), &path).unwrap();
                        assert_eq!(&*opened, &payload[..], "{at}");
                    }
                }
                Err(Error::Damaged { seq, offset, .. }) => {
                    let record = good.records.iter().find(|r| r.end() > byte as u64).unwrap();
                    assert_eq!((seq, offset), (record.seq, record.offset), "{at}");
                }
                Err(other) => panic!("{at}: {other}"),
            }
            // From the file, a chunk at a time.
            std::fs::write(&flipped_path, &bytes).unwrap();
            match replayed(&flipped_path, Some(&seal)) {
                Ok((seen, summary)) => {
                    assert_eq!(seen, expected(&payloads)[..2], "{at}");
                    assert!(summary.torn.is_some(), "{at}");
                }
                Err(Error::Damaged { .. }) => {}
                Err(other) => panic!("{at}: {other}"),
            }
        }
    }
}

/// Changes that keep every checksum valid: a record of another journal put in place of one
/// of this journal, a record moved to another place, its time or kind changed, one bit of
/// its sealed bytes changed. Each is damage at that record, never a change handed over.
#[test]
fn a_record_moved_or_altered_under_a_valid_checksum_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let recipient = x25519::Identity::generate().to_public();
    let payloads = vec![b"alpha".to_vec(), b"bravo".to_vec(), b"charlie".to_vec()];
    // Two journals of the same base, times and kinds: only their keys and ids differ.
    let (ours, seal) = sealed_journal(dir.path(), "ours", &recipient, &payloads);
    let (theirs, _) = sealed_journal(dir.path(), "theirs", &recipient, &payloads);
    let bytes = std::fs::read(&ours).unwrap();
    let scan = journal::scan(bytes.clone(), &ours).unwrap();
    let their_bytes = std::fs::read(&theirs).unwrap();
    let their_scan = journal::scan(their_bytes.clone(), &theirs).unwrap();
    let target = scan.records[1];

    let transplanted = {
        let mut bytes = bytes.clone();
        let frame = their_scan.records[1].frame(&their_bytes);
        bytes.splice(
            target.offset as usize..target.end() as usize,
            frame.iter().copied(),
        );
        bytes
    };
    // The record of seq 13 made to pass for seq 12, and the other way around, their
    // checksums made valid again.
    let moved = {
        let third = scan.records[2];
        let reframed = |record: &Record, seq: u64| {
            let mut frame = record.frame(&scan.bytes).to_vec();
            frame[8..16].copy_from_slice(&seq.to_le_bytes());
            let crc = crc32c::crc32c(&frame[4..]);
            frame[..4].copy_from_slice(&crc.to_le_bytes());
            frame
        };
        let mut swapped = reframed(&third, 12);
        swapped.extend_from_slice(&reframed(&target, 13));
        let mut bytes = bytes.clone();
        bytes.splice(
            target.offset as usize..third.end() as usize,
            swapped.iter().copied(),
        );
        bytes
    };
    let cases = [
        ("a record of another journal", transplanted),
        ("records swapped", moved),
        (
            "the time changed",
            with_frame_edited(&bytes, &target, |f| f[16] ^= 1),
        ),
        (
            "the kind changed",
            with_frame_edited(&bytes, &target, |f| f[24] ^= 1),
        ),
        (
            "a nonce bit changed",
            with_frame_edited(&bytes, &target, |f| f[25] ^= 1),
        ),
        (
            "a sealed bit changed",
            with_frame_edited(&bytes, &target, |f| f[25 + 24] ^= 0x80),
        ),
        (
            "a tag bit changed",
            with_frame_edited(&bytes, &target, |f| {
                let at = f.len() - 5;
                f[at] ^= 1;
            }),
        ),
    ];
    let path = dir.path().join("altered");
    for (what, altered) in cases {
        // Every checksum holds: framing alone finds nothing wrong.
        let altered_scan = journal::scan(altered.clone(), &path).unwrap();
        assert_eq!(altered_scan.records.len(), 3, "{what}");
        assert!(altered_scan.torn.is_none(), "{what}");
        let opened = altered_scan.records[0].open(&altered_scan.bytes, Some(&seal), &path);
        assert_eq!(&*opened.unwrap(), b"alpha", "{what}");
        let error = altered_scan.records[1]
            .open(&altered_scan.bytes, Some(&seal), &path)
            .unwrap_err();
        assert!(
            matches!(error, Error::Damaged { seq: 12, offset, .. } if offset == target.offset),
            "{what}: {error}"
        );
        // Replay hands over the record before, then stops at the damage.
        std::fs::write(&path, &altered).unwrap();
        let mut seen = Vec::new();
        let error = journal::replay_with(&path, Some(&seal), |record, payload| {
            seen.push((record.seq, payload.to_vec()));
            true
        })
        .unwrap_err();
        assert_eq!(seen, [(11, b"alpha".to_vec())], "{what}");
        assert!(
            matches!(error, Error::Damaged { seq: 12, offset, .. } if offset == target.offset),
            "{what}: {error}"
        );
        assert!(error.to_string().contains("seal does not open"), "{error}");
    }
}

#[test]
fn a_torn_sealed_tail_is_cut_back_and_written_again_under_a_new_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let identity = x25519::Identity::generate();
    let payloads = vec![b"kept".to_vec(), b"kept too".to_vec()];
    let (path, seal) = sealed_journal(dir.path(), "j", &identity.to_public(), &payloads);
    let valid = std::fs::metadata(&path).unwrap().len();

    // A torn append of seq 13.
    let mut torn = Vec::new();
    seal.encode_frame(&mut torn, 13, 102, 3, b"lost in the crash");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&torn[..torn.len() - 7]);
    std::fs::write(&path, &bytes).unwrap();
    let (seen, summary) = replayed(&path, Some(&seal)).unwrap();
    assert_eq!(seen, expected(&payloads));
    assert_eq!(
        summary.torn,
        Some(Torn {
            offset: valid,
            len: torn.len() as u64 - 7,
            seq: 13
        })
    );

    // Opening cuts it off; the same change written again at the same place gets another
    // nonce, so no nonce is ever used twice under the key.
    let seal = Seal::read(&path, &[identity]).unwrap().unwrap();
    let mut opened = Writer::open_with(&path, Some(seal.clone())).unwrap();
    assert_eq!(opened.torn.map(|t| t.offset), Some(valid));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), valid);
    assert_eq!(opened.writer.push(102, 3, b"lost in the crash"), 13);
    opened.writer.write().unwrap();
    let rewritten = std::fs::read(&path).unwrap();
    let nonce = |frame: &[u8]| frame[25..25 + 24].to_vec();
    assert_ne!(nonce(&rewritten[valid as usize..]), nonce(&torn));

    // Taken back and written again: another nonce again.
    let mark = opened.writer.mark();
    opened.writer.push(103, 1, b"taken back");
    opened.writer.write().unwrap();
    let first_try = std::fs::read(&path).unwrap()[mark.0 as usize..].to_vec();
    opened.writer.cut_back(mark).unwrap();
    assert_eq!(opened.writer.push(103, 1, b"taken back"), 14);
    opened.writer.write().unwrap();
    opened.writer.sync().unwrap();
    let second_try = std::fs::read(&path).unwrap()[mark.0 as usize..].to_vec();
    assert_eq!(first_try.len(), second_try.len());
    assert_ne!(nonce(&first_try), nonce(&second_try));

    let (seen, summary) = replayed(&path, Some(&seal)).unwrap();
    assert!(summary.torn.is_none());
    let changes: Vec<&[u8]> = seen.iter().map(|s| &s.3[..]).collect();
    assert_eq!(
        changes,
        [
            &b"kept"[..],
            b"kept too",
            b"lost in the crash",
            b"taken back"
        ]
    );
}

#[test]
fn an_empty_sealed_journal_opens_at_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let identity = x25519::Identity::generate();
    let (path, seal) = sealed_journal(dir.path(), "j", &identity.to_public(), &[]);
    let opened = Writer::open_with(&path, Some(seal.clone())).unwrap();
    assert!(opened.writer.is_empty());
    assert_eq!(opened.writer.next_seq(), 11);
    assert_eq!(opened.writer.len(), opened.header.encoded_len());
    let (seen, summary) = replayed(&path, Some(&seal)).unwrap();
    assert!(seen.is_empty());
    assert_eq!(summary.valid_len, opened.header.encoded_len());
    // The header cut anywhere is cut short, never misread.
    let bytes = std::fs::read(&path).unwrap();
    for cut in 0..bytes.len() {
        let error = journal::Header::parse(&bytes[..cut], &path).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Damaged { seq: 0, .. } | Error::NotAJournal { .. }
            ),
            "cut at {cut}: {error}"
        );
    }
}
