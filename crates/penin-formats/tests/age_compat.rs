//! penin writes the age file itself (its chunks sealed on several threads) and reads it
//! itself (its chunks opened on several threads): the age command, Python's `pyrage` and
//! penin must all open what penin writes, penin what the age command writes, at every size
//! where the chunking can go wrong, and a changed byte anywhere must be refused.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use penin_formats::{Envelope, Error, ExposeSecret, Keys, decrypt, new_identity};

/// age's payload chunk, and penin's segment of 16 of them (what one thread seals).
const CHUNK: usize = 64 << 10;
const SEGMENT: usize = 16 * CHUNK;

/// Every size where a chunk or a segment starts or ends, and a few MiB with an odd tail.
const SIZES: &[usize] = &[
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    2 * CHUNK,
    SEGMENT - 1,
    SEGMENT,
    SEGMENT + 1,
    SEGMENT + CHUNK,
    3 * SEGMENT,
    5 * SEGMENT + 7 * CHUNK + 12_345,
];

/// An identity file in `dir`, and its keys.
struct Identity {
    file: PathBuf,
    keys: Keys,
    recipient: String,
}

fn identity(dir: &Path, name: &str) -> Identity {
    let (text, recipient) = new_identity("now");
    let file = dir.join(name);
    std::fs::write(&file, text.expose_secret()).unwrap();
    let keys = Keys::from_identity_file(&file).unwrap();
    Identity {
        file,
        keys,
        recipient,
    }
}

/// Bytes that differ from chunk to chunk, so that a chunk out of place is seen.
fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 31 + i / CHUNK) % 251).unwrap())
        .collect()
}

/// `data` through an envelope to `keys`, written in pieces of `piece` bytes.
fn seal(keys: &Keys, data: &[u8], piece: usize) -> Vec<u8> {
    let mut envelope = Envelope::new(keys, Vec::new()).unwrap();
    assert!(envelope.encrypts());
    for part in data.chunks(piece) {
        envelope.write_all(part).unwrap();
    }
    envelope.finish().unwrap()
}

/// The sealed files of every size: to one recipient (`first`), and to two (`first` and
/// `second`'s recipient).
fn sealed_files(first: &Identity, second: &Identity) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let both = first
        .keys
        .clone()
        .with_recipient(&second.recipient)
        .unwrap();
    let mut files = Vec::new();
    for &size in SIZES {
        let plain = data(size);
        // Odd pieces, so that writes straddle chunk and segment edges.
        files.push((
            format!("{size}-one"),
            seal(&first.keys, &plain, 100_003),
            plain.clone(),
        ));
        files.push((format!("{size}-two"), seal(&both, &plain, 7_777), plain));
    }
    files
}

#[test]
fn penin_reads_what_it_writes_at_every_chunk_edge_with_one_or_two_recipients() {
    let dir = tempfile::tempdir().unwrap();
    let first = identity(dir.path(), "first.key");
    let second = identity(dir.path(), "second.key");
    for (name, sealed, plain) in sealed_files(&first, &second) {
        let opened = decrypt(&first.keys, &sealed[..]).unwrap();
        assert!(opened.bytes == plain, "{name}: other bytes");
        assert_eq!(opened.recipients[0], first.recipient, "{name}");
        if name.ends_with("-two") {
            let opened = decrypt(&second.keys, &sealed[..]).unwrap();
            assert!(
                opened.bytes == plain,
                "{name}: other bytes with the second identity"
            );
            assert_eq!(
                opened.recipients,
                [first.recipient.as_str(), second.recipient.as_str()]
            );
        }
    }
}

