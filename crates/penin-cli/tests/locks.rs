//! One writer per state: a second writer fails at once (exit 75) or waits with `--wait`;
//! readers take no lock; writers racing for the same state never lose an update.

mod common;

use std::process::Stdio;

use common::{DEFAULT_STATE, Env, wait_for};

#[test]
fn a_second_writer_is_refused_while_run_holds_the_state() {
    let env = Env::new();
    let mut session = env.spawn(&["run", "--autosave", "0"]);
    assert_eq!(
        session.ask(r#"{"op":"add_score","score":1}"#),
        r#"{"ok":true}"#
    );
    assert_eq!(
        env.lock_files().into_iter().collect::<Vec<_>>(),
        [".penin_omega/.state.json.lock"]
    );

    for args in [
        &["add-score", "2"][..],
        &["add-task", "{}"],
        &["add-knowledge", "k", "--vector", "1"],
        &["demo"],
        &["run"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, Some(75), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains(".penin_omega/state.json is locked by another penin process"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Readers need no lock.
    env.run(&["stats"]).assert_ok();
    env.run(&["convert", DEFAULT_STATE, "copy.json"]);

    session.close_stdin();
    let (status, _, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        env.stats_json()["score_history_size"],
        1,
        "only the holder wrote"
    );
    // Once it is gone, the next writer gets the lock.
    env.run(&["add-score", "2"]).assert_ok();
    assert_eq!(env.stats_json()["score_history_size"], 2);
}

#[test]
fn wait_takes_the_lock_when_the_holder_lets_go() {
    let env = Env::new();
    let mut session = env.spawn(&["run", "--autosave", "0"]);
    assert_eq!(
        session.ask(r#"{"op":"add_score","score":1}"#),
        r#"{"ok":true}"#
    );
    let mut waiter = env
        .command(&["--wait", "add-score", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It waits: still running while the holder runs.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(waiter.try_wait().unwrap().is_none(), "--wait did not wait");
    session.close_stdin();
    let (status, _, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let status = wait_for(|| waiter.try_wait().unwrap()).expect("the waiter finishes");
    assert!(status.success());
    // The waiter loaded what the holder saved, then added to it: nothing lost.
    assert_eq!(env.stats_json()["score_history_size"], 2);
}

#[test]
fn racing_writers_never_lose_an_update() {
    let env = Env::new();
    env.run(&["add-score", "0"]).assert_ok();
    let mut succeeded = 0;
    let mut refused = 0;
    for round in 0..10 {
        let children: Vec<_> = (0..4)
            .map(|i| {
                env.command(&["add-score", &format!("{}", round * 4 + i)])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            match out.status.code() {
                Some(0) => succeeded += 1,
                Some(75) => refused += 1,
                other => panic!("exit {other:?}: {}", String::from_utf8_lossy(&out.stderr)),
            }
        }
    }
    println!("racing writers: {succeeded} saved, {refused} refused by the lock");
    // Every writer that said it saved is in the file: none overwrote another's update.
    assert_eq!(env.stats_json()["score_history_size"], succeeded + 1);
}

/// A state reached through a symbolic link: the file it points to is locked and replaced,
/// and the link stays a link, so both names keep sharing one state and one lock.
#[cfg(unix)]
#[test]
fn a_symlinked_state_keeps_its_link_and_shares_the_lock() {
    let env = Env::new();
    env.run(&["--state", "real.json", "add-score", "1"])
        .assert_ok();
    std::os::unix::fs::symlink(env.path("real.json"), env.path("link.json")).unwrap();
    env.run(&["--state", "link.json", "add-score", "2"])
        .assert_ok();
    assert!(
        std::fs::symlink_metadata(env.path("link.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let out = env.run(&["--state", "real.json", "stats", "--json"]);
    assert!(
        out.stdout.contains("\"score_history_size\":2"),
        "{}",
        out.stdout
    );

    let mut session = env.spawn(&["--state", "real.json", "run", "--autosave", "0"]);
    assert_eq!(
        session.ask(r#"{"op":"add_score","score":3}"#),
        r#"{"ok":true}"#
    );
    let out = env.run(&["--state", "link.json", "add-score", "4"]);
    assert_eq!(
        out.code,
        Some(75),
        "the link's writer sees the real file's lock: {}",
        out.stderr
    );
    session.close_stdin();
    let (status, _, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
}
