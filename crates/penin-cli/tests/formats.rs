//! Compressed and arrow snapshots from the command line: `--format`, `convert --to`, and the
//! exit codes of a damaged stream, a damaged arrow file and a newer one.

mod common;

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
