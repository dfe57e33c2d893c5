//! Checkpoints on a real directory: write, list and select round trips, verification against
//! damage, the meta file's version, unfinished checkpoints, retention plans and removal, and a
//! fault at each file-system call of a write.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use blake2::Digest;

use penin_history::checkpoint::Reason::{Last, Tagged, Within};
use penin_history::checkpoint::{
    self, Counts, Error, Listing, Meta, NewCheckpoint, Plan, Reason, Selector,
};
use penin_history::time::Timestamp;
use penin_store::RealFs;
use penin_store::testing::{Fault, FaultyFs, Op};

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn new_checkpoint<'a>(time: &str, tag: Option<&'a str>) -> NewCheckpoint<'a> {
    NewCheckpoint {
        time: at(time),
        tag,
        journal: 42,
        ledger_seq: 17,
        ledger_head: [0x5a; 32],
        counts: Counts {
            knowledge: 3,
            tasks: 100,
            scores: 99,
        },
    }
}

/// A state's bytes that tell checkpoints apart.
fn state(n: usize) -> Vec<u8> {
    format!("{{\n  \"knowledge_base\": {{}},\n  \"n\": {n}\n}}").into_bytes()
}

/// A fresh directory and the checkpoint directory of a state in it.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = penin_history::checkpoints_dir(&root.path().join("state.json"));
    (root, dir)
}

fn write(dir: &Path, time: &str, tag: Option<&str>, bytes: &[u8]) -> Meta {
    checkpoint::write(&RealFs, dir, &new_checkpoint(time, tag), |w| {
        w.write_all(bytes)
    })
    .unwrap()
}

fn ids(metas: &[Meta]) -> Vec<&str> {
    metas.iter().map(|m| m.id.as_str()).collect()
}

#[test]
fn written_checkpoints_list_oldest_first_as_written() {
    let (_root, dir) = setup();
    assert_eq!(checkpoint::list(&dir).unwrap(), Listing::default());
    // Written out of order: the listing is by time all the same.
    let b = write(
        &dir,
        "2026-11-29T07:05:40.123456789Z",
        Some("weekly"),
        &state(2),
    );
    let a = write(&dir, "2026-11-28T07:05:40Z", None, &state(1));
    let c = write(&dir, "2026-11-30T00:00:00+02:00", None, &state(3));

    assert_eq!(b.id, "20261129T070540.123Z");
    assert_eq!(
        b.time,
        at("2026-11-29T07:05:40.123456Z"),
        "kept to the microsecond"
    );
    assert_eq!(b.tag.as_deref(), Some("weekly"));
    assert_eq!(
        (b.journal, b.ledger_seq, b.ledger_head),
        (42, 17, [0x5a; 32])
    );
    assert_eq!(
        b.counts,
        Counts {
            knowledge: 3,
            tasks: 100,
            scores: 99
        }
    );
    assert_eq!(c.id, "20261129T220000.000Z");
    let listing = checkpoint::list(&dir).unwrap();
    assert_eq!(listing.checkpoints, [a, b.clone(), c]);
    assert!(listing.unfinished.is_empty() && listing.foreign.is_empty());

    // The data file is the state as written; its size and hash are in the meta file.
    let data = checkpoint::data_path(&dir, &b);
    assert_eq!(data, dir.join("20261129T070540.123Z.json"));
    assert_eq!(fs::read(&data).unwrap(), state(2));
    assert_eq!(b.size, state(2).len() as u64);
    let python = "a79c1ffc77c2359a23f172de0aef7fc441774264917433ad325e16764b0dd745";
    assert_eq!(
        hex(&b.blake2b),
        python,
        "hashlib.blake2b(state(2), digest_size=32)"
    );
    let meta_file = fs::read_to_string(dir.join("20261129T070540.123Z.meta")).unwrap();
    assert_eq!(
        meta_file,
        format!(
            "{{\"penin_checkpoint\":1,\"id\":\"20261129T070540.123Z\",\
             \"time\":\"2026-11-29T07:05:40.123456Z\",\"tag\":\"weekly\",\"journal\":42,\
             \"ledger_seq\":17,\"ledger_head\":\"{}\",\"size\":{},\"blake2b\":\"{python}\",\
             \"knowledge\":3,\"tasks\":100,\"scores\":99}}\n",
            "5a".repeat(32),
            state(2).len()
        )
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

#[test]
fn the_hash_is_blake2b_256_of_what_the_body_wrote_in_pieces() {
    let (_root, dir) = setup();
    let meta = checkpoint::write(&RealFs, &dir, &new_checkpoint("2026-11-29", None), |w| {
        w.write_all(b"a")?;
        w.write_all(b"")?;
        w.write_all(b"bc")?;
        w.flush()
    })
    .unwrap();
    assert_eq!(meta.size, 3);
    assert_eq!(
        hex(&meta.blake2b),
        "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
    );
    checkpoint::verify(&dir, &meta).unwrap();

    let large: Vec<u8> = (0..1_000_003_u32).map(|i| (i % 251) as u8).collect();
    let meta = checkpoint::write(&RealFs, &dir, &new_checkpoint("2026-11-30", None), |w| {
        large
            .chunks(70_001)
            .try_for_each(|piece| w.write_all(piece))
    })
    .unwrap();
    assert_eq!(meta.size, large.len() as u64);
    let expected: [u8; 32] = blake2::Blake2b::<blake2::digest::consts::U32>::digest(&large).into();
    assert_eq!(meta.blake2b, expected);
    checkpoint::verify(&dir, &meta).unwrap();
}

#[cfg(unix)]
#[test]
fn the_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_root, dir) = setup();
    let meta = write(&dir, "2026-11-29", None, b"{}");
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&checkpoint::data_path(&dir, &meta)), 0o600);
    assert_eq!(mode(&dir.join(format!("{}.meta", meta.id))), 0o600);
}

