//! The crash loop: `penin run` saving a state of tens of megabytes is killed with SIGKILL at
//! random moments; after every kill the state (snapshot and journal) loads and is the state
//! before or after the change that was under way, and it is the state after whenever penin
//! had answered the change. Nothing corrupt, nothing lost, nothing acknowledged and then
//! missing.
//!
//! `PENIN_CRASH_KILLS` sets the number of kills (default 100); `PENIN_CRASH_SEED` the seed.
#![cfg(unix)]

mod common;

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::{DEFAULT_STATE, Env, Rng, Session, big_state};
use penin_orchestrator::{Number, Orchestrator};

/// 3,000 embeddings of 384 dimensions: about 25 MB in the seed format.
const ARTIFACTS: usize = 3000;

/// The scores of the state in the file, as the counters that were added.
fn scores(o: &Orchestrator) -> Vec<i64> {
    o.score_history()
        .iter()
        .map(|n| match n {
            Number::Int(i) => *i,
            other => panic!("score {other:?} was never added"),
        })
        .collect()
}

/// One uninterrupted cycle (start, load, add, save) sets the range of kill moments: how long
/// until the state is loaded (the first answer) and until it is saved (the second). (The
/// measured durations choose when to kill; nothing asserts them.)
fn measure_cycle(env: &Env) -> (Duration, Duration) {
    let start = Instant::now();
    let mut session: Session = env.spawn(&["run", "--autosave", "0"]);
    assert_eq!(
        session.ask(r#"{"op":"add_score","score":0}"#),
        r#"{"ok":true}"#
    );
    let loaded = start.elapsed();
    assert!(
        session
            .ask(r#"{"op":"save"}"#)
            .starts_with(r#"{"ok":true,"saved":"#)
    );
    let saved = start.elapsed();
    session.close_stdin();
    let (status, _, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    (loaded, saved)
}

/// When to kill: half the time anywhere in 0–1.5 × the cycle (before, during, after the
/// save), half the time inside the save itself, where a kill can do harm.
fn kill_moment(rng: &mut Rng, (loaded, saved): (Duration, Duration)) -> Duration {
    let fraction = f64::from(u32::try_from(rng.next() % 1000).unwrap()) / 1000.0;
    if rng.next().is_multiple_of(2) {
        saved.mul_f64(1.5 * fraction)
    } else {
        loaded + (saved.saturating_sub(loaded)).mul_f64(fraction)
    }
}

/// Whether `answers`, every answer a killed `penin run` wrote to an `add_score` and a `save`,
/// acknowledge the save. Penin answers a save once the new state is on disk, so from then
/// on the state must load with it.
fn save_acknowledged(kill: usize, answers: &[String]) -> bool {
    let saved = format!(r#"{{"ok":true,"saved":"{DEFAULT_STATE}"}}"#);
    let possible: [&str; 2] = [r#"{"ok":true}"#, &saved];
    assert!(
        answers.len() <= 2 && answers.iter().zip(possible).all(|(a, p)| a == p),
        "kill {kill}: answers {answers:?}"
    );
    answers.len() == 2
}

/// Whether a save temporary of process `pid` is in `dir`.
fn has_temporary_of(pid: u32, dir: &Path) -> bool {
    let mark = format!(".penin-tmp.{pid}.");
    fs::read_dir(dir)
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().contains(&mark))
}

#[test]
fn sigkill_during_saves_never_corrupts_or_loses_the_state() {
    let kills: usize = std::env::var("PENIN_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("PENIN_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xC0FF_EE00_1234_5678);
    let mut rng = Rng(seed | 1);
    let env = Env::new();
    let path = env.state();
    let original = big_state(&mut rng, ARTIFACTS);
    original.save_state(&path).unwrap();
    let size = fs::metadata(&path).unwrap().len();
    assert!(
        size > 20_000_000,
        "the state is {size} bytes, not tens of megabytes"
    );

    let cycle = measure_cycle(&env);

    let mut expected = vec![0_i64];
    let (mut during_save, mut acknowledged, mut corrupt, mut lost) = (0, 0, 0, 0);
    for kill in 0..kills {
        let next = i64::try_from(kill + 1).unwrap();
        let mut session = env.spawn(&["run", "--autosave", "0"]);
        session.send(&format!(r#"{{"op":"add_score","score":{next}}}"#));
        session.send(r#"{"op":"save"}"#);
        thread::sleep(kill_moment(&mut rng, cycle));
        let pid = session.pid();
        let (_, answers) = session.kill();
        let save_acknowledged = save_acknowledged(kill, &answers);
        if save_acknowledged {
            acknowledged += 1;
        }

        // A temporary of this process beside the state means the kill cut its save short.
        if has_temporary_of(pid, path.parent().unwrap()) {
            during_save += 1;
        }
        // What penin loads: the snapshot, then the changes its journal holds since.
        let loaded = match penin_orchestrator::memory::load(&path, Some(1000)) {
            Ok(loaded) if loaded.exists() => loaded.state,
            Ok(_) => {
                eprintln!("kill {kill}: the state file is gone");
                lost += 1;
                continue;
            }
            Err(e) => {
                eprintln!("kill {kill}: corrupt: {e}");
                corrupt += 1;
                continue;
            }
        };
        let got = scores(&loaded);
        let mut after = expected.clone();
        after.push(next);
        if got == after {
            expected = after;
        } else if got != expected {
            eprintln!("kill {kill}: scores {got:?}, expected {expected:?} or one more");
            lost += 1;
        } else if !answers.is_empty() {
            eprintln!(
                "kill {kill}: score {next} was acknowledged, but the state is the one before it"
            );
            lost += 1;
        }
        if loaded.knowledge_base() != original.knowledge_base() {
            eprintln!("kill {kill}: the knowledge base changed");
            corrupt += 1;
        }
    }
    println!(
        "crash loop: {kills} SIGKILLs on a {size}-byte state, {during_save} during a save, \
         {} saves completed, {acknowledged} saves acknowledged before the kill, \
         corrupt: {corrupt}, lost: {lost}",
        expected.len() - 1
    );
    assert_eq!((corrupt, lost), (0, 0));
    assert!(
        during_save > 0,
        "no kill landed during a save: the loop proves nothing"
    );
    assert!(
        acknowledged > 0,
        "no save was acknowledged before its kill: nothing shows that an acknowledged save \
         survives"
    );
    // The next start removes what the kills left.
    let out = env.run(&["run", "--autosave", "0"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        !env.tree().iter().any(|name| name.contains(".penin-tmp.")),
        "{:?}",
        env.tree()
    );
    assert!(env.path(DEFAULT_STATE).is_file());
}
