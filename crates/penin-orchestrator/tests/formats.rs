//! Compressed snapshots: every format loads and saves the same state, a loaded state keeps
//! its format through compactions, the journal names the snapshot by its bytes on disk, and
//! a damaged stream is refused with the file's name.

use std::io::Write;
use std::path::Path;

use penin_history::journal::{self, Identity, Match};
use penin_orchestrator::memory::Memory;
use penin_orchestrator::{
    Change, Error, ErrorKind, Format, Map, Number, NumericVectorArtifact, Orchestrator, Value,
};

fn sample() -> Orchestrator {
    let mut o = Orchestrator::new();
    for i in 0..50_i32 {
        let mut metadata = Map::new();
        metadata.insert("i", Value::from(i64::from(i)));
        o.add_knowledge(
            format!("k{i}"),
            NumericVectorArtifact::new(vec![f64::from(i) * 0.1, -0.0, f64::NAN])
                .with_metadata(metadata),
        );
        o.add_score(Number::Float(f64::from(i) / 7.0));
    }
    o.add_task(Value::from("a task"));
    o
}

/// Keys holding a new identity, which encrypt to its recipient and decrypt.
fn keys() -> penin_formats::Keys {
    let (identity, _) = penin_formats::new_identity("now");
    penin_formats::Keys::from_identities(
        penin_formats::ExposeSecret::expose_secret(&identity),
        Path::new("key"),
    )
    .unwrap()
}

fn compress(format: Format, bytes: &[u8]) -> Vec<u8> {
    let mut encoder = penin_formats::Encoder::new(format, Vec::new()).unwrap();
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn assert_same(a: &Orchestrator, b: &Orchestrator) {
    // Bit for bit: NaN and -0.0 compare through their encodings.
    assert_eq!(
        penin_codec::to_vec(a.document()),
        penin_codec::to_vec(b.document())
    );
}

#[test]
fn every_format_saves_and_loads_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = sample();
    for format in Format::ALL {
        let path = dir.path().join(format!("state-{format}"));
        state.save_state_as(&path, format).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(Format::detect(&bytes), format);
        let plain = if format == Format::Arrow {
            penin_codec::to_vec(&penin_formats::arrow::from_slice(&bytes, None).unwrap())
        } else {
            penin_formats::decompress(format, &bytes[..]).unwrap()
        };
        assert_eq!(
            plain,
            state.to_bytes(),
            "{format}: the JSON inside is the seed's"
        );
        let mut loaded = Orchestrator::with_history_maxlen(Some(3));
        assert_eq!(loaded.load_state_format(&path).unwrap(), Some(format));
        assert_same(&loaded, &state);
    }
}

#[test]
fn every_format_saves_encrypted_the_bytes_of_its_plaintext_save_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    // More than one sealed segment (256 KiB), so that the workers seal some of it.
    let mut state = sample();
    for i in 0..800_i32 {
        state.add_knowledge(
            format!("big{i}"),
            NumericVectorArtifact::new(vec![f64::from(i); 384]),
        );
    }
    for format in Format::ALL {
        let path = dir.path().join(format!("state-{format}.age"));
        state.save_state_with(&path, format, &keys).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(penin_formats::is_encrypted(&bytes), "{format}");
        let inside = penin_formats::decrypt(&keys, &bytes[..]).unwrap().bytes;
        assert!(
            inside == state.write_as(Vec::new(), format).unwrap(),
            "{format}: the plaintext inside is not the plaintext save's"
        );
        let mut loaded = Orchestrator::new();
        let layout = loaded.load_state_with(&path, &keys).unwrap().unwrap();
        assert_eq!(layout.format, format);
        assert_same(&loaded, &state);
    }
}

/// The length of a file decides the size of the buffer an encrypted load opens its chunks
/// into: a file cut short, or one that claims far more bytes than it holds (a sparse file),
/// is refused with what is wrong, never a panic or an aborted process.
#[test]
fn an_encrypted_file_cut_short_or_claiming_a_huge_length_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let path = dir.path().join("state.arrow.age");
    sample()
        .save_state_with(&path, Format::Arrow, &keys)
        .unwrap();
    let whole = std::fs::read(&path).unwrap();
    // The payload starts after the MAC line and the 16-byte nonce.
    let mac = whole.windows(4).position(|w| w == b"--- ").unwrap();
    let payload = mac + whole[mac..].iter().position(|&b| b == b'\n').unwrap() + 1 + 16;
    for cut in [1, 5, 15] {
        std::fs::write(&path, &whole[..payload + cut]).unwrap();
        let error = Orchestrator::new()
            .load_state_with(&path, &keys)
            .unwrap_err();
        let message = chain(&error);
        assert!(
            message.contains("chunk 0 is shorter than its tag"),
            "cut {cut}: {message}"
        );
    }
    std::fs::write(&path, &whole).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(1 << 40).unwrap();
    drop(file);
    let error = Orchestrator::new()
        .load_state_with(&path, &keys)
        .unwrap_err();
    let message = chain(&error);
    assert!(message.contains("does not open"), "{message}");
}

/// A plaintext snapshot whose file claims far more than it holds (extended by a hole: a
/// sparse file of a terabyte) is refused from its last bytes, read or mapped, before anything
/// is sized by its length: not read to its end, not an aborted process, the state unchanged.
#[test]
fn a_snapshot_extended_by_a_terabyte_hole_is_refused_from_its_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.arrow");
    sample().save_state_as(&path, Format::Arrow).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(1 << 40).unwrap();
    drop(file);
    let before = Orchestrator::new();
    let mut read = Orchestrator::new();
    let error = read.load_state(&path).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::SnapshotDamaged, "{error:?}");
    let message = chain(&error);
    assert!(message.contains("does not end with ARROW1"), "{message}");
    assert_eq!(read, before);
    let mut mapped = Orchestrator::new();
    let handle = std::fs::File::open(&path).unwrap();
    let error = mapped
        .map_file_with(&handle, &path, &penin_formats::Keys::new())
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::SnapshotDamaged, "{error:?}");
    assert!(
        chain(&error).contains("does not end with ARROW1"),
        "{error}"
    );
    assert_eq!(mapped, before);
}