#[test]
fn checkpoints_of_the_same_millisecond_get_the_next_free_names() {
    let (_root, dir) = setup();
    let first = write(&dir, "2026-11-29T07:05:40.123100Z", None, &state(1));
    let second = write(&dir, "2026-11-29T07:05:40.123200Z", None, &state(2));
    let third = write(&dir, "2026-11-29T07:05:40.123100Z", None, &state(3));
    // An unfinished checkpoint's name is taken too.
    fs::write(dir.join("20261129T070540.126Z.json"), "half").unwrap();
    let fourth = write(&dir, "2026-11-29T07:05:40.125999Z", None, &state(4));
    assert_eq!(first.id, "20261129T070540.123Z");
    assert_eq!(second.id, "20261129T070540.124Z");
    assert_eq!(third.id, "20261129T070540.125Z");
    assert_eq!(fourth.id, "20261129T070540.127Z");
    // The times are the ones given; the IDs only differ.
    assert_eq!(third.time, first.time);
    let listing = checkpoint::list(&dir).unwrap();
    assert_eq!(
        ids(&listing.checkpoints),
        [
            "20261129T070540.123Z",
            "20261129T070540.125Z",
            "20261129T070540.124Z",
            "20261129T070540.127Z"
        ]
    );
    assert_eq!(listing.unfinished, [dir.join("20261129T070540.126Z.json")]);
    for meta in [&first, &second, &third, &fourth] {
        checkpoint::verify(&dir, meta).unwrap();
    }
    // Of two of the same time, the later ID is the newer.
    let latest = checkpoint::select(&listing.checkpoints, &Selector::At(first.time)).unwrap();
    assert_eq!(latest.id, third.id);
}

