//! Encrypted states from the command line: `keygen`, `--identity`, `--recipient`,
//! `--plaintext`; the exit codes of a wrong or missing identity (89) and of a changed file
//! (88); the age command and Python's `pyrage` against penin's files.

mod common;

use std::path::Path;
use std::process::Command;

use common::Env;
use penin_formats::{Format, Keys};

const STATE: &str = ".penin_omega/state.json";

/// A new identity in `dir/name` through `penin keygen`: its recipient.
fn keygen(env: &Env, name: &str) -> String {
    let out = env.run(&["keygen", name]);
    out.assert_ok();
    let recipient = out.stdout.trim().to_owned();
    assert!(recipient.starts_with("age1"), "{}", out.stdout);
    recipient
}

/// The content of the encrypted file `rel`, decrypted with the identity file `key`: its
/// format and the seed JSON it holds.
fn open(env: &Env, rel: &str, key: &str) -> (Format, Vec<u8>) {
    let bytes = env.read(rel);
    assert!(
        penin_formats::is_encrypted(&bytes),
        "{rel} is not encrypted"
    );
    let keys = Keys::from_identity_file(env.path(key)).unwrap();
    let inner = penin_formats::decrypt(&keys, &bytes[..]).unwrap().bytes;
    let format = Format::detect(&inner);
    let json = if format == Format::Arrow {
        // An arrow snapshot is not JSON: the state it holds, as JSON.
        penin_codec::to_vec(&penin_formats::arrow::from_slice(&inner, None).unwrap())
    } else {
        penin_formats::decompress(format, &inner[..]).unwrap()
    };
    (format, json)
}

#[test]
fn convert_round_trips_every_format_encrypted() {
    let env = Env::new();
    keygen(&env, "key.txt");
    env.run(&["demo"]).assert_ok();
    let plain = env.read(STATE);
    for format in Format::ALL {
        let name = format!("out.{format}");
        let to = format.name();
        env.run(&["--identity", "key.txt", "convert", STATE, &name, "--to", to])
            .assert_ok();
        assert_eq!(open(&env, &name, "key.txt"), (format, plain.clone()));
        // Back to plain JSON through the identity: the same bytes as the plain save.
        let back = format!("back.{format}.json");
        env.run(&[
            "--identity",
            "key.txt",
            "--plaintext",
            "convert",
            &name,
            &back,
        ])
        .assert_ok();
        assert!(env.read(&back) == plain, "{format}: the JSON moved");
    }
}

#[test]
fn run_and_compaction_keep_the_format_encrypted() {
    for format in Format::ALL {
        let env = Env::new();
        keygen(&env, "key.txt");
        let id = ["--identity", "key.txt", "--format", format.name()];
        env.run(&[&id[..], &["demo"]].concat()).assert_ok();
        let (inner, _) = open(&env, STATE, "key.txt");
        assert_eq!(inner, format);
        // A change journaled, then folded in by `run`'s compaction: still encrypted, still
        // in its format, with the change.
        env.run_with_input(
            &["--identity", "key.txt", "run"],
            "{\"op\": \"add_score\", \"score\": 0.25}\n",
        )
        .assert_ok();
        let (inner, json) = open(&env, STATE, "key.txt");
        assert_eq!(inner, format);
        let state = common::parse_state(&json);
        assert_eq!(state["score_history"]["items"][3], 0.25, "{format}");
        // A checkpoint holds the envelope too; verify --all checks it, restore opens it.
        env.run(&["--identity", "key.txt", "checkpoint", "--tag", "t"])
            .assert_ok();
        let dir = env.path(&format!("{STATE}.checkpoints"));
        let data: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        assert_eq!(data.len(), 1);
        assert!(penin_formats::is_encrypted(
            &std::fs::read(&data[0]).unwrap()
        ));
        env.run(&["--identity", "key.txt", "verify", "--all"])
            .assert_ok();
        assert_eq!(env.run(&["restore", "t"]).code, Some(89), "{format}");
        env.run(&["--identity", "key.txt", "restore", "t"])
            .assert_ok();
    }
}

