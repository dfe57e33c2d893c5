//! `penin backup` against a real S3 server: `SeaweedFS`, which `tests/s3/seaweedfs.sh` starts
//! around the tests (`.ci/run` does) and names in `PENIN_TEST_S3` and the `AWS_*` variables.
//! Without it each test skips, which fails it under CI.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{DEFAULT_STATE, Env, JOURNAL, LEDGER};

/// A prefix of the test server's bucket for this test alone, or `None` (the test skipped)
/// when no server is configured.
fn remote(test: &str) -> Option<String> {
    match std::env::var("PENIN_TEST_S3") {
        Ok(bucket) if !bucket.is_empty() => {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            Some(format!(
                "{}/{test}-{}-{nanos}",
                bucket.trim_end_matches('/'),
                std::process::id()
            ))
        }
        _ => {
            penin_testkit::skip(
                test,
                "no S3 server: PENIN_TEST_S3 is not set (run the tests under tests/s3/seaweedfs.sh, as .ci/run does)",
            );
            None
        }
    }
}

/// A state with a snapshot (two changes compacted), a journal (two more) and a ledger.
fn make_state(env: &Env) {
    env.run(&[
        "add-knowledge",
        "k1",
        "--vector",
        "0.1,0.2,0.3",
        "--metadata",
        r#"{"source":"docs"}"#,
    ])
    .assert_ok();
    env.run(&["add-score", "0.5"]).assert_ok();
    env.run(&["compact"]).assert_ok();
    env.run(&["add-task", r#"{"task_id":1,"type":"evolution"}"#])
        .assert_ok();
    env.run(&["add-score", "0.75"]).assert_ok();
}

/// The bytes of the state's three files (`None` for a missing one).
fn files(env: &Env) -> [Option<Vec<u8>>; 3] {
    [DEFAULT_STATE, JOURNAL, LEDGER].map(|rel| std::fs::read(env.path(rel)).ok())
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn loaded(path: &Path) -> penin_orchestrator::memory::Loaded {
    penin_orchestrator::memory::load(path, Some(1000)).unwrap()
}

#[test]
fn push_list_restore_bit_for_bit() {
    let Some(url) = remote("push_list_restore_bit_for_bit") else {
        return;
    };
    let env = Env::new();
    make_state(&env);
    let out = env.run(&["backup", "push", &url]);
    out.assert_ok();
    assert!(
        out.stdout.contains(&format!(
            "to {url}: manifest 1 (epoch 1) holds change 4; uploaded 3 object(s)"
        )),
        "{}",
        out.stdout
    );
    // Nothing new: no new manifest.
    let out = env.run(&["backup", "push", &url]);
    out.assert_ok();
    assert!(
        out.stdout
            .contains("is up to date: manifest 1 holds change 4"),
        "{}",
        out.stdout
    );

    let out = env.run(&["backup", "list", &url, "--json"]);
    out.assert_ok();
    let list = json(&out.stdout);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["number"], 1);
    assert_eq!(list[0]["seq"], 4);
    assert_eq!(list[0]["objects"], 3);
    let at_4 = files(&env);
    let total: u64 = at_4.iter().flatten().map(|f| f.len() as u64).sum();
    assert_eq!(list[0]["bytes"], total);

    let elsewhere = Env::new();
    let out = elsewhere.run(&["backup", "restore", &url]);
    out.assert_ok();
    assert!(out.stdout.contains("manifest 1"), "{}", out.stdout);
    assert_eq!(files(&elsewhere), files(&env), "every file byte for byte");
    let (original, restored) = (loaded(&env.state()), loaded(&elsewhere.state()));
    assert_eq!(
        (restored.seq, &restored.state),
        (original.seq, &original.state)
    );
    elsewhere.run(&["verify"]).assert_ok();
    assert_eq!(elsewhere.stats_json(), env.stats_json());
    // The restored state goes on: a change on top of it, then the Python-readable snapshot.
    elsewhere.run(&["add-score", "1.0"]).assert_ok();
    elsewhere.run(&["compact"]).assert_ok();
    assert_eq!(loaded(&elsewhere.state()).seq, 5);

    // push --json: up to date, then a round that uploads the new journal and ledger bytes.
    let out = env.run(&["backup", "push", &url, "--json"]);
    out.assert_ok();
    assert_eq!(
        json(&out.stdout),
        serde_json::json!({
            "url": url, "pushed": false, "manifest": list[0],
            "uploaded_objects": 0, "uploaded_bytes": 0,
        })
    );
    env.run(&["add-score", "0.25"]).assert_ok();
    let out = env.run(&["backup", "push", &url, "--json"]);
    out.assert_ok();
    let pushed = json(&out.stdout);
    let list = json(&env.run(&["backup", "list", &url, "--json"]).stdout);
    let (first, second) = (&list[0], &list[1]);
    assert_eq!(pushed["pushed"], true);
    assert_eq!(&pushed["manifest"], second);
    assert_eq!(second["seq"], 5);
    // The new manifest names the first one's objects and what this round uploaded.
    assert_eq!(
        pushed["uploaded_objects"].as_u64().unwrap(),
        second["objects"].as_u64().unwrap() - first["objects"].as_u64().unwrap()
    );
    assert_eq!(
        pushed["uploaded_bytes"].as_u64().unwrap(),
        second["bytes"].as_u64().unwrap() - first["bytes"].as_u64().unwrap()
    );
    // backup restore --json: the restore point, as backup list --json gives it.
    let third = Env::new();
    let out = third.run(&["backup", "restore", &url, "--seq", "4", "--json"]);
    out.assert_ok();
    assert_eq!(
        json(&out.stdout),
        serde_json::json!({"url": url, "path": ".penin_omega/state.json", "manifest": first})
    );
    assert_eq!(files(&third), at_4, "the files of change 4, byte for byte");
}

#[test]
fn restore_an_earlier_point_by_seq_and_at_and_status() {
    let Some(url) = remote("restore_an_earlier_point_by_seq_and_at_and_status") else {
        return;
    };
    let env = Env::new();
    env.run(&["add-score", "0.1"]).assert_ok();
    env.run(&["add-score", "0.2"]).assert_ok();
    let out = env.run(&["backup", "status", &url, "--json"]);
    out.assert_ok();
    let status = json(&out.stdout);
    assert_eq!(
        (status["local_seq"].as_u64(), status["remote_seq"].as_u64()),
        (Some(2), None)
    );
    env.run(&["backup", "push", &url]).assert_ok();
    let at_two = files(&env);
    env.run(&["add-score", "0.3"]).assert_ok();
    env.run(&["compact"]).assert_ok();
    env.run(&["add-score", "0.4"]).assert_ok();

    let out = env.run(&["backup", "status", &url, "--json"]);
    out.assert_ok();
    let status = json(&out.stdout);
    assert_eq!(status["local_seq"], 4);
    assert_eq!(status["remote_seq"], 2);
    assert_eq!(status["behind"], 2);
    let out = env.run(&["backup", "status", &url]);
    assert!(
        out.stdout.ends_with(": 2 change(s) behind\n"),
        "{}",
        out.stdout
    );

    env.run(&["backup", "push", &url]).assert_ok();
    let out = env.run(&["backup", "status", &url, "--json"]);
    assert_eq!(json(&out.stdout)["behind"], 0);

    // --seq 3: the newest manifest holding no change after 3 is the first, at change 2.
    let earlier = Env::new();
    let out = earlier.run(&["backup", "restore", &url, "--seq", "3"]);
    out.assert_ok();
    assert!(out.stdout.contains("manifest 1"), "{}", out.stdout);
    assert_eq!(files(&earlier), at_two);
    assert_eq!(earlier.stats_json()["score_history_size"], 2);

    // Over an existing state only with --force.
    let out = earlier.run(&["backup", "restore", &url]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("asks for --force"), "{}", out.stderr);
    assert_eq!(files(&earlier), at_two);
    earlier
        .run(&["backup", "restore", &url, "--force"])
        .assert_ok();
    assert_eq!(files(&earlier), files(&env));

    let out = earlier.run(&["backup", "restore", &url, "--seq", "1", "--force"]);
    assert_eq!(out.code, Some(66), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("no manifest holds only changes up to 1"),
        "{}",
        out.stderr
    );

    // --at the first manifest's time: the first manifest; before it: none.
    let out = env.run(&["backup", "list", &url, "--json"]);
    let list = json(&out.stdout);
    let first_time = list[0]["time"].as_str().unwrap().to_owned();
    assert!(list[1]["time"].as_str().unwrap() > first_time.as_str());
    let out = earlier.run(&["backup", "restore", &url, "--at", &first_time, "--force"]);
    out.assert_ok();
    assert!(out.stdout.contains("manifest 1 (written"), "{}", out.stdout);
    assert_eq!(files(&earlier), at_two);
    let out = earlier.run(&["backup", "restore", &url, "--at", "2000-01-01", "--force"]);
    assert_eq!(out.code, Some(66), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("no manifest was written at or before 2000-01-01T00:00:00"),
        "{}",
        out.stderr
    );
    assert_eq!(files(&earlier), at_two);
}

#[test]
fn a_wrong_secret_is_refused_clearly() {
    let Some(url) = remote("a_wrong_secret_is_refused_clearly") else {
        return;
    };
    let env = Env::new();
    env.run(&["add-score", "0.1"]).assert_ok();
    for args in [
        &["backup", "push", url.as_str()][..],
        &["backup", "list", url.as_str()],
        &["backup", "restore", url.as_str(), "--force"],
    ] {
        let out = common::output(
            env.command(args)
                .env("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        );
        assert_eq!(out.code, Some(77), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("the server refused access to")
                && out.stderr.contains("SignatureDoesNotMatch")
                && out
                    .stderr
                    .contains("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Nothing was written, locally or remotely.
    let out = env.run(&["backup", "list", &url]);
    out.assert_ok();
    assert_eq!(out.stdout, format!("No manifest in {url} yet\n"));
}

#[test]
fn a_missing_bucket_is_named() {
    if remote("a_missing_bucket_is_named").is_none() {
        return;
    }
    let env = Env::new();
    env.run(&["add-score", "0.1"]).assert_ok();
    for args in [
        &["backup", "push", "s3://penin-no-such-bucket/p"][..],
        &["backup", "list", "s3://penin-no-such-bucket/p"],
        &["backup", "status", "s3://penin-no-such-bucket/p"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, Some(66), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(
                "s3://penin-no-such-bucket/p: the bucket penin-no-such-bucket does not exist"
            ),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_corrupted_object_fails_the_restore_and_changes_nothing() {
    let Some(url) = remote("a_corrupted_object_fails_the_restore_and_changes_nothing") else {
        return;
    };
    let env = Env::new();
    make_state(&env);
    env.run(&["backup", "push", &url]).assert_ok();
    let target = Env::new();
    target.run(&["add-score", "0.9"]).assert_ok();
    let before = files(&target);

    // One flipped byte in the snapshot object, written over it in the bucket.
    let replica = penin_replica::Remote::from_url(&url).unwrap();
    let manifest = replica.latest().unwrap().unwrap();
    let snapshot = manifest.snapshot.clone().unwrap();
    let mut bytes = env.read(DEFAULT_STATE);
    bytes[10] ^= 0x20;
    replica.overwrite(&snapshot.key, bytes).unwrap();

    let out = target.run(&["backup", "restore", &url, "--force"]);
    assert_eq!(out.code, Some(90), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{url}/{} is damaged: checksum mismatch: expected XXH3-128 {}",
            snapshot.key, snapshot.xxh3
        )) && out.stderr.contains("it was left as it is"),
        "{}",
        out.stderr
    );
    assert_eq!(files(&target), before, "the local state is untouched");

    // The snapshot mended, a journal segment cut short is named too.
    replica
        .overwrite(&snapshot.key, env.read(DEFAULT_STATE))
        .unwrap();
    let segment = &manifest.journal[0];
    replica.overwrite(&segment.key, Vec::new()).unwrap();
    let out = target.run(&["backup", "restore", &url, "--force"]);
    assert_eq!(out.code, Some(90), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{url}/{} is damaged: 0 bytes, where the manifest says {}",
            segment.key, segment.size
        )),
        "{}",
        out.stderr
    );
    assert_eq!(files(&target), before);
}

#[test]
fn of_sixteen_racing_pushes_exactly_one_wins() {
    let Some(url) = remote("of_sixteen_racing_pushes_exactly_one_wins") else {
        return;
    };
    let first = Env::new();
    first.run(&["add-score", "0.0"]).assert_ok();
    first.run(&["backup", "push", &url]).assert_ok();
    // Sixteen writers of sixteen states, each pushing as the writer after manifest 1.
    let envs: Vec<Env> = (0..16)
        .map(|i| {
            let env = Env::new();
            env.run(&["add-score", &format!("{i}.5")]).assert_ok();
            env
        })
        .collect();
    let children: Vec<_> = envs
        .iter()
        .map(|env| {
            env.command(&["backup", "push", &url, "--if-latest", "1"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn penin")
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|child| common::Out::from(child.wait_with_output().expect("wait for penin")))
        .collect();
    let winners: Vec<_> = outs.iter().filter(|o| o.code == Some(0)).collect();
    assert_eq!(winners.len(), 1, "{outs:#?}");
    assert!(
        winners[0].stdout.contains("manifest 2 (epoch 2)"),
        "{outs:#?}"
    );
    for out in outs.iter().filter(|o| o.code != Some(0)) {
        assert_eq!(out.code, Some(75), "{out:#?}");
        assert!(out.stderr.contains(": fenced: another writer "), "{out:#?}");
    }
    let out = first.run(&["backup", "list", &url, "--json"]);
    let list = json(&out.stdout);
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");

    // The restore point the winner wrote is whole.
    let check = Env::new();
    check.run(&["backup", "restore", &url]).assert_ok();
    check.run(&["verify"]).assert_ok();
}

/// A server that accepts connections and never answers (as a stopped process would): every
/// request times out, and penin stops with an error instead of hanging. No `SeaweedFS`
/// needed: a stopped shared server would stop the other tests too.
#[test]
fn a_stuck_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Holds every connection open, unread, for as long as the test runs.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let env = Env::new();
    env.run(&["add-score", "0.1"]).assert_ok();
    let before = files(&env);
    for args in [
        &["backup", "push", "s3://penin/stuck"][..],
        &["backup", "list", "s3://penin/stuck"],
    ] {
        let out = common::output(
            env.command(args)
                .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
                .env("AWS_ALLOW_HTTP", "true")
                .env("AWS_ACCESS_KEY_ID", "penin")
                .env("AWS_SECRET_ACCESS_KEY", "penin")
                .env("AWS_REGION", "us-east-1")
                .env("PENIN_S3_TIMEOUT", "1s"),
        );
        assert_eq!(out.code, Some(74), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("cannot list s3://penin/stuck/manifests/: operation timed out"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(files(&env), before);
}

/// A new identity in the directory through `penin keygen`: its recipient.
fn keygen(env: &Env, name: &str) -> String {
    let out = env.run(&["keygen", name]);
    out.assert_ok();
    out.stdout.trim().to_owned()
}

/// A state whose files hold known words: an artifact key, a metadata string and (in the
/// ledger) event names.
fn make_marked_state(env: &Env) {
    env.run(&[
        "add-knowledge",
        "knowledge-marker-key",
        "--vector",
        "0.1,0.2,0.3",
        "--metadata",
        r#"{"source":"metadata-marker-text"}"#,
    ])
    .assert_ok();
    env.run(&["compact"]).assert_ok();
    env.run(&["add-task", r#"{"task_id":1,"type":"task-marker-type"}"#])
        .assert_ok();
}

/// The words no stored object may contain.
const MARKERS: [&str; 5] = [
    "knowledge-marker-key",
    "metadata-marker-text",
    "task-marker-type",
    "add_knowledge",
    "penin_manifest",
];

/// Every object under the remote's prefix, with its stored bytes.
fn stored_objects(url: &str) -> Vec<(String, Vec<u8>)> {
    let replica = penin_replica::Remote::from_url(url).unwrap();
    replica
        .objects()
        .unwrap()
        .into_iter()
        .map(|(name, _)| {
            let bytes = replica.stored(&name).unwrap().unwrap();
            (name, bytes)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The age command opens a sealed manifest and a sealed journal segment with `key.txt`.
fn age_opens(env: &Env, objects: &[(String, Vec<u8>)]) {
    let manifest = objects
        .iter()
        .find(|(n, _)| n == "manifests/00000000000000000002.json")
        .unwrap();
    let segment = objects
        .iter()
        .find(|(n, _)| n.starts_with("journal/"))
        .unwrap();
    for ((name, bytes), starts) in [
        (manifest, &b"{\"penin_manifest\":1,"[..]),
        (segment, b"\x89PENJNL\n"),
    ] {
        let file = env.write("object.age", bytes);
        let out = std::process::Command::new("age")
            .args(["-d", "-i"])
            .arg(env.path("key.txt"))
            .arg(&file)
            .output()
            .expect("the age command (.ci/run installs it)");
        assert!(
            out.status.success(),
            "age -d {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.starts_with(starts), "{name}");
    }
}

/// A sealed object damaged in the bucket: its stored checksum says so before any
/// decryption (90), and nothing local is replaced; then it is mended.
fn damaged_sealed_object_is_refused(
    url: &str,
    objects: &[(String, Vec<u8>)],
    env: &Env,
    elsewhere: &Env,
) {
    let replica = penin_replica::Remote::from_url(url).unwrap();
    let (name, bytes) = objects
        .iter()
        .find(|(n, _)| n.starts_with("ledger/"))
        .unwrap();
    let mut damaged = bytes.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    replica.overwrite(name, damaged).unwrap();
    let out = elsewhere.run(&["--identity", "key.txt", "backup", "restore", url, "--force"]);
    assert_eq!(out.code, Some(90), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{url}/{name} is damaged: checksum mismatch")),
        "{}",
        out.stderr
    );
    assert_eq!(files(elsewhere), files(env));
    replica.overwrite(name, bytes.clone()).unwrap();
}

#[test]
fn an_identity_seals_every_object_and_restores_bit_for_bit() {
    let Some(url) = remote("an_identity_seals_every_object_and_restores_bit_for_bit") else {
        return;
    };
    let env = Env::new();
    let recipient = keygen(&env, "key.txt");
    // The local state is plaintext: the bucket must not be.
    make_marked_state(&env);
    let local: Vec<u8> = files(&env).into_iter().flatten().flatten().collect();
    for marker in MARKERS.iter().take(4) {
        assert!(contains(&local, marker), "the local files hold {marker}");
    }
    env.run(&["--identity", "key.txt", "backup", "push", &url])
        .assert_ok();
    env.run(&["add-score", "0.25"]).assert_ok();
    env.run(&["--identity", "key.txt", "backup", "push", &url])
        .assert_ok();

    // Every object in the bucket under the prefix: an age envelope, no known word inside.
    let objects = stored_objects(&url);
    let names: Vec<&str> = objects.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"manifests/00000000000000000002.json"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("snapshots/")),
        "{names:?}"
    );
    assert!(
        names.iter().filter(|n| n.starts_with("journal/")).count() >= 2,
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.starts_with("ledger/")), "{names:?}");
    for (name, bytes) in &objects {
        assert!(
            bytes.starts_with(b"age-encryption.org/v1\n"),
            "{name} is not an age envelope"
        );
        for marker in MARKERS {
            assert!(!contains(bytes, marker), "{name} holds {marker}");
        }
    }

    age_opens(&env, &objects);

    // With the identity: list, status and a restore bit for bit.
    let elsewhere = Env::new();
    std::fs::copy(env.path("key.txt"), elsewhere.path("key.txt")).unwrap();
    let out = elsewhere.run(&["--identity", "key.txt", "backup", "list", &url, "--json"]);
    out.assert_ok();
    assert_eq!(json(&out.stdout).as_array().map(Vec::len), Some(2));
    env.run(&["--identity", "key.txt", "backup", "status", &url])
        .assert_ok();
    elsewhere
        .run(&["--identity", "key.txt", "backup", "restore", &url])
        .assert_ok();
    assert_eq!(files(&elsewhere), files(&env), "every file byte for byte");
    elsewhere.run(&["verify"]).assert_ok();

    // Without an identity, or with another: exit 89, naming the recipient needed.
    let other = Env::new();
    keygen(&other, "other.txt");
    for args in [
        vec!["backup", "restore", &url],
        vec!["--identity", "other.txt", "backup", "restore", &url],
        vec!["backup", "list", &url],
        vec!["--identity", "other.txt", "backup", "status", &url],
        vec!["backup", "prune", &url, "--keep-last", "1"],
        vec!["stats", "--from", &url],
    ] {
        let out = other.run(&args);
        assert_eq!(out.code, Some(89), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&recipient), "{args:?}: {}", out.stderr);
        assert!(!other.state().exists(), "{args:?}");
    }

    damaged_sealed_object_is_refused(&url, &objects, &env, &elsewhere);

    // A plaintext push to the encrypted prefix is refused, and writes nothing.
    env.run(&["add-score", "0.5"]).assert_ok();
    let out = env.run(&[
        "--identity",
        "key.txt",
        "--plaintext",
        "backup",
        "push",
        &url,
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("is encrypted, and this push would be plaintext"),
        "{}",
        out.stderr
    );
    assert_eq!(stored_objects(&url), objects, "nothing written");
}

#[test]
fn an_encrypted_push_to_a_plaintext_prefix_is_refused() {
    let Some(url) = remote("an_encrypted_push_to_a_plaintext_prefix_is_refused") else {
        return;
    };
    let env = Env::new();
    keygen(&env, "key.txt");
    make_state(&env);
    env.run(&["backup", "push", &url]).assert_ok();
    let before = stored_objects(&url);
    env.run(&["add-score", "0.5"]).assert_ok();
    let out = env.run(&["--identity", "key.txt", "backup", "push", &url]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("is plaintext, and this push would be encrypted"),
        "{}",
        out.stderr
    );
    assert_eq!(stored_objects(&url), before, "nothing written");
}

/// The files of the restore point holding change `seq`, restored into a new directory.
fn restored_at(url: &str, seq: u64) -> [Option<Vec<u8>>; 3] {
    let env = Env::new();
    env.run(&["backup", "restore", url, "--seq", &seq.to_string()])
        .assert_ok();
    files(&env)
}

/// The (number, seq) of every manifest, oldest first.
fn manifests(env: &Env, url: &str) -> Vec<(u64, u64)> {
    let out = env.run(&["backup", "list", url, "--json"]);
    out.assert_ok();
    json(&out.stdout)
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["number"].as_u64().unwrap(), m["seq"].as_u64().unwrap()))
        .collect()
}

/// A prune without a rule is refused; a dry run says what would go and deletes nothing.
fn dry_run_deletes_nothing(env: &Env, url: &str, listing: &[(String, Vec<u8>)]) {
    // No rule: a usage error. A dry run says what would go, and deletes nothing.
    let out = env.run(&["backup", "prune", url]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let out = env.run(&[
        "backup",
        "prune",
        url,
        "--keep-last",
        "2",
        "--grace",
        "0s",
        "--dry-run",
    ]);
    out.assert_ok();
    for number in 1..=3 {
        assert!(
            out.stdout
                .contains(&format!("would delete manifest {number}\n")),
            "{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("would delete snapshots/"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("manifest 4\n"), "{}", out.stdout);
    assert_eq!(stored_objects(url), listing, "a dry run deletes nothing");

    // --json: the same plan, each object with its size as stored.
    let out = env.run(&[
        "backup",
        "prune",
        url,
        "--keep-last",
        "2",
        "--grace",
        "0s",
        "--dry-run",
        "--json",
    ]);
    out.assert_ok();
    let plan = json(&out.stdout);
    assert_eq!(plan["url"], url);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["manifests"], serde_json::json!([1, 2, 3]));
    assert_eq!(plan["kept"], serde_json::json!([4, 5]));
    assert_eq!(plan["young"], 0);
    let objects = plan["objects"].as_array().unwrap();
    let mut total = 0;
    for object in objects {
        let name = object["name"].as_str().unwrap();
        let stored = listing
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} is not stored"));
        assert_eq!(object["bytes"], stored.1.len());
        total += stored.1.len();
        assert!(!name.starts_with("manifests/"), "{name}");
    }
    assert!(
        objects
            .iter()
            .any(|o| o["name"].as_str().unwrap().starts_with("snapshots/")),
        "{plan}"
    );
    assert_eq!(plan["bytes"], total);
    assert_eq!(stored_objects(url), listing, "a dry run deletes nothing");
}

#[test]
fn prune_keeps_every_kept_point_restorable_and_a_dry_run_changes_nothing() {
    let Some(url) = remote("prune_keeps_every_kept_point_restorable_and_a_dry_run_changes_nothing")
    else {
        return;
    };
    let env = Env::new();
    make_state(&env);
    env.run(&["backup", "push", &url]).assert_ok();
    for step in ["add-score", "compact", "add-score", "add-score"] {
        let args: &[&str] = if step == "compact" {
            &["compact"]
        } else {
            &["add-score", "0.125"]
        };
        env.run(args).assert_ok();
        env.run(&["backup", "push", &url]).assert_ok();
    }
    let points = manifests(&env, &url);
    assert_eq!(points.len(), 5, "{points:?}");
    let before: Vec<_> = points
        .iter()
        .map(|&(_, seq)| restored_at(&url, seq))
        .collect();
    let listing = stored_objects(&url);

    dry_run_deletes_nothing(&env, &url, &listing);

    // Within an hour of the latest: every point is kept.
    let out = env.run(&[
        "backup",
        "prune",
        &url,
        "--keep-within",
        "1h",
        "--grace",
        "0s",
    ]);
    out.assert_ok();
    assert_eq!(stored_objects(&url), listing, "{}", out.stdout);

    // The default grace period: the manifests go, every object (all younger than an hour)
    // stays for a later prune.
    // (Manifest 3 holds the compacted state, so manifests 1 and 2 name objects it does not.)
    let out = env.run(&["backup", "prune", &url, "--keep-last", "3"]);
    out.assert_ok();
    assert!(
        out.stdout.contains("deleted manifest 2\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("younger than the grace period"),
        "{}",
        out.stdout
    );
    assert_eq!(
        stored_objects(&url).len(),
        listing.len() - 2,
        "only manifests 1 and 2 went"
    );

    let out = env.run(&["backup", "prune", &url, "--keep-last", "2", "--grace", "0s"]);
    out.assert_ok();
    assert_eq!(
        manifests(&env, &url),
        points[3..].to_vec(),
        "{}",
        out.stdout
    );
    // What is left is exactly the kept manifests and the objects they name.
    let replica = penin_replica::Remote::from_url(&url).unwrap();
    let mut named: Vec<String> = replica
        .manifests()
        .unwrap()
        .iter()
        .flat_map(|m| {
            m.objects()
                .map(|o| o.key.clone())
                .chain([format!("manifests/{:020}.json", m.number)])
                .collect::<Vec<_>>()
        })
        .collect();
    named.sort();
    named.dedup();
    let left: Vec<String> = stored_objects(&url).into_iter().map(|(n, _)| n).collect();
    assert_eq!(left, named);
    assert!(
        left.len() < listing.len() - 3,
        "objects were deleted: {left:?}"
    );
    // Every kept point restores bit for bit, its journal from the first segment.
    for (i, &(_, seq)) in points.iter().enumerate().skip(3) {
        assert_eq!(
            restored_at(&url, seq),
            before[i],
            "the point of change {seq}"
        );
    }
    // A pruned point is no longer there.
    let gone = Env::new();
    let out = gone.run(&["backup", "restore", &url, "--seq", &points[0].1.to_string()]);
    assert_eq!(out.code, Some(66), "{}", out.stderr);
}

#[test]
fn a_restore_beside_a_prune_succeeds() {
    let Some(url) = remote("a_restore_beside_a_prune_succeeds") else {
        return;
    };
    let env = Env::new();
    make_state(&env);
    env.run(&["backup", "push", &url]).assert_ok();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (restores, rounds) = std::thread::scope(|scope| {
        let restorers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let target = Env::new();
                    let mut count = 0;
                    // At least one restore, then as many as the pruning goes on.
                    while count == 0 || !done.load(std::sync::atomic::Ordering::SeqCst) {
                        let out = target.run(&["backup", "restore", &url, "--force"]);
                        out.assert_ok();
                        target.run(&["verify"]).assert_ok();
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        // New points, each pushed and then every older one pruned with its objects.
        let mut rounds = 0;
        for step in 0..12 {
            if step % 4 == 3 {
                env.run(&["compact"]).assert_ok();
            } else {
                env.run(&["add-score", "0.5"]).assert_ok();
            }
            env.run(&["backup", "push", &url]).assert_ok();
            env.run(&["backup", "prune", &url, "--keep-last", "1", "--grace", "0s"])
                .assert_ok();
            rounds += 1;
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let total: usize = restorers.into_iter().map(|r| r.join().unwrap()).sum();
        (total, rounds)
    });
    assert!(restores >= 2 && rounds == 12);
    // The last point restores whole.
    let last = Env::new();
    last.run(&["backup", "restore", &url]).assert_ok();
    assert_eq!(files(&last), files(&env));
}

#[test]
fn stats_verify_and_log_read_a_remote_with_from() {
    let Some(url) = remote("stats_verify_and_log_read_a_remote_with_from") else {
        return;
    };
    let env = Env::new();
    make_state(&env);
    env.run(&["backup", "push", &url]).assert_ok();
    // Elsewhere, with no local state, and its temporary files in a folder of its own.
    let elsewhere = Env::new();
    let tmp = elsewhere.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let run = |args: &[&str]| {
        let mut command = elsewhere.command(args);
        command.env("TMPDIR", &tmp);
        common::output(&mut command)
    };

    let out = run(&["stats", "--json", "--from", &url]);
    out.assert_ok();
    let remote = json(&out.stdout);
    assert_eq!(common::seed_figures(&remote), env.stats_json());
    // The report names the bucket, not the temporary file it was read in.
    assert_eq!(remote["path"], url.as_str());
    let out = run(&["log", "--from", &url]);
    out.assert_ok();
    let local = env.run(&["log"]);
    assert_eq!(out.stdout, local.stdout);
    let out = run(&["verify", "--from", &url]);
    out.assert_ok();
    assert!(
        out.stdout
            .starts_with(&format!("{url}: ok: manifest 1 (written "))
            && out.stdout.contains("3 object(s)")
            && out.stdout.contains("state.json.ledger: ok: "),
        "{}",
        out.stdout
    );
    // --json: the restore point as `backup list --json` gives it, then the figures of
    // the state as verify gives them here.
    let out = run(&["verify", "--from", &url, "--json"]);
    out.assert_ok();
    let report = json(&out.stdout);
    let listed = env.run(&["backup", "list", &url, "--json"]);
    let manifest = json(&listed.stdout)[0].clone();
    assert_eq!(
        report["remote"],
        serde_json::json!({
            "url": url, "manifest": 1, "time": manifest["time"], "seq": manifest["seq"],
            "objects": 3, "bytes": manifest["bytes"],
        })
    );
    let here = env.run(&["verify", "--json"]);
    let here = json(&here.stdout);
    let without_path = |part: &serde_json::Value| {
        let mut part = part.clone();
        part.as_object_mut().unwrap().remove("path");
        part
    };
    for part in ["state", "journal", "ledger"] {
        assert_eq!(
            without_path(&report[part]),
            without_path(&here[part]),
            "{part}"
        );
    }
    assert_eq!(report["checkpoints"], serde_json::Value::Null);
    assert!(!elsewhere.state().exists(), "nothing local was written");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "the temporary directory is removed"
    );

    // A damaged object: verify --from fails (90), naming it.
    let replica = penin_replica::Remote::from_url(&url).unwrap();
    let segment = replica.latest().unwrap().unwrap().journal[0].clone();
    replica
        .overwrite(&segment.key, b"damaged".to_vec())
        .unwrap();
    let out = run(&["verify", "--from", &url]);
    assert_eq!(out.code, Some(90), "{}", out.stderr);
    assert!(out.stderr.contains(&segment.key), "{}", out.stderr);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn inspect_keys_tasks_and_scores_read_a_remote_with_from() {
    let Some(url) = remote("inspect_keys_tasks_and_scores_read_a_remote_with_from") else {
        return;
    };
    let env = Env::new();
    make_state(&env);
    env.run(&["backup", "push", &url]).assert_ok();
    let elsewhere = Env::new();
    for command in [
        &["inspect", "k1", "--json"][..],
        &["keys", "--json"],
        &["tasks"],
        &["scores", "--json"],
    ] {
        let local = env.run(command);
        local.assert_ok();
        let mut remote = command.to_vec();
        remote.extend(["--from", &url]);
        let out = elsewhere.run(&remote);
        out.assert_ok();
        assert_eq!(out.stdout, local.stdout, "{command:?}");
    }
    // The remote's state, not the (missing) local one.
    assert_eq!(elsewhere.run(&["inspect", "k1"]).code, Some(66));
}