#[test]
fn select_picks_by_id_tag_time_and_latest() {
    let (_root, dir) = setup();
    let metas = [
        write(&dir, "2026-11-01T00:00:00Z", Some("monthly"), &state(1)),
        write(&dir, "2026-11-08T00:00:00Z", Some("weekly"), &state(2)),
        write(&dir, "2026-11-15T00:00:00Z", Some("weekly"), &state(3)),
        write(&dir, "2026-11-22T00:00:00Z", None, &state(4)),
    ];
    let listing = checkpoint::list(&dir).unwrap();
    assert_eq!(listing.checkpoints, metas);
    let pick = |selector: Selector| {
        checkpoint::select(&listing.checkpoints, &selector)
            .map(|meta| meta.id.clone())
            .map_err(|error| error.to_string())
    };
    let id = |day: u32| Ok(format!("202611{day:02}T000000.000Z"));
    let time = |text: &str| Selector::At(at(text));
    assert_eq!(pick(Selector::Latest), id(22));
    assert_eq!(pick(Selector::Id("20261108T000000.000Z".into())), id(8));
    assert_eq!(pick(Selector::Tag("weekly".into())), id(15));
    assert_eq!(pick(Selector::Tag("monthly".into())), id(1));
    assert_eq!(
        pick(time("2026-11-15T00:00:00Z")),
        id(15),
        "an equal time is at"
    );
    assert_eq!(pick(time("2026-11-14T23:59:59.999999999Z")), id(8));
    assert_eq!(pick(time("2026-11-15T00:00:00.000000001Z")), id(15));
    assert_eq!(pick(time("2027-01-01")), id(22));
    assert_eq!(pick(time("2026-11-01T00:00:00Z")), id(1));
    assert_eq!(
        pick(time("2026-10-31T23:59:59.999999999Z")),
        Err(
            "no checkpoint was taken at or before 2026-10-31T23:59:59.999999Z \
             (the oldest is 20261101T000000.000Z, taken at 2026-11-01T00:00:00.000000Z)"
                .to_owned()
        )
    );
    let missing = checkpoint::select(&listing.checkpoints, &Selector::Tag("daily".into()));
    assert!(
        matches!(&missing, Err(Error::NotFound { selector: Selector::Tag(tag), .. }) if tag == "daily"),
        "{missing:?}"
    );
    assert_eq!(
        pick(Selector::Tag("daily".into())),
        Err("no checkpoint is tagged \"daily\" (the tags are \"monthly\", \"weekly\")".to_owned())
    );
    assert!(pick(Selector::Id("20261108T000000.001Z".into())).is_err());
    // The order of the slice does not matter.
    let mut reversed = listing.checkpoints.clone();
    reversed.reverse();
    let latest = checkpoint::select(&reversed, &time("2026-11-20")).unwrap();
    assert_eq!(latest.id, "20261115T000000.000Z");
}

#[test]
fn verify_catches_a_changed_byte_a_truncation_and_a_missing_file() {
    let (_root, dir) = setup();
    let meta = write(&dir, "2026-11-29", None, &state(12_345));
    checkpoint::verify(&dir, &meta).unwrap();
    let data = checkpoint::data_path(&dir, &meta);
    let good = fs::read(&data).unwrap();

    for index in [0, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[index] ^= 0x01;
        fs::write(&data, &bad).unwrap();
        let error = checkpoint::verify(&dir, &meta).unwrap_err();
        let Error::Damaged { id, what } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(id, &meta.id);
        assert!(
            what.starts_with("the BLAKE2b-256 of its data is "),
            "{what}"
        );
        assert!(
            what.ends_with(&format!(", not {}", hex(&meta.blake2b))),
            "{what}"
        );
    }

    fs::write(&data, &good[..good.len() - 1]).unwrap();
    let error = checkpoint::verify(&dir, &meta).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "checkpoint 20261129T000000.000Z is damaged: its data file holds {} bytes, not {}",
            good.len() - 1,
            good.len()
        )
    );

    fs::remove_file(&data).unwrap();
    let error = checkpoint::verify(&dir, &meta).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "checkpoint 20261129T000000.000Z is damaged: its data file {} is missing",
            data.display()
        )
    );

    // Extended by a hole of a terabyte: refused by its size, without reading it.
    fs::write(&data, &good).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let error = checkpoint::verify(&dir, &meta).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "checkpoint 20261129T000000.000Z is damaged: its data file holds {} bytes, not {}",
            1_u64 << 40,
            good.len()
        )
    );

    fs::write(&data, &good).unwrap();
    checkpoint::verify(&dir, &meta).unwrap();
}