/// `error` and its sources, one after the other.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

#[test]
fn a_damaged_stream_is_refused_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let json = sample().to_bytes();
    for format in [Format::JsonGz, Format::JsonZst] {
        let whole = compress(format, &json);
        for cut in [5, whole.len() / 2, whole.len() - 1] {
            let path = dir.path().join("state.json");
            std::fs::write(&path, &whole[..cut]).unwrap();
            let mut o = Orchestrator::new();
            let error = o.load_state(&path).unwrap_err();
            assert!(
                matches!(error, Error::Compressed { .. }),
                "{format}: {error:?}"
            );
            assert_eq!(error.kind(), ErrorKind::CompressionDamaged);
            let compression = format.compression().unwrap();
            assert_eq!(
                format!("{:#}", anyhow_like(&error)),
                format!(
                    "{} cannot be decompressed: the {compression} stream is damaged or truncated",
                    path.display()
                )
            );
            assert!(o.knowledge_base().is_empty(), "nothing changes");
        }
    }
}

/// The message and its sources' messages up to the decompressor's own (which is the
/// library's text, not ours).
fn anyhow_like(error: &Error) -> String {
    let source = std::error::Error::source(error).unwrap();
    format!("{error}: {source}")
}

#[test]
fn errors_inside_compressed_json_are_placed_in_the_decompressed_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    for (format, name) in [(Format::JsonGz, "gzip"), (Format::JsonZst, "zstd")] {
        std::fs::write(&path, compress(format, b"{\n  \"knowledge_base\": {,}\n}")).unwrap();
        let error = Orchestrator::new().load_state(&path).unwrap_err();
        assert!(matches!(error, Error::CorruptDecompressed { format: f, .. } if f == format));
        assert_eq!(error.kind(), ErrorKind::InvalidJson);
        assert_eq!(
            anyhow_like(&error),
            format!(
                "{} is not a valid state (in the decompressed {name} content): expected a string \
                 key, found ',' at line 2, column 22 in knowledge_base",
                path.display()
            )
        );
        // Empty content is an empty state file, as for plain JSON.
        std::fs::write(&path, compress(format, b"")).unwrap();
        let error = Orchestrator::new().load_state(&path).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Empty);
    }
}

fn add_score(memory: &mut Memory, score: f64) {
    memory
        .commit(vec![Change::AddScore(Number::Float(score))])
        .unwrap();
    memory.sync().unwrap();
}

/// The journal's header names the snapshot by the XXH3-128 of its bytes on disk (the
/// compressed bytes): the hashing writer sits outside the compressor.
fn assert_journal_names_snapshot(path: &Path) {
    let header = journal::read_header(&penin_history::journal_path(path))
        .unwrap()
        .unwrap();
    assert_eq!(header.identity.xxh3, Identity::of_file(path).unwrap().xxh3);
    assert_eq!(header.identity.check(path).unwrap(), Match::Same);
}

#[test]
fn a_loaded_state_keeps_its_format_through_compactions() {
    for format in [Format::JsonGz, Format::JsonZst] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        sample().save_state_as(&path, format).unwrap();
        let mut memory = Memory::open(&path, None).unwrap();
        assert_eq!(memory.format(), format);
        assert_eq!(memory.snapshot_format(), Some(format));
        add_score(&mut memory, 0.5);
        memory.compact().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            Format::detect(&bytes),
            format,
            "the compaction kept {format}"
        );
        assert_journal_names_snapshot(&path);
        // A change journaled against the compressed snapshot replays onto it.
        add_score(&mut memory, 0.25);
        let expected = penin_codec::to_vec(memory.state().document());
        drop(memory);
        let reopened = Memory::open(&path, None).unwrap();
        assert_eq!(penin_codec::to_vec(reopened.state().document()), expected);
        assert_eq!(reopened.format(), format);
    }
}

#[test]
fn set_format_converts_the_snapshot_at_the_next_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    sample().save_state(&path).unwrap();
    let mut memory = Memory::open(&path, None).unwrap();
    assert_eq!(memory.format(), Format::Json);
    let mut before = Format::Json;
    for format in [Format::JsonZst, Format::JsonGz, Format::Json] {
        memory.set_format(format);
        assert_eq!(
            memory.snapshot_format(),
            Some(before),
            "not before the compaction"
        );
        memory.compact().unwrap();
        before = format;
        assert_eq!(memory.snapshot_format(), Some(format));
        assert_eq!(Format::detect(&std::fs::read(&path).unwrap()), format);
        assert_journal_names_snapshot(&path);
        let loaded = penin_orchestrator::load(&path, None).unwrap();
        assert_eq!(loaded.format, Some(format));
        assert_same(&loaded.state, &sample());
    }
}

#[test]
fn adopt_writes_the_format_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let memory =
        Memory::adopt_in(penin_store::RealFs, &path, sample(), 0, Format::JsonZst).unwrap();
    assert_eq!(memory.snapshot_format(), Some(Format::JsonZst));
    assert_eq!(
        Format::detect(&std::fs::read(&path).unwrap()),
        Format::JsonZst
    );
    assert_journal_names_snapshot(&path);
}
