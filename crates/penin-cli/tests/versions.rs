//! Files of a newer version (the ledger, checkpoint meta files) are refused with exit code
//! 69 and a message naming both versions, whatever follows the version in the file.

mod common;

use common::{Env, LEDGER};

const CHECKPOINTS: &str = ".penin_omega/state.json.checkpoints";

#[test]
fn a_ledger_line_of_a_newer_version_exits_69_naming_both_versions() {
    let env = Env::new();
    env.run(&["add-score", "1"]).assert_ok();
    env.run(&["add-score", "2"]).assert_ok();
    let ledger = env.read(LEDGER);
    let offset = ledger.len();
    // A newer penin's line: a layout this one cannot read, and no hash at the end.
    let newer: &[u8] = b"{\"v\":2,\"anything\":[1,2 \"not json\"\n";
    for (name, bytes) in [
        ("last", [&ledger[..], newer].concat()),
        // Followed by a version-1 line: still the version, not a broken chain.
        (
            "middle",
            [
                &ledger[..],
                newer,
                ledger.split_inclusive(|&b| b == b'\n').next().unwrap(),
            ]
            .concat(),
        ),
    ] {
        env.write(LEDGER, &bytes);
        let message = format!(
            "penin: .penin_omega/state.json.ledger: the line at byte {offset} is of ledger \
             version 2, newer than version 1 that this penin reads"
        );
        for args in [&["verify"][..], &["log"]] {
            let out = env.run(args);
            assert_eq!(out.code, Some(69), "{name} {args:?}: {}", out.stderr);
            assert!(
                out.stderr.contains(&message),
                "{name} {args:?}: {}",
                out.stderr
            );
        }
        if name == "last" {
            // A writer reads the last line when it opens the ledger: it refuses to append.
            for args in [&["add-score", "3"][..], &["compact"], &["checkpoint"]] {
                let out = env.run(args);
                assert_eq!(out.code, Some(69), "{args:?}: {}", out.stderr);
                assert!(
                    out.stderr.contains("ledger version 2"),
                    "{args:?}: {}",
                    out.stderr
                );
            }
            assert_eq!(env.read(LEDGER), bytes, "the newer ledger was changed");
        }
    }
    env.write(LEDGER, &ledger);
    env.run(&["verify"]).assert_ok();
}

#[test]
fn a_checkpoint_meta_of_a_newer_version_exits_69_before_anything_else() {
    let env = Env::new();
    env.run(&["add-score", "1"]).assert_ok();
    env.run(&["checkpoint", "--tag", "t"]).assert_ok();
    let meta = env
        .tree()
        .into_iter()
        .find(|name| {
            name.starts_with(CHECKPOINTS)
                && std::path::Path::new(name)
                    .extension()
                    .is_some_and(|e| e == "meta")
        })
        .unwrap();
    let original = env.read(&meta);
    let id = meta
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".meta")
        .to_owned();
    let message =
        format!("{meta} is a checkpoint of version 7, newer than version 1 that this penin reads");
    let rows: [(&str, Vec<u8>); 3] = [
        // The same meta, but version 7.
        (
            "version only",
            String::from_utf8(original.clone())
                .unwrap()
                .replace("\"penin_checkpoint\":1", "\"penin_checkpoint\":7")
                .into_bytes(),
        ),
        // A wrong checksum: still the version that is reported.
        (
            "wrong checksum",
            String::from_utf8(original.clone())
                .unwrap()
                .replace("\"penin_checkpoint\":1", "\"penin_checkpoint\":7")
                .replace("\"blake2b\":\"", "\"blake2b\":\"00")
                .into_bytes(),
        ),
        // Another layout altogether.
        (
            "another layout",
            b"{\"penin_checkpoint\":7}\x00binary\xff".to_vec(),
        ),
    ];
    for (name, bytes) in rows {
        env.write(&meta, &bytes);
        for args in [
            &["checkpoints"][..],
            &["verify", "--all"],
            &["restore", "t"],
            &["restore", &id],
            &["prune", "--keep-last", "1"],
        ] {
            let out = env.run(args);
            assert_eq!(out.code, Some(69), "{name} {args:?}: {}", out.stderr);
            assert!(
                out.stderr.contains(&message),
                "{name} {args:?}: {}",
                out.stderr
            );
        }
    }
    env.write(&meta, &original);
    env.run(&["verify", "--all"]).assert_ok();
}
