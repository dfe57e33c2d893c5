//! Against a real S3 server (`SeaweedFS`, which `tests/s3/seaweedfs.sh` starts around the
//! tests and names in `PENIN_TEST_S3` and the `AWS_*` variables): writers racing for one
//! manifest number at the same moment; a restore whose manifest a prune deletes between its
//! pick and its download. Without the server the test skips, which fails it
//! under CI.

use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use penin_history::time::Timestamp;

use penin_orchestrator::{Change, Memory, Number};
use penin_replica::{Error, Local, Pick, Remote, Retention, Writer};

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
    let dir = tempfile::tempdir().unwrap();
    let fetched = penin_replica::fetch(&remote, &latest, &dir.path().join("state.json")).unwrap();
    assert_eq!(fetched.manifest, latest);
}

#[test]
fn a_restore_whose_manifest_a_prune_deletes_picks_again() {
    let Some(bucket) = std::env::var("PENIN_TEST_S3")
        .ok()
        .filter(|b| !b.is_empty())
    else {
        penin_testkit::skip(
            "a_restore_whose_manifest_a_prune_deletes_picks_again",
            "no S3 server: PENIN_TEST_S3 is not set (run the tests under tests/s3/seaweedfs.sh, as .ci/run does)",
        );
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let url = format!("{bucket}/repick-{}-{nanos}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let remote = Remote::from_url(&url).unwrap();
    let mut writer = Writer::new();
    penin_replica::push_round(
        &remote,
        &mut writer,
        &state(&dir.path().join("first"), 0.25),
    )
    .unwrap();
    let second_dir = dir.path().join("second");
    let second = state(&second_dir, 0.75);

    // Between the restore's pick (manifest 1) and its download, a push makes manifest 2 of
    // another journal, and a prune deletes manifest 1 and the segments only it named.
    let mut picks = Vec::new();
    let fetched = penin_replica::download_with(
        &remote,
        Pick::Latest,
        &dir.path().join("restored/state.json"),
        &mut |picked| {
            picks.push(picked.number);
            if picks.len() == 1 {
                penin_replica::push_round(&remote, &mut writer, &second).unwrap();
                let retention = Retention::new().grace(Duration::ZERO);
                let pruned =
                    penin_replica::prune(&remote, &retention, Timestamp::now(), false).unwrap();
                assert_eq!(pruned.manifests, [1]);
                // The snapshot (both states start from an empty one) is named by manifest 2 too.
                let deleted: Vec<&str> = pruned.objects.iter().map(|(n, _)| n.as_str()).collect();
                let only_first: Vec<&str> = picked
                    .journal
                    .iter()
                    .chain(&picked.ledger)
                    .map(|o| o.key.as_str())
                    .collect();
                assert_eq!(deleted, only_first);
            }
        },
    )
    .unwrap();
    assert_eq!(picks, [1, 2], "picked again after the prune");
    assert_eq!(fetched.manifest.number, 2);
    let restored = dir.path().join("restored/state.json");
    penin_replica::install(fetched, false).unwrap();
    assert_eq!(
        std::fs::read(penin_history::journal_path(&restored)).unwrap(),
        std::fs::read(penin_history::journal_path(&second_dir.join("state.json"))).unwrap()
    );
}
