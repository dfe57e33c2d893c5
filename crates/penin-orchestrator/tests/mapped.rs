//! Arrow snapshots read through a map of their file (`Orchestrator::map_file_with`, the loads
//! of penin's one-shot commands): the state is the one a read gives, bit for bit; the file is
//! really mapped (Linux: it shows in `/proc/self/maps`) only when it is large enough and in
//! `arrow`; and a damaged file is refused, as a read refuses it.

use std::fs::File;
use std::path::Path;

use penin_formats::Keys;
use penin_orchestrator::memory::{self, Options};
use penin_orchestrator::{Format, Map, Number, NumericVectorArtifact, Orchestrator, Value};

/// Dimension of the vectors: 1,500 of them make a 4.6 MB snapshot, above the size from which
/// a snapshot is mapped (4 MiB).
const DIM: usize = 384;

/// A state whose `arrow` snapshot is `artifacts × 384` floats and a little more: every kind
/// of thing a snapshot keeps, floats of every kind (NaN, -0.0, subnormals) among them.
fn state(artifacts: usize) -> Orchestrator {
    let mut o = Orchestrator::new();
    let mut rng = penin_testkit::Xorshift::new(0x2545_F491_4F6C_DD1D);
    for i in 0..artifacts {
        let vector: Vec<f64> = (0..DIM)
            .map(|j| {
                let seed = rng.next_u64();
                match (i + j) % 97 {
                    0 => f64::NAN,
                    1 => -0.0,
                    2 => f64::from_bits(seed >> 40),
                    _ => f64::from_bits(seed >> 2),
                }
            })
            .collect();
        let mut metadata = Map::new();
        metadata.insert("i", Value::from(i64::try_from(i).unwrap()));
        metadata.insert("tag", Value::from(format!("t{}", i % 7)));
        o.add_knowledge(
            format!("k{i}"),
            NumericVectorArtifact::new(vector).with_metadata(metadata),
        );
    }
    for i in 0..20_i32 {
        o.add_task(Value::from(format!("task {i}")));
        o.add_score(Number::Float(f64::from(i) / 3.0));
    }
    o
}

fn encoded(o: &Orchestrator) -> Vec<u8> {
    penin_codec::to_vec(o.document())
}

/// Loads `path` both ways: (read, mapped, whether it was mapped).
fn both(path: &Path) -> (Orchestrator, Orchestrator, bool) {
    let file = File::open(path).unwrap();
    let mut read = Orchestrator::new();
    read.load_file_with(&file, path, &Keys::new()).unwrap();
    let mut mapped = Orchestrator::new();
    let (_, was_mapped) = mapped.map_file_with(&file, path, &Keys::new()).unwrap();
    (read, mapped, was_mapped)
}

/// Whether this process maps `path` (Linux), or `None` where that cannot be seen.
fn mapped_here(path: &Path) -> Option<bool> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let path = path.canonicalize().unwrap();
    Some(
        maps.lines()
            .any(|line| line.ends_with(&*path.to_string_lossy())),
    )
}

#[test]
fn a_mapped_load_gives_the_state_a_read_gives_and_maps_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.arrow");
    let state = state(1_500);
    state.save_state_as(&path, Format::Arrow).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > 4 << 20);

    let (read, mapped, was_mapped) = both(&path);
    assert_eq!(encoded(&read), encoded(&state));
    assert_eq!(encoded(&mapped), encoded(&state));
    // Mapped with every page at once, as a search loads it: the same state.
    let file = File::open(&path).unwrap();
    let mut populated = Orchestrator::new();
    let (_, was_populated) = populated
        .map_file_populated_with(&file, &path, &Keys::new())
        .unwrap();
    assert_eq!(was_populated, was_mapped);
    assert_eq!(encoded(&populated), encoded(&state));
    drop(populated);
    if cfg!(target_os = "linux") {
        assert!(was_mapped, "a large arrow snapshot is mapped on Linux");
        // The vectors live in the file's pages for as long as the state does.
        assert_eq!(mapped_here(&path), Some(true));
        drop((read, mapped));
        assert_eq!(mapped_here(&path), Some(false));
    } else {
        assert!(!was_mapped);
    }
}

#[test]
fn a_small_or_non_arrow_snapshot_is_read_not_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.arrow");
    state(10).save_state_as(&small, Format::Arrow).unwrap();
    let (read, mapped, was_mapped) = both(&small);
    assert!(!was_mapped);
    assert_eq!(encoded(&read), encoded(&mapped));

    let json = dir.path().join("state.json");
    state(1_500).save_state_as(&json, Format::Json).unwrap();
    let (read, mapped, was_mapped) = both(&json);
    assert!(!was_mapped);
    assert_eq!(encoded(&read), encoded(&mapped));
}

#[test]
fn a_bit_flipped_anywhere_in_a_mapped_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.arrow");
    state(1_500).save_state_as(&path, Format::Arrow).unwrap();
    let original = std::fs::read(&path).unwrap();
    let len = original.len();
    // The first and last bytes, then bytes spread over the whole file (the vectors are most
    // of it; the keys, the metadata and the footer are near its end).
    let mut offsets: Vec<usize> = (0..16).chain(len - 200..len).collect();
    offsets.extend((0..100).map(|i| i * (len / 100) + 13));
    for offset in offsets {
        let bit = offset % 8;
        let mut damaged = original.clone();
        damaged[offset] ^= 1 << bit;
        std::fs::write(&path, &damaged).unwrap();
        let file = File::open(&path).unwrap();
        let mut o = Orchestrator::new();
        let result = o.map_file_with(&file, &path, &Keys::new());
        assert!(
            result.is_err(),
            "bit {bit} of byte {offset} of {len} flipped: loaded as a state"
        );
        let result = Orchestrator::new().map_file_populated_with(&file, &path, &Keys::new());
        assert!(
            result.is_err(),
            "bit {bit} of byte {offset} of {len} flipped: loaded as a state, populated"
        );
    }
}

#[test]
fn loads_map_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.arrow");
    let state = state(1_500);
    state.save_state_as(&path, Format::Arrow).unwrap();

    let read = memory::load_with(&path, &Options::new(Some(1000))).unwrap();
    assert!(!read.mapped);
    let mapped =
        memory::load_with(&path, &Options::new(Some(1000)).with_mapped_loads(true)).unwrap();
    assert_eq!(mapped.mapped, cfg!(target_os = "linux"));
    assert_eq!(encoded(&read.state), encoded(&mapped.state));
    assert_eq!(encoded(&mapped.state), encoded(&state));
    let options = Options::new(Some(1000))
        .with_mapped_loads(true)
        .with_populated_maps(true);
    let populated = memory::load_with(&path, &options).unwrap();
    assert_eq!(populated.mapped, cfg!(target_os = "linux"));
    assert_eq!(encoded(&populated.state), encoded(&state));
    // Populating asks for nothing without a map.
    let options = Options::new(Some(1000)).with_populated_maps(true);
    assert!(!memory::load_with(&path, &options).unwrap().mapped);
}
