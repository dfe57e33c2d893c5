//! Against a real S3 server (`SeaweedFS`, which `tests/s3/seaweedfs.sh` starts around the
//! tests and names in `PENIN_TEST_S3` and the `AWS_*` variables): writers racing for one
//! manifest number at the same moment. Without the server the test skips, which fails it
//! under CI.

use std::sync::{Arc, Barrier};
use std::time::{SystemTime, UNIX_EPOCH};

use penin_orchestrator::{Change, Memory, Number};
use penin_replica::{Error, Local, Remote, Writer};

/// A state holding one score, `score`.
fn state(dir: &std::path::Path, score: f64) -> Local {
    let mut memory = Memory::open(dir.join("state.json"), Some(1000)).unwrap();
    memory
        .commit(vec![Change::AddScore(Number::Float(score))])
        .unwrap();
    memory.sync().unwrap();
    Local::capture(&memory).unwrap()
}

#[test]
fn sixteen_writers_creating_the_same_manifest_at_once_one_wins() {
    let Some(bucket) = std::env::var("PENIN_TEST_S3")
        .ok()
        .filter(|b| !b.is_empty())
    else {
        penin_testkit::skip(
            "sixteen_writers_creating_the_same_manifest_at_once_one_wins",
            "no S3 server: PENIN_TEST_S3 is not set (run the tests under tests/s3/seaweedfs.sh, as .ci/run does)",
        );
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let url = format!("{bucket}/race-{}-{nanos}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let first = state(&dir.path().join("first"), 0.0);
    penin_replica::push_round(&Remote::from_url(&url).unwrap(), &mut Writer::new(), &first)
        .unwrap();

    // Each writer uploads its objects and makes manifest 2; only then, all together, do they
    // create it: every conditional put races every other on the server.
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let local = state(&dir.path().join(i.to_string()), f64::from(i) + 0.5);
            let (url, barrier) = (url.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let remote = Remote::from_url(&url).unwrap();
                let mut writer = Writer::new();
                let prepared = penin_replica::prepare(&remote, &writer, &local);
                barrier.wait();
                let prepared = prepared.unwrap();
                assert_eq!(
                    prepared.manifest().map(|m| (m.number, m.epoch)),
                    Some((2, 2))
                );
                prepared
                    .commit(&remote, &mut writer)
                    .map(|p| (p.manifest, writer))
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:#?}");
    let (manifest, writer) = winners[0];
    assert_eq!(manifest.as_ref().map(|m| m.number), Some(2));
    assert_eq!(writer.epoch(), Some(2));
    for result in &results {
        if let Err(error) = result {
            assert!(
                matches!(error, Error::Fenced { how, .. } if how == "created manifest 2 first"),
                "{error}"
            );
        }
    }
    let remote = Remote::from_url(&url).unwrap();
    assert_eq!(remote.manifest_numbers().unwrap(), [1, 2]);
    // The winner's restore point is whole: every object it names is there and checks.
    let latest = remote.latest().unwrap().unwrap();
    let fetched = penin_replica::fetch(&remote, &latest).unwrap();
    assert_eq!(fetched.manifest, latest);
}