#[test]
fn a_wrong_or_missing_identity_exits_89_naming_the_recipient() {
    let env = Env::new();
    let recipient = keygen(&env, "key.txt");
    let wrong = keygen(&env, "wrong.txt");
    env.run(&["--identity", "key.txt", "demo"]).assert_ok();
    for args in [
        &["stats"][..],
        &["--identity", "wrong.txt", "stats"],
        &["add-score", "0.5"],
        &["--identity", "wrong.txt", "add-score", "0.5"],
        &["run"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, Some(89), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&recipient), "{args:?}: {}", out.stderr);
    }
    let out = env.run(&["--identity", "wrong.txt", "stats"]);
    assert!(
        out.stderr
            .contains(&format!("the identity given is {wrong}")),
        "{}",
        out.stderr
    );
    // PENIN_IDENTITY stands for --identity.
    let out = output_with_env(&env, &["stats"], "key.txt");
    out.assert_ok();
    // Nothing was appended without the identity.
    assert!(
        out.stdout.contains("Score history: 3 entries"),
        "{}",
        out.stdout
    );
}

fn output_with_env(env: &Env, args: &[&str], identity: &str) -> common::Out {
    common::output(env.command(args).env("PENIN_IDENTITY", identity))
}

#[test]
fn every_flipped_bit_of_an_encrypted_state_is_refused() {
    let env = Env::new();
    keygen(&env, "key.txt");
    env.run(&[
        "--identity",
        "key.txt",
        "--state",
        "s.json",
        "add-score",
        "0.5",
    ])
    .assert_ok();
    env.run(&[
        "--identity",
        "key.txt",
        "--state",
        "s.json",
        "--plaintext",
        "convert",
        "s.json",
        "plain.json",
    ])
    .assert_ok();
    env.run(&["--identity", "key.txt", "convert", "plain.json", "e.json"])
        .assert_ok();
    let sealed = env.read("e.json");
    let magic = penin_formats::AGE_MAGIC.len();
    for at in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[at] ^= 1 << (at % 8);
        env.write("bad.json", &bad);
        let out = env.run(&["--identity", "key.txt", "--state", "bad.json", "stats"]);
        if at < magic {
            // The file is no longer an age file: refused as not a state (not JSON, not
            // UTF-8), never loaded.
            assert!(
                matches!(out.code, Some(65 | 82)),
                "byte {at}: {:?} {}",
                out.code,
                out.stderr
            );
        } else {
            assert_eq!(out.code, Some(88), "byte {at}: {}", out.stderr);
        }
        assert!(out.stderr.contains("bad.json"), "byte {at}: {}", out.stderr);
    }
}

#[test]
fn plaintext_writes_unencrypted_and_a_second_recipient_can_decrypt() {
    let env = Env::new();
    keygen(&env, "key.txt");
    let other = keygen(&env, "other.txt");
    env.run(&["--identity", "key.txt", "--recipient", &other, "demo"])
        .assert_ok();
    // The second recipient alone reads it.
    env.run(&["--identity", "other.txt", "stats"]).assert_ok();
    // --plaintext: the next save is plain JSON, which loads without an identity.
    env.run(&["--identity", "key.txt", "--plaintext", "run"])
        .assert_ok();
    assert!(!penin_formats::is_encrypted(&env.read(STATE)));
    env.run(&["stats"]).assert_ok();
    // A bad recipient is a usage error.
    assert_eq!(env.run(&["--recipient", "age1nope", "stats"]).code, Some(2));
}

