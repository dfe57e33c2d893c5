//! Compressed and arrow snapshots from the command line: `--format`, `convert --to`, and the
//! exit codes of a damaged stream, a damaged arrow file and a newer one.

mod common;

use std::fmt::Write as _;
use std::io::Write;

use common::{Env, fixture_bytes};
use penin_formats::Format;

const STATE: &str = ".penin_omega/state.json";

fn format_of(env: &Env, rel: &str) -> Format {
    Format::detect(&env.read(rel))
}

/// The seed JSON a file of any format holds.
fn seed_json(format: Format, bytes: &[u8]) -> Vec<u8> {
    if format == Format::Arrow {
        penin_codec::to_vec(&penin_formats::arrow::from_slice(bytes, None).unwrap())
    } else {
        penin_formats::decompress(format, bytes).unwrap()
    }
}

fn compress(format: Format, bytes: &[u8]) -> Vec<u8> {
    let mut encoder = penin_formats::Encoder::new(format, Vec::new()).unwrap();
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn format_sets_a_new_state_and_converts_an_existing_one_at_compaction() {
    let env = Env::new();
    env.run(&["--format", "json.gz", "demo"]).assert_ok();
    assert_eq!(format_of(&env, STATE), Format::JsonGz);
    let stats = env.run(&["stats"]);
    stats.assert_ok();
    assert!(
        stats.stdout.contains("Knowledge base: 2 items"),
        "{}",
        stats.stdout
    );

    // A change and a compaction without --format: the state keeps its format.
    env.run(&["add-score", "0.5"]).assert_ok();
    env.run(&["compact"]).assert_ok();
    assert_eq!(format_of(&env, STATE), Format::JsonGz);

    // --format on an existing state: the compaction converts it in place.
    let out = env.run(&["--format", "json.zst", "compact"]);
    out.assert_ok();
    assert!(
        out.stdout.contains("the snapshot (json.zst, "),
        "{}",
        out.stdout
    );
    assert_eq!(format_of(&env, STATE), Format::JsonZst);
    env.run(&["compact"]).assert_ok();
    assert_eq!(format_of(&env, STATE), Format::JsonZst);
    env.run(&["verify"]).assert_ok();

    // Back to the seed JSON: the same state as a plain conversion gives.
    env.run(&["convert", STATE, "plain.json"]).assert_ok();
    env.run(&["--format", "json", "compact"]).assert_ok();
    assert_eq!(env.read(STATE), env.read("plain.json"));
    assert_eq!(env.stats_json()["score_history_size"], 4);
}

#[test]
fn run_rewrites_an_unchanged_state_in_the_format_asked_for() {
    let env = Env::new();
    env.write(STATE, &fixture_bytes("seed_demo.json"));
    let out = env.run_with_input(&["--format", "json.zst", "run"], "");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(format_of(&env, STATE), Format::JsonZst);
    let plain = penin_formats::decompress(Format::JsonZst, &env.read(STATE)[..]).unwrap();
    assert_eq!(plain, fixture_bytes("seed_demo.expected.json"));
}

#[test]
fn convert_writes_every_format_from_every_format() {
    let expected = fixture_bytes("seed_demo.expected.json");
    let env = Env::new();
    env.write("in.json", &fixture_bytes("seed_demo.json"));
    for from in Format::ALL {
        env.run(&["convert", "in.json", "from", "--to", from.name()])
            .assert_ok();
        assert_eq!(format_of(&env, "from"), from);
        for to in Format::ALL {
            let out = env.run(&["convert", "from", "to", "--to", to.name()]);
            out.assert_ok();
            assert_eq!(out.stdout, format!("Converted from to to ({to})\n"));
            assert_eq!(format_of(&env, "to"), to);
            let plain = seed_json(to, &env.read("to"));
            assert!(
                plain == expected,
                "{from} -> {to}: not the seed's bytes inside"
            );
        }
    }
    let out = env.run(&["convert", "in.json", "x", "--to", "gz"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("expected json, json.gz, json.zst or arrow"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_damaged_compressed_state_exits_88_and_is_left_alone() {
    let json = fixture_bytes("seed_demo.json");
    for format in [Format::JsonGz, Format::JsonZst] {
        let env = Env::new();
        let whole = compress(format, &json);
        let cut = &whole[..whole.len() - 3];
        env.write(STATE, cut);
        let compression = format.compression().unwrap();
        for args in [&["stats"][..], &["run"][..], &["verify"][..]] {
            let out = env.run(args);
            assert_eq!(out.code, Some(88), "{format} {args:?}: {}", out.stderr);
            assert!(
                out.stderr.contains(&format!(
                    "{STATE} cannot be decompressed: the {compression} stream is damaged or truncated"
                )),
                "{format} {args:?}: {}",
                out.stderr
            );
        }
        assert_eq!(env.read(STATE), cut, "{format}: the file was changed");

        // --fresh moves it aside, whole, and starts empty.
        let out = env.run(&["run", "--fresh"]);
        assert_eq!(out.code, Some(0), "{format}: {}", out.stderr);
        let aside: Vec<_> = env
            .tree()
            .into_iter()
            .filter(|name| name.contains("state.json.unreadable-"))
            .collect();
        assert_eq!(aside.len(), 1, "{format}: {:?}", env.tree());
        assert_eq!(env.read(&aside[0]), cut, "{format}: not the damaged file");
        assert_eq!(env.stats_json()["knowledge_base_size"], 0);

        // JSON errors inside are placed in the decompressed content.
        env.write(STATE, &compress(format, b"{\"knowledge_base\": [1, 2"));
        let out = env.run(&["stats"]);
        assert_eq!(out.code, Some(81), "{format}: {}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("(in the decompressed {compression} content)")),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn an_arrow_state_keeps_its_format_through_changes_and_compactions() {
    let env = Env::new();
    env.write(STATE, &fixture_bytes("seed_demo.json"));
    env.run(&["--format", "arrow", "compact"]).assert_ok();
    assert_eq!(format_of(&env, STATE), Format::Arrow);
    env.run(&["add-score", "0.5"]).assert_ok();
    env.run(&["compact"]).assert_ok();
    assert_eq!(format_of(&env, STATE), Format::Arrow);
    env.run(&["verify"]).assert_ok();
    assert_eq!(env.stats_json()["score_history_size"], 4);
    env.run(&["convert", STATE, "back.json", "--to", "json"])
        .assert_ok();
    assert_eq!(
        seed_json(Format::Arrow, &env.read(STATE)),
        env.read("back.json")
    );
}

#[test]
fn a_damaged_arrow_state_exits_65_and_is_left_alone() {
    let env = Env::new();
    env.write("in.json", &fixture_bytes("seed_demo.json"));
    env.run(&["convert", "in.json", STATE, "--to", "arrow"])
        .assert_ok();
    let mut bytes = env.read(STATE);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    env.write(STATE, &bytes);
    for args in [&["stats"][..], &["run"][..], &["verify"][..]] {
        let out = env.run(args);
        assert_eq!(out.code, Some(65), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "{STATE} cannot be loaded: the arrow snapshot is damaged: checksum mismatch: expected "
            )),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(env.read(STATE), bytes, "the file was changed");
    // Cut short: refused the same way.
    env.write(STATE, &bytes[..bytes.len() - 1]);
    let out = env.run(&["stats"]);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
}

/// An arrow state extended by a hole to a terabyte (a sparse file) is refused from its last
/// bytes by every command, read or mapped, with a gigabyte of address space: a penin that
/// sized a buffer or a map by the file's length, or read it to its end, fails here at once
/// (an infallible allocation aborts the process) instead of taking the machine's memory.
#[test]
fn an_arrow_state_extended_by_a_terabyte_hole_exits_65_in_a_gigabyte() {
    let env = Env::new();
    env.write("in.json", &fixture_bytes("seed_demo.json"));
    env.run(&["convert", "in.json", STATE, "--to", "arrow"])
        .assert_ok();
    let bytes = env.read(STATE);
    env.extend_by_hole(STATE, (1 << 40) - bytes.len() as u64, b"");
    for args in [&["stats"][..], &["run"][..], &["verify"][..], &["keys"][..]] {
        let out = env.run_within(1 << 20, args);
        assert_eq!(out.code, Some(65), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "{STATE} cannot be loaded: the arrow snapshot is damaged: the file does not end with ARROW1"
            )),
            "{args:?}: {}",
            out.stderr
        );
    }
    let after = std::fs::File::open(env.path(STATE)).unwrap();
    assert_eq!(
        after.metadata().unwrap().len(),
        1 << 40,
        "the file was changed"
    );
    let mut head = vec![0; bytes.len()];
    std::io::Read::read_exact(&mut &after, &mut head).unwrap();
    assert!(head == bytes, "the file was changed");
}

/// The first `penin.version` value `1` of a penin arrow file made `2`: the file a newer penin
/// would write (its checksum no longer matches, and the version is read before it).
fn newer(mut bytes: Vec<u8>) -> Vec<u8> {
    // A flatbuffer string: its length (u32), its bytes, a NUL.
    let at = bytes
        .windows(6)
        .position(|w| w == b"\x01\x00\x00\x001\x00")
        .expect("the version string");
    bytes[at + 4] = b'2';
    bytes
}

#[test]
fn a_newer_arrow_state_exits_69_naming_both_versions() {
    let env = Env::new();
    env.write("in.json", &fixture_bytes("seed_demo.json"));
    env.run(&["convert", "in.json", "state.arrow", "--to", "arrow"])
        .assert_ok();
    env.write(STATE, &newer(env.read("state.arrow")));
    for args in [&["stats"][..], &["verify"][..], &["run"][..]] {
        let out = env.run(args);
        assert_eq!(out.code, Some(69), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("the arrow snapshot is of version 2; this penin reads up to version 1"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

/// Every file under the test's directory with its bytes and modification time.
fn files(env: &Env) -> std::collections::BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    env.tree()
        .into_iter()
        .filter(|name| env.path(name).is_file())
        .map(|name| {
            let modified = std::fs::metadata(env.path(&name))
                .unwrap()
                .modified()
                .unwrap();
            let bytes = env.read(&name);
            (name, (bytes, modified))
        })
        .collect()
}

#[test]
fn migrate_rewrites_the_state_in_place_after_a_checkpoint() {
    let env = Env::new();
    env.run(&["demo"]).assert_ok();
    env.run(&["add-score", "0.25"]).assert_ok();
    let before = env.stats_json();
    let plain = {
        env.run(&["convert", STATE, "plain.json"]).assert_ok();
        env.read("plain.json")
    };

    let snapshot = env.read(STATE).len();
    let out = env.run(&["migrate", "--to", "json.zst"]);
    out.assert_ok();
    assert!(
        out.stdout.starts_with(&format!(
            "Migrated {STATE} from json ({snapshot} bytes) to json.zst ({} bytes), up to change 8;",
            env.read(STATE).len()
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(pre-migrate)"), "{}", out.stdout);
    assert_eq!(format_of(&env, STATE), Format::JsonZst);
    let inside = penin_formats::decompress(Format::JsonZst, &env.read(STATE)[..]).unwrap();
    assert!(inside == plain, "not the same state inside");
    assert_eq!(env.stats_json(), before);
    // The journal was folded in: the snapshot alone holds the state.
    assert_eq!(env.read(&format!("{STATE}.journal")).len(), 96);

    // The checkpoint holds the state as it was.
    let list = env.run(&["checkpoints", "--json"]);
    list.assert_ok();
    let checkpoints: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(checkpoints[0]["tag"], "pre-migrate", "{}", list.stdout);
    let id = checkpoints[0]["id"].as_str().unwrap();
    assert_eq!(env.read(&format!("{STATE}.checkpoints/{id}.json")), plain);
    env.run(&["verify", "--all"]).assert_ok();

    // To the format it has: said, and nothing written.
    let files_before = files(&env);
    let out = env.run(&["migrate", "--to", "json.zst"]);
    out.assert_ok();
    assert!(
        out.stdout.contains("is json.zst already") && out.stdout.contains("nothing to migrate"),
        "{}",
        out.stdout
    );
    assert_eq!(files(&env), files_before);

    // And back.
    env.run(&["migrate", "--to", "json"]).assert_ok();
    assert_eq!(env.read(STATE), plain);
}

#[test]
fn migrate_dry_run_says_what_it_would_do_and_changes_no_file() {
    let env = Env::new();
    env.run(&["demo"]).assert_ok();
    env.run(&["add-score", "0.25"]).assert_ok();
    // A stale temporary, which a writer would remove: a dry run leaves even that.
    env.write(".penin_omega/.state.json.penin-tmp.1.0", b"stale");
    let before = files(&env);
    let snapshot = env.read(STATE).len();
    let journal = env.read(&format!("{STATE}.journal")).len();
    let out = env.run(&["migrate", "--to", "json.gz", "--dry-run"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        format!(
            "Would migrate {STATE} from json ({snapshot} bytes, and a journal of {journal} bytes) \
             to json.gz, up to change 8: first a checkpoint tagged pre-migrate in \
             {STATE}.checkpoints, then the snapshot rewritten in json.gz in place (dry run: \
             nothing was changed)\n"
        )
    );
    assert_eq!(files(&env), before, "a dry run changed a file");

    let out = env.run(&["migrate", "--to", "json", "--dry-run"]);
    out.assert_ok();
    assert!(out.stdout.contains("is json already"), "{}", out.stdout);
    assert_eq!(files(&env), before);
}

#[test]
fn migrate_json_gives_the_plan_then_what_was_done() {
    let env = Env::new();
    env.run(&["demo"]).assert_ok();
    env.run(&["add-score", "0.25"]).assert_ok();
    let snapshot = env.read(STATE).len();
    let journal = env.read(&format!("{STATE}.journal")).len();
    let json = |args: &[&str]| {
        let out = env.run(args);
        out.assert_ok();
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()
    };
    let mut plan = serde_json::json!({
        "path": STATE, "from": "json", "to": "json.gz", "dry_run": true, "noop": false,
        "snapshot_bytes": snapshot, "journal_bytes": journal, "seq": 8,
        "checkpoint_tag": "pre-migrate", "checkpoints_dir": format!("{STATE}.checkpoints"),
        "checkpoint": null, "migrated_bytes": null,
    });
    let before = files(&env);
    assert_eq!(
        json(&["migrate", "--to", "json.gz", "--dry-run", "--json"]),
        plan
    );
    assert_eq!(files(&env), before, "a dry run changed a file");

    let done = json(&["migrate", "--to", "json.gz", "--json"]);
    let checkpoints = json(&["checkpoints", "--json"]);
    plan["dry_run"] = false.into();
    plan["checkpoint"] = checkpoints[0]["id"].clone();
    plan["migrated_bytes"] = env.read(STATE).len().into();
    assert_eq!(done, plan);
    assert_eq!(checkpoints[0]["tag"], "pre-migrate");

    // Nothing to do: the snapshot is json.gz already, its journal empty.
    let noop = json(&["migrate", "--to", "json.gz", "--json"]);
    assert_eq!(
        (
            &noop["noop"],
            &noop["from"],
            &noop["checkpoint"],
            &noop["journal_bytes"]
        ),
        (
            &true.into(),
            &"json.gz".into(),
            &serde_json::Value::Null,
            &96.into()
        )
    );
}

#[test]
fn migrate_without_a_state_exits_66_and_creates_nothing() {
    let env = Env::new();
    for args in [
        &["migrate", "--to", "json.gz"][..],
        &["migrate", "--to", "json.gz", "--dry-run"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, Some(66), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
        assert!(!env.state().exists(), "{args:?}");
    }
    let out = env.run(&["migrate", "--to", "gz"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn a_one_shot_creating_a_state_writes_it_in_the_format_asked_for() {
    for format in Format::ALL {
        let env = Env::new();
        for args in [
            &["add-knowledge", "k", "--vector", "1,2"][..],
            &["add-task", "{\"a\":1}"],
            &["add-score", "0.5"],
        ] {
            let env = Env::new();
            let mut args = args.to_vec();
            args.splice(0..0, ["--format", format.name()]);
            env.run(&args).assert_ok();
            assert_eq!(format_of(&env, STATE), format, "{args:?}");
        }
        // Changes after it go to the journal; the snapshot keeps its format.
        env.run(&["--format", format.name(), "add-score", "0.5"])
            .assert_ok();
        env.run(&["add-score", "0.75"]).assert_ok();
        env.run(&["compact"]).assert_ok();
        assert_eq!(format_of(&env, STATE), format);
        assert_eq!(env.stats_json()["score_history_size"], 2);
    }
}

/// Loads `NPY` with NumPy and writes its shape (`R C`) and C-order bytes to `OUT`; exit 3
/// when NumPy is missing.
const NUMPY_LOAD: &str = r#"
import sys
try:
    import numpy as np
except ImportError:
    print("the Python package numpy is missing", file=sys.stderr)
    sys.exit(3)
m = np.load(sys.argv[1], allow_pickle=False)
assert m.dtype == np.dtype("<f8"), m.dtype
assert m.ndim == 2, m.shape
with open(sys.argv[2], "wb") as out:
    out.write(f"{m.shape[0]} {m.shape[1]}\n".encode())
    out.write(np.ascontiguousarray(m).tobytes())
"#;

/// NumPy's view of the `.npy` file `npy`: its shape and its values' bytes (`None` after a
/// skip, which fails under CI, when Python or NumPy is missing).
#[track_caller]
fn numpy_load(env: &Env, test: &str, npy: &str) -> Option<((u64, u64), Vec<u8>)> {
    if !penin_testkit::python3(test, "NumPy cannot check penin's .npy files") {
        return None;
    }
    let out = std::process::Command::new("python3")
        .args(["-c", NUMPY_LOAD])
        .arg(env.path(npy))
        .arg(env.path("numpy.out"))
        .output()
        .unwrap();
    if penin_testkit::python_package_missing(test, &out, "NumPy cannot check penin's .npy files") {
        return None;
    }
    assert!(
        out.status.success(),
        "NumPy cannot load {npy}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = env.read("numpy.out");
    let newline = bytes.iter().position(|&b| b == b'\n').unwrap();
    let shape = std::str::from_utf8(&bytes[..newline]).unwrap();
    let (rows, columns) = shape.split_once(' ').unwrap();
    Some((
        (rows.parse().unwrap(), columns.parse().unwrap()),
        bytes[newline + 1..].to_vec(),
    ))
}

/// A state of `rows` vectors of `columns` floats, odd ones among them (NaN, infinities,
/// -0.0, subnormals, the extremes), and keys that need escaping.
fn vectors_state(env: &Env, rows: usize, columns: usize) -> penin_orchestrator::Orchestrator {
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MIN_POSITIVE / 4.0,
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        0.1,
    ];
    let mut rng = common::Rng(7);
    let mut state = penin_orchestrator::Orchestrator::new();
    for row in 0..rows {
        let vector: Vec<f64> = (0..columns)
            .map(|column| match (row * columns + column) % 4 {
                0 => specials[(row + column) % specials.len()],
                _ => f64::from_bits(rng.next()),
            })
            .collect();
        state.add_knowledge(
            format!("key {row} \"é\" 😀"),
            penin_orchestrator::NumericVectorArtifact::new(vector),
        );
    }
    state.save_state(env.state()).unwrap();
    // What penin reads back (a NaN's payload does not survive JSON): what export sees.
    let mut loaded = penin_orchestrator::Orchestrator::new();
    assert!(loaded.load_state(env.state()).unwrap());
    loaded
}

#[test]
fn export_npy_is_the_knowledge_base_bit_for_bit_as_numpy_reads_it() {
    let test = "export_npy_is_the_knowledge_base_bit_for_bit_as_numpy_reads_it";
    let env = Env::new();
    let state = vectors_state(&env, 37, 5);
    let out = env.run(&["export", "--to", "npy", "v.npy"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        format!(
            "Exported 37 vectors of dimension 5 from {STATE} to v.npy (npy, float64, shape \
             (37, 5)); their keys, in row order, to v.npy.keys.json\n"
        )
    );
    let mut expected = Vec::new();
    for artifact in state.knowledge_base().values() {
        for value in &artifact.vector {
            expected.extend_from_slice(&value.to_bits().to_le_bytes());
        }
    }
    // The file itself: a 128-byte header, then the values as they are.
    let npy = env.read("v.npy");
    assert_eq!(&npy[..8], b"\x93NUMPY\x01\x00");
    assert!(
        npy[128..] == expected[..],
        "the values are not the state's bits"
    );
    // The keys, in row order.
    let keys: Vec<String> = serde_json::from_slice(&env.read("v.npy.keys.json")).unwrap();
    let state_keys: Vec<&String> = state.knowledge_base().keys().collect();
    assert_eq!(keys.iter().collect::<Vec<_>>(), state_keys);
    // And NumPy reads the same matrix, bit for bit.
    let Some((shape, bytes)) = numpy_load(&env, test, "v.npy") else {
        return;
    };
    assert_eq!(shape, (37, 5));
    assert!(bytes == expected, "NumPy reads other values");
}

#[test]
fn export_npy_of_an_empty_knowledge_base_is_a_0_by_0_matrix() {
    let test = "export_npy_of_an_empty_knowledge_base_is_a_0_by_0_matrix";
    let env = Env::new();
    env.run(&["add-score", "0.5"]).assert_ok();
    env.run(&["export", "--to", "npy", "e.npy", "--keys", "e-keys.json"])
        .assert_ok();
    assert_eq!(env.read("e-keys.json"), b"[]\n");
    assert!(!env.path("e.npy.keys.json").exists());
    assert_eq!(env.read("e.npy").len(), 128);
    let Some((shape, bytes)) = numpy_load(&env, test, "e.npy") else {
        return;
    };
    assert_eq!(shape, (0, 0));
    assert!(bytes.is_empty());
}

#[test]
fn export_npy_refuses_vectors_of_several_dimensions_naming_two_keys() {
    let env = Env::new();
    env.run(&["add-knowledge", "a", "--vector", "1,2,3"])
        .assert_ok();
    env.run(&["add-knowledge", "b", "--vector", "4,5,6"])
        .assert_ok();
    env.run(&["add-knowledge", "c", "--vector", "7,8"])
        .assert_ok();
    let out = env.run(&["export", "--to", "npy", "v.npy"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "penin: the knowledge base's vectors are not all of one dimension, as a matrix needs: \
         \"a\" has 3 values, \"c\" has 2\n"
    );
    assert!(!env.path("v.npy").exists());
    assert!(!env.path("v.npy.keys.json").exists());

    // Parquet has no such constraint; `--keys` is npy's alone.
    env.run(&["export", "--to", "parquet", "v.parquet"])
        .assert_ok();
    let out = env.run(&["export", "--to", "parquet", "w.parquet", "--keys", "k.json"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(!env.path("w.parquet").exists() && !env.path("k.json").exists());
    let out = env.run(&["--state", "missing.json", "export", "--to", "npy", "v.npy"]);
    assert_eq!(out.code, Some(66), "{}", out.stderr);
}

/// Reads a Parquet export with pyarrow: per row, the key, the vector's floats as
/// little-endian bits in hex, and the metadata, one JSON line each; and the compression of
/// every column chunk. Exit 3 when pyarrow is missing.
const PARQUET_READ: &str = r#"
import json, struct, sys
try:
    import pyarrow.parquet as pq
except ImportError:
    sys.exit(3)
f = pq.ParquetFile(sys.argv[1])
codecs = sorted({f.metadata.row_group(g).column(c).compression
                 for g in range(f.metadata.num_row_groups)
                 for c in range(f.metadata.num_columns)})
table = f.read()
with open(sys.argv[2], "w") as out:
    out.write(json.dumps({"codecs": codecs, "columns": table.column_names}) + "\n")
    for key, vector, metadata in zip(*(table.column(n).to_pylist() for n in ("key", "vector", "metadata"))):
        bits = "".join(struct.pack("<d", x).hex() for x in vector)
        out.write(json.dumps([key, bits, metadata]) + "\n")
"#;

#[test]
fn export_parquet_is_the_knowledge_base_as_pyarrow_reads_it() {
    let test = "export_parquet_is_the_knowledge_base_as_pyarrow_reads_it";
    let env = Env::new();
    let mut state = vectors_state(&env, 40, 3);
    // One vector of another dimension, and metadata: a Parquet export keeps both.
    let mut metadata = penin_orchestrator::Map::new();
    metadata.insert("source", penin_orchestrator::Value::from("docs"));
    state.add_knowledge(
        "odd",
        penin_orchestrator::NumericVectorArtifact::new(vec![1.5]).with_metadata(metadata),
    );
    state.save_state(env.path(STATE)).unwrap();
    let out = env.run(&["export", "--to", "parquet", "kb.parquet"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        format!(
            "Exported 41 artifacts from {STATE} to kb.parquet (parquet, zstd level 1: key, \
             vector, metadata, extra)\n"
        )
    );
    assert!(env.read("kb.parquet").starts_with(b"PAR1"));
    if !penin_testkit::python3(test, "pyarrow cannot check penin's Parquet export") {
        return;
    }
    let run = std::process::Command::new("python3")
        .args(["-c", PARQUET_READ])
        .arg(env.path("kb.parquet"))
        .arg(env.path("rows.jsonl"))
        .output()
        .unwrap();
    if penin_testkit::python_package_missing(
        test,
        &run,
        "pyarrow cannot check penin's Parquet export",
    ) {
        return;
    }
    assert!(
        run.status.success(),
        "pyarrow cannot read the export: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let read = String::from_utf8(env.read("rows.jsonl")).unwrap();
    let mut lines = read.lines();
    let head: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(head["codecs"], serde_json::json!(["ZSTD"]));
    assert_eq!(
        head["columns"],
        serde_json::json!(["key", "vector", "metadata", "extra"])
    );
    let rows: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), state.knowledge_base().len());
    for (row, (key, artifact)) in rows.iter().zip(state.knowledge_base()) {
        let mut bits = String::new();
        for byte in artifact
            .vector
            .iter()
            .flat_map(|f| f.to_bits().to_le_bytes())
        {
            write!(bits, "{byte:02x}").unwrap();
        }
        assert_eq!(row[0], serde_json::json!(key));
        assert_eq!(row[1], serde_json::json!(bits), "{key}");
        let metadata = String::from_utf8(penin_codec::to_vec_compact(
            &penin_orchestrator::Value::from(artifact.metadata.clone()),
        ))
        .unwrap();
        assert_eq!(row[2], serde_json::json!(metadata), "{key}");
    }
}

#[test]
fn convert_and_export_print_json() {
    let env = Env::new();
    vectors_state(&env, 4, 3);
    let json = |args: &[&str]| {
        let out = env.run(args);
        out.assert_ok();
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(
        json(&[
            "convert",
            STATE,
            "out.json.zst",
            "--to",
            "json.zst",
            "--json"
        ]),
        serde_json::json!({
            "input": STATE, "output": "out.json.zst", "format": "json.zst", "encrypted_to": null,
        })
    );
    assert_eq!(Format::detect(&env.read("out.json.zst")), Format::JsonZst);
    let recipient = env.run(&["keygen", "key.txt"]).stdout.trim().to_owned();
    assert_eq!(
        json(&[
            "--identity",
            "key.txt",
            "convert",
            STATE,
            "sealed.json",
            "--json"
        ]),
        serde_json::json!({
            "input": STATE, "output": "sealed.json", "format": "json",
            "encrypted_to": [recipient],
        })
    );
    assert!(
        env.read("sealed.json")
            .starts_with(b"age-encryption.org/v1")
    );

    assert_eq!(
        json(&["export", "--to", "npy", "v.npy", "--json"]),
        serde_json::json!({
            "path": STATE, "file": "v.npy", "format": "npy", "rows": 4, "dimension": 3,
            "keys": "v.npy.keys.json",
        })
    );
    assert_eq!(env.read("v.npy").len(), 128 + 4 * 3 * 8);
    assert_eq!(
        json(&["export", "--to", "parquet", "v.parquet", "--json"]),
        serde_json::json!({
            "path": STATE, "file": "v.parquet", "format": "parquet", "rows": 4,
            "dimension": null, "keys": null,
        })
    );
    assert!(env.read("v.parquet").starts_with(b"PAR1"));
}

/// Whether process `pid` maps `path` (Linux), read from `/proc/PID/maps`.
fn maps_file(pid: u32, path: &std::path::Path) -> bool {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read /proc/PID/maps");
    let path = path.canonicalize().expect("the state exists");
    maps.lines()
        .any(|line| line.ends_with(&*path.to_string_lossy()))
}

#[test]
fn commands_that_only_look_map_a_large_arrow_snapshot_and_writers_read_it() {
    let env = Env::new();
    let rel = ".penin_omega/state.arrow";
    let path = env.path(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // 1,500 × 384 floats: 4.6 MB, above the size from which a snapshot is mapped (4 MiB).
    let mut state = penin_orchestrator::Orchestrator::new();
    for i in 0..1_500_i32 {
        let vector: Vec<f64> = (0..384).map(|j| f64::from(i * 384 + j) * 0.5).collect();
        state.add_knowledge(
            format!("k{i}"),
            penin_orchestrator::NumericVectorArtifact::new(vector),
        );
    }
    state.save_state_as(&path, Format::Arrow).unwrap();

    let out = env.run(&["--state", rel, "-v", "stats"]);
    out.assert_ok();
    assert!(
        out.stdout.contains("Knowledge base: 1500 items"),
        "{}",
        out.stdout
    );
    let mapped = "state.arrow: a arrow snapshot (read through a map of the file), then 0 change(s)";
    if cfg!(target_os = "linux") {
        assert!(out.stderr.contains(mapped), "{}", out.stderr);
    }
    // A search through the map: the nearest by cosine to (1, 1, …) is the flattest vector.
    let query = vec!["1"; 384].join(",");
    let out = env.run(&[
        "--state", rel, "search", "--vector", &query, "-k", "1", "--json",
    ]);
    out.assert_ok();
    assert!(out.stdout.contains(r#""key":"k1499""#), "{}", out.stdout);

    // A command that writes a file made from the state reads the snapshot: what it writes
    // is what the checksum covered.
    let out = env.run(&["--state", rel, "-v", "convert", rel, "copy.json"]);
    out.assert_ok();
    assert!(
        out.stderr.contains("state.arrow: a arrow snapshot, then"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("map of the file"), "{}", out.stderr);

    // `run` keeps the state while other programs may write the file: never mapped.
    let mut session = env.spawn(&["--state", rel, "run", "--sync", "never"]);
    let answer = session.ask(r#"{"op":"stats"}"#);
    assert!(answer.contains(r#""knowledge_base_size":1500"#), "{answer}");
    if cfg!(target_os = "linux") {
        assert!(
            !maps_file(session.pid(), &path),
            "penin run maps its snapshot"
        );
    }
    session.close_stdin();
    let (status, _, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// A compressed state of `len` bytes of content, `head` then `fill` repeated, written
/// through penin's encoder a mebibyte at a time.
fn compressed_content(format: Format, head: &[u8], fill: &[u8], len: usize) -> Vec<u8> {
    let mut encoder = penin_formats::Encoder::new(format, Vec::new()).unwrap();
    encoder.write_all(head).unwrap();
    let chunk = fill.repeat((1 << 20) / fill.len());
    let mut written = head.len();
    while written < len {
        let n = chunk.len().min(len - written);
        encoder.write_all(&chunk[..n]).unwrap();
        written += n;
    }
    encoder.finish().unwrap()
}

/// 50 KB of zstd, or 1.6 MB of gzip, that expand to 1.5 GiB of zeros, of bytes that are
/// not UTF-8, or of a word that is not JSON, are refused from their first 64 KiB, with the
/// error the whole content gives, in a gigabyte of address space (the whole content does
/// not fit in it: decompressed whole, the state was reported as damaged, out of memory), and
/// the file is left as it is.
#[test]
fn a_compressed_state_that_is_not_json_from_its_start_is_refused_from_its_first_bytes() {
    let env = Env::new();
    for format in [Format::JsonZst, Format::JsonGz] {
        let bombs: [(&[u8], &[u8], i32, &str); 3] = [
            (
                b"",
                b"\0",
                65,
                "expected a value, found U+0000 at line 1, column 1",
            ),
            (
                b"",
                b"\xff",
                82,
                "invalid UTF-8 at line 1, column 1 (byte 0)",
            ),
            (
                b"x",
                "\u{e9}".as_bytes(),
                65,
                "expected a value, found 'x' at line 1, column 1",
            ),
        ];
        for (head, fill, code, message) in bombs {
            let bomb = compressed_content(format, head, fill, 3 << 29);
            env.write(STATE, &bomb);
            for args in [&["stats"][..], &["add-score", "0.5"][..]] {
                let out = env.run_within(1 << 20, args);
                assert_eq!(out.code, Some(code), "{format} {args:?}: {}", out.stderr);
                assert!(
                    out.stderr.contains(&format!(
                        "{STATE} is not a valid state (in the decompressed {} content): {message}",
                        format.compression().unwrap()
                    )),
                    "{format} {args:?}: {}",
                    out.stderr
                );
            }
            assert_eq!(env.read(STATE), bomb, "{format}");
        }
    }
}

/// A sound compressed state whose first 64 KiB end inside an integer of a vector: cut there,
/// the integer (2^60, which a float holds exactly) would be one a float does not hold. The
/// state loads, as its JSON does.
#[test]
fn a_compressed_state_cut_inside_a_number_by_the_first_bytes_loads() {
    let mut json = br#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "metadata": {}, "vector": ["#.to_vec();
    let start = (64 << 10) - 18;
    while json.len() < start {
        json.extend_from_slice(if start - json.len() >= 5 {
            b"0.5, "
        } else {
            b" "
        });
    }
    json.extend_from_slice(b"1152921504606846976, 0.5]}}}");
    assert_eq!(&json[start..64 << 10], b"115292150460684697");
    let env = Env::new();
    for format in [Format::JsonZst, Format::JsonGz] {
        env.write(STATE, &compress(format, &json));
        let out = env.run(&["stats"]);
        assert_eq!(out.code, Some(0), "{format}: {}", out.stderr);
        assert!(
            out.stdout.contains("Knowledge base: 1 items"),
            "{}",
            out.stdout
        );
    }
}

/// A compressed state whose content, sound as far as it goes, needs more memory than the
/// process may have is an error that says so (exit 74), not a damaged stream (the decoder
/// had no fault) and not an aborted process.
#[test]
fn a_compressed_state_of_more_than_memory_is_an_error_not_an_abort() {
    let env = Env::new();
    let state = compressed_content(Format::JsonZst, b"{\"score_history\": [", b"0, ", 3 << 29);
    env.write(STATE, &state);
    let out = env.run_within(1 << 20, &["stats"]);
    assert_eq!(out.code, Some(74), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "cannot read {STATE}: no memory to decompress the content past its first "
        )),
        "{}",
        out.stderr
    );
    assert_eq!(env.read(STATE), state);
}

/// A zstd frame whose window needs more memory than the process may have (128 MiB: written
/// as a stream, with no content size, and a window of 2^27 bytes, as `zstd --long=27`
/// writes) is an error that says so (exit 74), not a damaged stream. The limit is the
/// smallest under which the same state with a small window loads.
#[test]
fn a_zstd_window_of_more_than_memory_is_an_error_not_a_damaged_stream() {
    let env = Env::new();
    let json = fixture_bytes("seed_demo.json");
    let with_window = |window_log: u32| {
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.window_log(window_log).unwrap();
        encoder.long_distance_matching(true).unwrap();
        encoder.write_all(&json).unwrap();
        encoder.finish().unwrap()
    };
    env.write(STATE, &with_window(17));
    let loads = |kib: u64| env.run_within(kib, &["stats"]).code == Some(0);
    // The smallest limit, within 8 MiB, under which it loads.
    let (mut low, mut high) = (8 << 10, 4 << 20);
    assert!(loads(high), "the state does not load in 4 GiB");
    while high - low > 8 << 10 {
        let middle = low + (high - low) / 2;
        if loads(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    env.write(STATE, &with_window(27));
    let out = env.run_within(high, &["stats"]);
    assert_eq!(out.code, Some(74), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "cannot read {STATE}: no memory to decompress the content past its first 0 bytes"
        )),
        "{}",
        out.stderr
    );
    // With the window's memory, it loads.
    assert!(loads(high + (256 << 10)));
}