/// Rewrites the meta file of `meta` with `change` applied to its text.
fn edit_meta(dir: &Path, meta: &Meta, change: impl FnOnce(String) -> String) -> PathBuf {
    let path = dir.join(format!("{}.meta", meta.id));
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, change(text)).unwrap();
    path
}

#[test]
fn a_newer_meta_version_is_refused_naming_both_versions() {
    let (_root, dir) = setup();
    write(&dir, "2026-11-28", None, &state(1));
    let meta = write(&dir, "2026-11-29", None, &state(2));
    let path = edit_meta(&dir, &meta, |text| {
        text.replace("\"penin_checkpoint\":1,", "\"penin_checkpoint\":2,")
            .replace("\"size\":", "\"size_in\":")
    });
    let error = checkpoint::list(&dir).unwrap_err();
    assert!(
        matches!(&error, Error::NewerVersion { path: p, found: 2, supported: 1 } if *p == path),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "{} is a checkpoint of version 2, newer than version 1 that this penin reads",
            path.display()
        )
    );
    assert_eq!(checkpoint::VERSION, 1);
}

#[test]
fn a_damaged_meta_file_is_an_error_naming_it() {
    let (_root, dir) = setup();
    let meta = write(&dir, "2026-11-29", None, &state(1));
    let path = edit_meta(&dir, &meta, |text| text[..text.len() / 2].to_owned());
    let error = checkpoint::list(&dir).unwrap_err();
    assert!(
        matches!(&error, Error::MetaSyntax { path: p, .. } if *p == path),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("{} is not a checkpoint meta file", path.display())
    );
    assert!(std::error::Error::source(&error).is_some());

    let path = edit_meta(&dir, &meta, |_| {
        let other = write(&dir, "2026-11-30", None, &state(2));
        fs::read_to_string(dir.join(format!("{}.meta", other.id))).unwrap()
    });
    let error = checkpoint::list(&dir).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{} is not a valid checkpoint meta file: its id 20261130T000000.000Z is not its \
             file's name",
            path.display()
        )
    );

    fs::write(&path, vec![b' '; 70_000]).unwrap();
    let error = checkpoint::list(&dir).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{} is not a valid checkpoint meta file: it is larger than 65536 bytes",
            path.display()
        )
    );
}