#[test]
fn the_age_command_decrypts_every_size() {
    let test = "the_age_command_decrypts_every_size";
    if !penin_testkit::program(test, "age", "the age command's check (.ci/run installs it)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let first = identity(dir.path(), "first.key");
    let second = identity(dir.path(), "second.key");
    for (name, sealed, plain) in sealed_files(&first, &second) {
        let path = dir.path().join(format!("{name}.age"));
        std::fs::write(&path, &sealed).unwrap();
        let identities: &[&Identity] = if name.ends_with("-two") {
            &[&first, &second]
        } else {
            &[&first]
        };
        for identity in identities {
            let out = Command::new("age")
                .arg("--decrypt")
                .arg("--identity")
                .arg(&identity.file)
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "age -d {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout == plain, "age -d {name}: other bytes");
        }
    }
}

#[test]
fn penin_reads_what_the_age_command_encrypts_at_every_size() {
    let test = "penin_reads_what_the_age_command_encrypts_at_every_size";
    if !penin_testkit::program(test, "age", "the age command's check (.ci/run installs it)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let first = identity(dir.path(), "first.key");
    let second = identity(dir.path(), "second.key");
    // penin opens 32 chunks (two segments) at a time: the sizes around those edges too.
    let piece = 2 * SEGMENT;
    let sizes = SIZES
        .iter()
        .copied()
        .chain([piece - 1, piece, piece + 1, 2 * piece + 5]);
    for size in sizes {
        let plain = data(size);
        let input = dir.path().join(format!("{size}.plain"));
        let sealed = dir.path().join(format!("{size}.age"));
        std::fs::write(&input, &plain).unwrap();
        let out = Command::new("age")
            .args([
                "--encrypt",
                "-r",
                &first.recipient,
                "-r",
                &second.recipient,
                "-o",
            ])
            .arg(&sealed)
            .arg(&input)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age -e {size}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sealed = std::fs::read(&sealed).unwrap();
        for identity in [&first, &second] {
            let opened = decrypt(&identity.keys, &sealed[..]).unwrap();
            assert!(opened.bytes == plain, "{size} bytes: other bytes");
            // The age command names no recipient.
            assert!(opened.recipients.is_empty(), "{size} bytes");
        }
        // A changed byte in its last chunk is refused.
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(
            matches!(decrypt(&first.keys, &bad[..]), Err(Error::Tampered { .. })),
            "{size} bytes: a changed tag"
        );
    }
}

#[test]
fn pyrage_decrypts_every_size() {
    let test = "pyrage_decrypts_every_size";
    if !penin_testkit::python3(test, "no Python to check penin's encrypted files with") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/age_check.py");
    let dir = tempfile::tempdir().unwrap();
    let first = identity(dir.path(), "first.key");
    let second = identity(dir.path(), "second.key");
    for (name, sealed, plain) in sealed_files(&first, &second) {
        let path = dir.path().join(format!("{name}.age"));
        std::fs::write(&path, &sealed).unwrap();
        // The second recipient's identity opens the two-recipient files: its stanza is not
        // the first.
        let key = if name.ends_with("-two") {
            &second.file
        } else {
            &first.file
        };
        let out_path = dir.path().join(format!("{name}.out"));
        let out = Command::new("python3")
            .arg(&script)
            .arg("decrypt")
            .arg(key)
            .arg(&path)
            .arg(&out_path)
            .output()
            .unwrap();
        if penin_testkit::python_package_missing(
            test,
            &out,
            "pyrage cannot check penin's age files",
        ) {
            return;
        }
        assert!(
            out.status.success(),
            "pyrage {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            std::fs::read(&out_path).unwrap() == plain,
            "pyrage {name}: other bytes"
        );
    }
}

/// Where the header ends: after the MAC line (`--- ...\n`).
fn header_len(sealed: &[u8]) -> usize {
    let mac = sealed
        .windows(4)
        .position(|w| w == b"\n---")
        .expect("a MAC line");
    mac + 1 + sealed[mac + 1..].iter().position(|&b| b == b'\n').unwrap() + 1
}

#[test]
fn a_changed_byte_in_the_header_or_any_chunk_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = identity(dir.path(), "first.key");
    let second = identity(dir.path(), "second.key");
    let keys = first
        .keys
        .clone()
        .with_recipient(&second.recipient)
        .unwrap();
    // A segment sealed by a worker thread, then three chunks and a short one sealed at the
    // end.
    let plain = data(SEGMENT + 3 * CHUNK + 99);
    let sealed = seal(&keys, &plain, 65_000);
    let header = header_len(&sealed);
    let sealed_chunk = CHUNK + 16;
    // In the header: every fifth byte (the small file of the envelope's tests has every bit
    // flipped), every byte of the MAC line and of the nonce.
    let mac_line = sealed[..header - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap();
    let mut places: Vec<usize> = (0..mac_line)
        .step_by(5)
        .chain(mac_line..header + 16)
        .collect();
    // In every chunk: its first and last ciphertext bytes, its tag, a byte in the middle.
    let mut chunk_start = header + 16;
    while chunk_start < sealed.len() {
        let end = (chunk_start + sealed_chunk).min(sealed.len());
        let middle = (chunk_start + 1000).min(end - 1);
        places.extend([chunk_start, middle, end - 17, end - 16, end - 1]);
        chunk_start = end;
    }
    for at in places {
        let mut bad = sealed.clone();
        bad[at] ^= 0x20;
        match decrypt(&first.keys, &bad[..]) {
            Err(Error::Tampered { .. } | Error::StanzaDamaged { .. }) => {}
            // A flip in the first line makes it no age file, or another version of it.
            Err(_) if at < 22 => {}
            Ok(_) => panic!("a change at byte {at} of {} was not seen", sealed.len()),
            Err(other) => panic!("byte {at}: {other:?}"),
        }
    }
    // Two chunks swapped, the last chunk dropped, a chunk dropped in the middle.
    let body = header + 16;
    let mut swapped = sealed.clone();
    let (a, b) = swapped[body..].split_at_mut(sealed_chunk);
    a.swap_with_slice(&mut b[..sealed_chunk]);
    let without_last = &sealed[..sealed.len() - (99 + 16)];
    let mut without_one = sealed[..body + sealed_chunk].to_vec();
    without_one.extend_from_slice(&sealed[body + 2 * sealed_chunk..]);
    for (what, bad) in [
        ("two chunks swapped", &swapped[..]),
        ("the last chunk dropped", without_last),
        ("a chunk dropped", &without_one[..]),
    ] {
        assert!(
            matches!(decrypt(&first.keys, bad), Err(Error::Tampered { .. })),
            "{what} was not refused"
        );
    }
}