#[cfg(unix)]
#[test]
fn keygen_writes_mode_0600_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let recipient = keygen(&env, "key.txt");
    let mode = std::fs::metadata(env.path("key.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = String::from_utf8(env.read("key.txt")).unwrap();
    assert!(
        text.contains(&format!("# public key: {recipient}\n")),
        "{text}"
    );
    let out = env.run(&["keygen", "key.txt"]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("key.txt"), "{}", out.stderr);
    assert_eq!(String::from_utf8(env.read("key.txt")).unwrap(), text);
}

/// The age command decrypts penin's file (penin's recipient stanzas are skipped).
#[test]
fn the_age_command_decrypts_penin_files() {
    let test = "the_age_command_decrypts_penin_files";
    if !penin_testkit::program(test, "age", "the age command's check (.ci/run installs it)") {
        return;
    }
    let env = Env::new();
    let other = keygen(&env, "key.txt");
    keygen(&env, "second.txt");
    env.run(&["demo"]).assert_ok();
    let plain = env.read(STATE);
    env.run(&[
        "--identity",
        "second.txt",
        "--recipient",
        &other,
        "convert",
        STATE,
        "e.json",
    ])
    .assert_ok();
    let out = Command::new("age")
        .args(["--decrypt", "--identity"])
        .arg(env.path("key.txt"))
        .arg(env.path("e.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == plain);
}

/// Runs Python's `pyrage` check: `None` (after a skip, which fails under CI) when pyrage
/// is missing.
fn pyrage(test: &str, args: &[&Path]) -> Option<std::process::Output> {
    if !penin_testkit::python3(test, "no Python to check penin's encrypted files with") {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/age_check.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    if penin_testkit::python_package_missing(test, &out, "pyrage cannot check penin's age files") {
        return None;
    }
    Some(out)
}

#[test]
fn pyrage_decrypts_penin_files_and_penin_reads_pyrage_files() {
    let test = "pyrage_decrypts_penin_files_and_penin_reads_pyrage_files";
    let env = Env::new();
    keygen(&env, "key.txt");
    env.run(&["demo"]).assert_ok();
    let plain = env.read(STATE);
    env.run(&["--identity", "key.txt", "convert", STATE, "e.json"])
        .assert_ok();
    let decrypted = env.path("decrypted.json");
    let Some(out) = pyrage(
        test,
        &[
            Path::new("decrypt"),
            &env.path("key.txt"),
            &env.path("e.json"),
            &decrypted,
        ],
    ) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&decrypted).unwrap() == plain);

    // The other way: Python encrypts the plain JSON to the identity's recipient.
    let sealed = env.path("python.json");
    let out = pyrage(
        test,
        &[
            Path::new("encrypt"),
            &env.path("key.txt"),
            &env.path(STATE),
            &sealed,
        ],
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(penin_formats::is_encrypted(
        &std::fs::read(&sealed).unwrap()
    ));
    let out = env.run(&[
        "--identity",
        "key.txt",
        "--plaintext",
        "convert",
        "python.json",
        "back.json",
    ]);
    out.assert_ok();
    assert!(env.read("back.json") == plain);
    // It names no recipient: the error says how many it has.
    keygen(&env, "wrong.txt");
    let out = env.run(&["--identity", "wrong.txt", "--state", "python.json", "stats"]);
    assert_eq!(out.code, Some(89));
    assert!(
        out.stderr
            .contains("1 X25519 recipient(s) that it does not name"),
        "{}",
        out.stderr
    );
}

/// The committed golden file: an encrypted state and the JSON it must decrypt to, with the
/// test identity beside them (never regenerated by tests).
#[test]
fn the_golden_encrypted_state_decrypts_to_its_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/age-v1");
    let env = Env::new();
    let key = dir.join("identity.txt");
    let state = dir.join("state.json.age");
    let out = env.run(&[
        "--identity",
        key.to_str().unwrap(),
        "--plaintext",
        "convert",
        state.to_str().unwrap(),
        "out.json",
    ]);
    out.assert_ok();
    let expected = std::fs::read(dir.join("state.json")).unwrap();
    assert!(env.read("out.json") == expected);
    let recipient = std::fs::read_to_string(dir.join("recipient.txt")).unwrap();
    let out = env.run(&["--state", state.to_str().unwrap(), "stats"]);
    assert_eq!(out.code, Some(89));
    assert!(out.stderr.contains(recipient.trim()), "{}", out.stderr);
}

const JOURNAL: &str = ".penin_omega/state.json.journal";
const LEDGER: &str = ".penin_omega/state.json.ledger";

/// The format version in the header of the state's journal: 1 plaintext, 2 sealed.
fn journal_version(env: &Env) -> u16 {
    let bytes = env.read(JOURNAL);
    assert_eq!(&bytes[..8], b"\x89PENJNL\n", "not a journal");
    u16::from_le_bytes([bytes[8], bytes[9]])
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// A line of `stats` output.
fn stat(env: &Env, args: &[&str], what: &str) -> String {
    let out = env.run(&[args, &["stats"]].concat());
    out.assert_ok();
    out.stdout
        .lines()
        .find(|line| line.trim_start().starts_with(what))
        .unwrap_or_else(|| panic!("no {what} in {}", out.stdout))
        .trim()
        .to_owned()
}

/// The count of a `stats` line ("Task history: 5 entries").
fn entries(line: &str) -> usize {
    line.split_whitespace()
        .find_map(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"))
}

#[test]
fn with_an_identity_the_journal_is_sealed_and_replays_with_it() {
    let env = Env::new();
    let recipient = keygen(&env, "key.txt");
    let id = ["--identity", "key.txt"];
    env.run(&[&id[..], &["demo"]].concat()).assert_ok();
    assert_eq!(journal_version(&env), 2);
    let demo_tasks = entries(&stat(&env, &id, "Task history"));
    // `run` journals its change (and folds it in as it ends); the one-shots after it leave
    // theirs in the journal.
    env.run_with_input(
        &[&id[..], &["run"]].concat(),
        "{\"op\": \"add_task\", \"task\": {\"task\": \"zebra-pineapple-one\"}}\n",
    )
    .assert_ok();
    assert_eq!(journal_version(&env), 2);
    env.run(&[&id[..], &["add-task", r#"{"task":"zebra-pineapple-two"}"#]].concat())
        .assert_ok();
    env.run(&[&id[..], &["add-score", "0.125"]].concat())
        .assert_ok();
    // The changes are in the journal (no compaction folded them in), sealed.
    let journal = env.read(JOURNAL);
    assert_eq!(journal_version(&env), 2);
    assert!(!holds(&journal, "zebra-pineapple"), "a change in plaintext");
    assert!(!holds(&journal, "0.125"), "a change in plaintext");
    let verified = env.run(&[&id[..], &["verify"]].concat());
    verified.assert_ok();
    assert!(
        verified.stdout.contains("2 change(s) since the snapshot"),
        "{}",
        verified.stdout
    );
    // Reopened with the identity, the changes replay.
    let tasks = stat(&env, &id, "Task history");
    assert_eq!(entries(&tasks), demo_tasks + 2, "{tasks}");
    assert_eq!(entries(&stat(&env, &id, "Score history")), 4);
    // Without the identity: 89, never a state without its changes.
    let out = env.run(&["stats"]);
    assert_eq!(out.code, Some(89), "{}", out.stderr);
    assert!(out.stderr.contains(&recipient), "{}", out.stderr);
    env.run(&[&id[..], &["compact"]].concat()).assert_ok();
    assert_eq!(stat(&env, &id, "Task history"), tasks);
}

#[test]
fn a_sealed_journal_without_the_identity_exits_89_naming_the_journal() {
    let env = Env::new();
    keygen(&env, "key.txt");
    // A plaintext snapshot, no journal: the first change with an identity starts a sealed
    // journal (the snapshot is encrypted at the next compaction).
    env.run(&["demo"]).assert_ok();
    std::fs::remove_file(env.path(JOURNAL)).unwrap();
    env.run(&[
        "--identity",
        "key.txt",
        "add-task",
        r#"{"task":"zebra-pineapple"}"#,
    ])
    .assert_ok();
    assert!(!penin_formats::is_encrypted(&env.read(STATE)));
    assert_eq!(journal_version(&env), 2);
    assert!(!holds(&env.read(JOURNAL), "zebra-pineapple"));
    for args in [&["stats"][..], &["add-score", "0.5"], &["verify"]] {
        let out = env.run(args);
        assert_eq!(out.code, Some(89), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("state.json.journal"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let wrong = keygen(&env, "wrong.txt");
    let out = env.run(&["--identity", "wrong.txt", "stats"]);
    assert_eq!(out.code, Some(89), "{wrong}: {}", out.stderr);
    assert!(out.stderr.contains("state.json.journal"), "{}", out.stderr);
    // Nothing was appended without the identity.
    let before = stat(&env, &["--identity", "key.txt"], "Score history");
    assert!(before.contains("3 entries"), "{before}");
}

#[test]
fn plaintext_journals_come_and_go_at_compactions() {
    let env = Env::new();
    keygen(&env, "key.txt");
    let id = ["--identity", "key.txt"];
    let plain = ["--identity", "key.txt", "--plaintext"];
    env.run(&[&id[..], &["demo"]].concat()).assert_ok();
    env.run(&[&id[..], &["add-score", "0.5"]].concat())
        .assert_ok();
    // --plaintext appends to a sealed journal sealed, until the next compaction.
    env.run(&[&plain[..], &["add-score", "0.625"]].concat())
        .assert_ok();
    assert_eq!(journal_version(&env), 2);
    env.run(&[&plain[..], &["compact"]].concat()).assert_ok();
    assert_eq!(journal_version(&env), 1);
    assert!(!penin_formats::is_encrypted(&env.read(STATE)));
    // With an identity, a plaintext journal stays plaintext until the next compaction.
    env.run(&[&id[..], &["add-task", r#"{"task":"zebra-pineapple"}"#]].concat())
        .assert_ok();
    assert_eq!(journal_version(&env), 1);
    assert!(holds(&env.read(JOURNAL), "zebra-pineapple"));
    env.run(&[&id[..], &["compact"]].concat()).assert_ok();
    assert_eq!(journal_version(&env), 2);
    env.run(&[&id[..], &["add-score", "0.75"]].concat())
        .assert_ok();
    assert!(!holds(&env.read(JOURNAL), "0.75"));
    assert_eq!(stat(&env, &id, "Score history"), "Score history: 6 entries");
}

#[test]
fn a_torn_sealed_tail_is_cut_and_appends_go_on() {
    let env = Env::new();
    keygen(&env, "key.txt");
    let id = ["--identity", "key.txt"];
    env.run(&[&id[..], &["demo"]].concat()).assert_ok();
    env.run(&[&id[..], &["add-score", "0.5"]].concat())
        .assert_ok();
    let whole = env.read(JOURNAL);
    let ledger = env.read(LEDGER);
    // A second change, torn by a crash: half of its record written, no ledger line.
    env.run(&[&id[..], &["add-score", "0.625"]].concat())
        .assert_ok();
    let both = env.read(JOURNAL);
    let torn_at = whole.len() + (both.len() - whole.len()) / 2;
    env.write(JOURNAL, &both[..torn_at]);
    env.write(LEDGER, &ledger);
    assert_eq!(stat(&env, &id, "Score history"), "Score history: 4 entries");
    env.run(&[&id[..], &["add-score", "0.75"]].concat())
        .assert_ok();
    assert_eq!(journal_version(&env), 2);
    assert_eq!(stat(&env, &id, "Score history"), "Score history: 5 entries");
    env.run(&[&id[..], &["verify"]].concat()).assert_ok();
    let journal = env.read(JOURNAL);
    assert!(journal.starts_with(&whole), "the sound record moved");
    assert!(!holds(&journal, "0.75"));
}

#[test]
fn repair_refuses_a_sealed_journal_whose_header_is_damaged() {
    let env = Env::new();
    keygen(&env, "key.txt");
    let id = ["--identity", "key.txt"];
    env.run(&[&id[..], &["demo"]].concat()).assert_ok();
    env.run(&[&id[..], &["add-score", "0.5"]].concat())
        .assert_ok();
    let mut journal = env.read(JOURNAL);
    journal[20] ^= 0x40; // the base: the header's CRC no longer matches
    env.write(JOURNAL, &journal);
    let out = env.run(&[&id[..], &["repair"]].concat());
    assert_eq!(out.code, Some(84), "{}", out.stderr);
    assert!(
        out.stderr.contains("sealed journal") && out.stderr.contains("state.json.journal"),
        "{}",
        out.stderr
    );
    // Untouched, and set aside by recover.
    assert_eq!(env.read(JOURNAL), journal);
    env.run(&[&id[..], &["recover", "--discard-journal"]].concat())
        .assert_ok();
    assert_eq!(journal_version(&env), 2);
    assert_eq!(entries(&stat(&env, &id, "Score history")), 3);
}