#[test]
fn unfinished_checkpoints_are_listed_apart_and_removed_on_request() {
    let (_root, dir) = setup();
    let kept = write(&dir, "2026-11-29", None, &state(1));
    let unfinished = [
        "20261130T000000.000Z.json",
        ".20261130T000000.000Z.meta.penin-tmp.77.0",
        ".20261201T000000.000Z.json.penin-tmp.77.1",
    ];
    let foreign = [
        "notes.txt",
        "20261130T000000.000Z.json.orig",
        ".20261130T000000.000Z.penin-tmp.1.0",
        "2026-11-30.json",
    ];
    for name in unfinished.iter().chain(&foreign) {
        fs::write(dir.join(name), name).unwrap();
    }
    fs::create_dir(dir.join("20261202T000000.000Z.json")).unwrap();
    let listing = checkpoint::list(&dir).unwrap();
    assert_eq!(listing.checkpoints, std::slice::from_ref(&kept));
    let mut expected: Vec<PathBuf> = unfinished.iter().map(|n| dir.join(n)).collect();
    expected.sort();
    assert_eq!(listing.unfinished, expected);
    let mut expected: Vec<PathBuf> = foreign.iter().map(|n| dir.join(n)).collect();
    expected.push(dir.join("20261202T000000.000Z.json"));
    expected.sort();
    assert_eq!(listing.foreign, expected);

    let fs_calls = FaultyFs::new();
    assert_eq!(
        checkpoint::remove_unfinished(&fs_calls, &dir, &listing).unwrap(),
        3
    );
    assert_eq!(
        fs_calls.ops(),
        [Op::Remove, Op::Remove, Op::Remove, Op::SyncDir]
    );
    let after = checkpoint::list(&dir).unwrap();
    assert_eq!(after.checkpoints, [kept]);
    assert!(after.unfinished.is_empty());
    assert_eq!(
        after.foreign, listing.foreign,
        "foreign files are left alone"
    );
    // Already gone: nothing to do, no error.
    assert_eq!(
        checkpoint::remove_unfinished(&RealFs, &dir, &listing).unwrap(),
        0
    );
}

/// Five checkpoints, a day apart, the first and third tagged, long ago: retention must not
/// count from now.
fn five(dir: &Path) -> Vec<Meta> {
    [
        ("2020-01-01T00:00:00Z", Some("first")),
        ("2020-01-02T00:00:00Z", None),
        ("2020-01-03T00:00:00Z", Some("third")),
        ("2020-01-04T00:00:00Z", None),
        ("2020-01-05T00:00:00Z", None),
    ]
    .iter()
    .enumerate()
    .map(|(n, (time, tag))| write(dir, time, *tag, &state(n)))
    .collect()
}

/// The plan as (day of the month, reasons) kept and days removed.
fn days(plan: &Plan) -> (Vec<(u8, Vec<Reason>)>, Vec<u8>) {
    let day = |meta: &Meta| meta.id[6..8].parse().unwrap();
    let keep = plan.keep.iter().map(|(m, r)| (day(m), r.clone())).collect();
    (keep, plan.remove.iter().map(day).collect())
}

#[test]
fn prune_plans_follow_restic() {
    let (_root, dir) = setup();
    let all = five(&dir);
    let day = Duration::from_secs(86_400);
    let plan = |last, within, tags_too| {
        days(&checkpoint::plan_prune(&all, last, within, tags_too).unwrap())
    };

    // keep-last: the newest N, ranked from 1; tagged ones kept besides.
    assert_eq!(
        plan(Some(2), None, false),
        (
            vec![
                (1, vec![Tagged]),
                (3, vec![Tagged]),
                (4, vec![Last(2)]),
                (5, vec![Last(1)])
            ],
            vec![2]
        )
    );
    assert_eq!(
        plan(Some(2), None, true),
        (vec![(4, vec![Last(2)]), (5, vec![Last(1)])], vec![1, 2, 3])
    );
    assert_eq!(plan(Some(9), None, true).1, Vec::<u8>::new());

    // keep-within counts back from the newest checkpoint, not from now; the boundary itself
    // is out, as restic's `After`.
    assert_eq!(
        plan(None, Some(2 * day), true),
        (vec![(4, vec![Within]), (5, vec![Within])], vec![1, 2, 3])
    );
    assert_eq!(
        plan(None, Some(2 * day + Duration::from_nanos(1)), true)
            .0
            .len(),
        3
    );
    assert_eq!(
        plan(None, Some(Duration::from_nanos(1)), true),
        (vec![(5, vec![Within])], vec![1, 2, 3, 4])
    );

    // Rules add up: a checkpoint is kept if any rule keeps it.
    assert_eq!(
        plan(Some(1), Some(3 * day), false),
        (
            vec![
                (1, vec![Tagged]),
                (3, vec![Within, Tagged]),
                (4, vec![Within]),
                (5, vec![Last(1), Within])
            ],
            vec![2]
        )
    );

    // No rule, or only rules of 0: refused.
    for (last, within) in [
        (None, None),
        (Some(0), None),
        (None, Some(Duration::ZERO)),
        (Some(0), Some(Duration::ZERO)),
    ] {
        let error = checkpoint::plan_prune(&all, last, within, true).unwrap_err();
        assert!(matches!(error, Error::NoPolicy), "{error:?}");
        assert_eq!(
            error.to_string(),
            "no retention rule: give keep_last or keep_within (a rule of 0 counts as none)"
        );
    }
    assert_eq!(
        checkpoint::plan_prune(&[], Some(1), None, false).unwrap(),
        Plan::default()
    );
    // The order of the slice does not matter.
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(
        checkpoint::plan_prune(&reversed, Some(2), Some(day), false).unwrap(),
        checkpoint::plan_prune(&all, Some(2), Some(day), false).unwrap()
    );
}

#[test]
fn a_plan_removes_nothing_until_carried_out() {
    let (_root, dir) = setup();
    let all = five(&dir);
    let plan = checkpoint::plan_prune(&all, Some(1), None, false).unwrap();
    assert_eq!(
        checkpoint::list(&dir).unwrap().checkpoints,
        all,
        "a dry run"
    );
    for meta in &plan.remove {
        let fs_calls = FaultyFs::new();
        checkpoint::remove(&fs_calls, &dir, meta).unwrap();
        assert_eq!(fs_calls.ops(), [Op::Remove, Op::Remove, Op::SyncDir]);
        assert!(!checkpoint::data_path(&dir, meta).exists());
    }
    let listing = checkpoint::list(&dir).unwrap();
    let kept: Vec<Meta> = plan.keep.into_iter().map(|(meta, _)| meta).collect();
    assert_eq!(listing.checkpoints, kept);
    assert_eq!(
        ids(&kept),
        [
            "20200101T000000.000Z",
            "20200103T000000.000Z",
            "20200105T000000.000Z"
        ]
    );
    assert!(listing.unfinished.is_empty() && listing.foreign.is_empty());
    let error = checkpoint::remove(&RealFs, &dir, &plan.remove[0]).unwrap_err();
    assert!(error.to_string().starts_with("cannot remove "), "{error}");
}

#[test]
fn a_removal_cut_short_leaves_an_unfinished_checkpoint_and_a_damaged_one_can_be_removed() {
    let (_root, dir) = setup();
    let a = write(&dir, "2026-11-28", None, &state(1));
    let b = write(&dir, "2026-11-29", None, &state(2));
    let fs_calls = FaultyFs::failing(2, Fault::EIO);
    let error = checkpoint::remove(&fs_calls, &dir, &a).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot remove {}",
            checkpoint::data_path(&dir, &a).display()
        )
    );
    let listing = checkpoint::list(&dir).unwrap();
    assert_eq!(listing.checkpoints, std::slice::from_ref(&b));
    assert_eq!(listing.unfinished, [checkpoint::data_path(&dir, &a)]);

    fs::remove_file(checkpoint::data_path(&dir, &b)).unwrap();
    assert!(checkpoint::verify(&dir, &b).is_err());
    checkpoint::remove(&RealFs, &dir, &b).unwrap();
    assert!(checkpoint::list(&dir).unwrap().checkpoints.is_empty());
}

#[test]
fn a_failing_body_or_an_empty_tag_leaves_nothing() {
    let (_root, dir) = setup();
    let error = checkpoint::write(&RealFs, &dir, &new_checkpoint("2026-11-29", None), |w| {
        w.write_all(b"{\"half")?;
        Err(io::Error::other("encoder gave up"))
    })
    .unwrap_err();
    let Error::Store(store) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(store.step(), Some(penin_store::Step::Write));
    assert_eq!(store.io_error().unwrap().to_string(), "encoder gave up");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);

    let error = checkpoint::write(
        &RealFs,
        &dir,
        &new_checkpoint("2026-11-29", Some("")),
        |w| w.write_all(b"{}"),
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "invalid tag \"\": a tag cannot be empty");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
}

/// Every listed checkpoint of `dir` verifies; returns the listing.
fn all_verify(dir: &Path, context: &str) -> Listing {
    let listing = checkpoint::list(dir).unwrap_or_else(|e| panic!("{context}: {e}"));
    for meta in &listing.checkpoints {
        checkpoint::verify(dir, meta).unwrap_or_else(|e| panic!("{context}: {e}"));
    }
    listing
}

/// A write through `fs` into a fresh directory, then the checks: whatever the outcome, no
/// listed checkpoint fails verification; a write that succeeded is listed as returned; a
/// write that failed is not listed, unless only the very last call, the directory sync after
/// the meta file's rename, failed. A later write succeeds and cleans up.
/// Returns whether the fault was reached.
fn write_with_faults(fs_calls: &FaultyFs, fault_at: usize, context: &str) -> bool {
    let (_root, dir) = setup();
    let earlier = write(&dir, "2026-11-28", Some("earlier"), &state(0));
    let body = state(77);
    let outcome = checkpoint::write(fs_calls, &dir, &new_checkpoint("2026-11-29", None), |w| {
        // Several writes, so that a fault can fall between two of them.
        body.chunks(8).try_for_each(|piece| w.write_all(piece))
    });
    let ops = fs_calls.ops();
    let reached = ops.len() >= fault_at;
    let listing = all_verify(&dir, context);
    match &outcome {
        Ok(meta) => assert_eq!(
            listing.checkpoints,
            [earlier.clone(), meta.clone()],
            "{context}"
        ),
        Err(error) => {
            assert!(reached, "{context}: failed without a fault: {error}");
            let last_call_failed = fault_at == ops.len() && ops.last() == Some(&Op::SyncDir);
            if listing.checkpoints.len() == 2 {
                assert!(
                    last_call_failed,
                    "{context}: listed after {error}; calls {ops:?}"
                );
            } else {
                assert_eq!(
                    listing.checkpoints,
                    std::slice::from_ref(&earlier),
                    "{context}: {error}"
                );
            }
        }
    }
    // The disk is back: clean up, write again, and everything verifies.
    let fs_ok = RealFs;
    checkpoint::remove_unfinished(&fs_ok, &dir, &listing).unwrap();
    let again = checkpoint::write(&fs_ok, &dir, &new_checkpoint("2026-11-29", None), |w| {
        w.write_all(&body)
    })
    .unwrap();
    let listing = all_verify(&dir, context);
    assert!(listing.checkpoints.contains(&again), "{context}");
    assert!(
        listing.unfinished.is_empty(),
        "{context}: {:?}",
        listing.unfinished
    );
    let names = fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        names,
        2 * listing.checkpoints.len(),
        "{context}: stray files"
    );
    reached
}

#[test]
fn a_fault_at_any_call_of_a_write_leaves_no_listed_checkpoint_that_fails_verification() {
    let mut calls = 0;
    for fault_at in 1.. {
        let mut reached = false;
        for (name, fs_calls) in [
            ("once", FaultyFs::failing(fault_at, Fault::EIO)),
            ("forever", FaultyFs::failing(fault_at, Fault::EIO).forever()),
            (
                "short write",
                FaultyFs::failing(fault_at, Fault::ENOSPC).short_write(),
            ),
        ] {
            reached |= write_with_faults(&fs_calls, fault_at, &format!("call {fault_at}, {name}"));
        }
        if !reached {
            calls = fault_at - 1;
            break;
        }
    }
    // Two saves of a file, each at least: create, write, sync, rename, sync the directory.
    assert!(calls >= 10, "a write made only {calls} calls");
}
