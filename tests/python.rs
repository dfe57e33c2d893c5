//! Python's reference loader and `json.dump(indent=2)` (`python/seed_ref.py`) re-save the
//! files penin writes byte for byte, and accept them as states; Python's `gzip` and the
//! `zstandard` package read penin's compressed snapshots, and penin reads theirs; pyarrow
//! (with the xxhash package) reads penin's arrow snapshots and checks their checksum.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use penin_codec::{Document, NumericVectorArtifact};
use penin_orchestrator::{Format, Orchestrator};
use penin_tests::{any_f64, assert_same_document, python_document};
use proptest::collection::vec;
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Generated states handed to Python: each costs two interpreter starts.
const CASES: u32 = 48;

/// Files of many floats handed to Python, and floats in each.
const FLOAT_CASES: u32 = 4;
const FLOATS: usize = 5000;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/seed_ref.py")
}

/// Whether `python3` runs. Without it, `test` is skipped (a failure under CI unless allowed).
#[track_caller]
fn python3_available(test: &str) -> bool {
    penin_testkit::python3(test, "no Python to check penin's files with")
}

fn run(args: &[&Path]) -> Output {
    Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("python3 runs")
}

fn check_case(doc: &Document) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    let output = dir.path().join("out.json");
    let bytes = penin_codec::to_vec(doc);
    std::fs::write(&input, &bytes).unwrap();

    let resave = run(&[Path::new("resave"), &input, &output]);
    if !resave.status.success() {
        return Err(TestCaseError::fail(format!(
            "Python cannot load and dump penin's file: {}\n{}",
            String::from_utf8_lossy(&resave.stderr),
            String::from_utf8_lossy(&bytes)
        )));
    }
    let python = std::fs::read(&output).unwrap();
    if python != bytes {
        return Err(TestCaseError::fail(format!(
            "Python's re-save differs from penin's file\n--- penin\n{}\n--- python\n{}",
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&python)
        )));
    }

    let check = run(&[Path::new("check"), &input]);
    if !check.status.success() {
        return Err(TestCaseError::fail(format!(
            "Python does not take penin's file for a state: {}",
            String::from_utf8_lossy(&check.stderr)
        )));
    }
    Ok(())
}

#[test]
fn python_resaves_penin_files_byte_for_byte() {
    if !python3_available("python::python_resaves_penin_files_byte_for_byte") {
        return;
    }
    let config = Config {
        // Each shrinking step starts Python twice: enough to reach a small case.
        max_shrink_iters: 512,
        ..penin_tests::config(CASES, regressions!("python"))
    };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&python_document(), |doc| check_case(&doc)) {
        panic!("{e}");
    }
}

/// Thousands of floats per file, random bit patterns and the `repr` boundaries among them:
/// penin's spelling of each is Python's (shortest digits, ties, exponent form).
#[test]
fn python_spells_floats_as_penin_does() {
    if !python3_available("python::python_spells_floats_as_penin_does") {
        return;
    }
    let config = Config {
        max_shrink_iters: 512,
        ..penin_tests::config(FLOAT_CASES, regressions!("python"))
    };
    let floats = vec(any_f64(), FLOATS).prop_map(|vector| {
        let mut doc = Document::new(None);
        doc.score_history.extend(vector.iter().map(|&f| f.into()));
        doc.knowledge_base
            .insert("floats".to_owned(), NumericVectorArtifact::new(vector));
        doc
    });
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&floats, |doc| check_case(&doc)) {
        panic!("{e}");
    }
}

/// Runs `seed_ref.py ARGS` for a check of the zstandard package: `None` (after a skip, which
/// fails under CI) when the package is missing, which the script says with exit code 3.
#[track_caller]
fn run_zstd(test: &str, args: &[&Path]) -> Option<Output> {
    let output = run(args);
    if penin_testkit::python_package_missing(
        test,
        &output,
        "penin's json.zst cannot be checked against Python",
    ) {
        return None;
    }
    Some(output)
}

/// The fixtures as penin loads them, and penin's seed JSON of each (which is what Python
/// re-saves them as: they are all `exact`).
fn fixture_states() -> Vec<(String, Orchestrator, Vec<u8>)> {
    crate::formats::fixtures()
        .into_iter()
        .map(|(name, path)| {
            let mut state = Orchestrator::new();
            assert!(state.load_state(&path).unwrap());
            let json = state.to_bytes();
            (name, state, json)
        })
        .collect()
}

/// Python's `gzip.open(path, 'rt')` and `json.load(object_hook=state_decoder)` read the
/// json.gz penin writes (and zstandard the json.zst) as the state it is: its re-save in
/// plain JSON is penin's JSON byte for byte.
#[test]
fn python_reads_penin_json_gz_and_json_zst() {
    let test = "python::python_reads_penin_json_gz_and_json_zst";
    if !python3_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("python.json");
    for (name, state, json) in fixture_states() {
        for (format, command) in [(Format::JsonGz, "check-gz"), (Format::JsonZst, "check-zst")] {
            let input = dir.path().join(format!("{name}.{format}"));
            state.save_state_as(&input, format).unwrap();
            let output = if format == Format::JsonZst {
                match run_zstd(test, &[Path::new(command), &input, &out]) {
                    Some(output) => output,
                    None => continue,
                }
            } else {
                run(&[Path::new(command), &input, &out])
            };
            assert!(
                output.status.success(),
                "{name} ({format}): Python cannot read penin's file: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                std::fs::read(&out).unwrap() == json,
                "{name} ({format}): Python's re-save differs from penin's JSON"
            );
        }
    }
}

/// penin reads the gzip file Python writes in several members (`gzip.open(path, 'ab')`
/// three times) and the zstd file it writes in two frames, as the state inside.
#[test]
fn penin_reads_gzip_and_zstd_that_python_wrote_in_several_parts() {
    let test = "python::penin_reads_gzip_and_zstd_that_python_wrote_in_several_parts";
    if !python3_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, state, json) in fixture_states() {
        let plain = dir.path().join(format!("{name}.json"));
        std::fs::write(&plain, &json).unwrap();
        for (format, command) in [(Format::JsonGz, "write-gz"), (Format::JsonZst, "write-zst")] {
            let written = dir.path().join(format!("{name}.python.{format}"));
            let output = if format == Format::JsonZst {
                match run_zstd(test, &[Path::new(command), &plain, &written]) {
                    Some(output) => output,
                    None => continue,
                }
            } else {
                run(&[Path::new(command), &plain, &written])
            };
            assert!(
                output.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let bytes = std::fs::read(&written).unwrap();
            if format == Format::JsonGz && json.len() >= 3 {
                // Three members, each with its own header: the magic, CM=8 (deflate).
                let members = bytes.windows(3).filter(|w| w == b"\x1f\x8b\x08").count();
                assert!(
                    members >= 3,
                    "{name}: Python wrote {members} gzip member(s)"
                );
            }
            let mut loaded = Orchestrator::new();
            assert_eq!(
                loaded.load_state_format(&written).unwrap(),
                Some(format),
                "{name}"
            );
            assert_same_document(loaded.document(), state.document());
            assert!(loaded.to_bytes() == json, "{name} ({format})");
        }
    }
}

/// pyarrow opens the arrow snapshot penin writes of every fixture (and of a state whose
/// vectors differ in length) without penin: `python/arrow_check.py` compares its columns
/// with the seed JSON, float by float, reads `penin.format` and `penin.version` from the
/// schema metadata, and recomputes the footer's XXH3-128 with the xxhash package.
#[test]
fn pyarrow_reads_penin_arrow_snapshots() {
    let test = "python::pyarrow_reads_penin_arrow_snapshots";
    if !python3_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut states = fixture_states();
    let mut ragged = Orchestrator::new();
    ragged.add_knowledge("a", NumericVectorArtifact::new(vec![f64::NAN, -0.0, 1e300]));
    ragged.add_knowledge("b", NumericVectorArtifact::new(vec![]));
    ragged.add_knowledge("c", NumericVectorArtifact::new(vec![f64::NEG_INFINITY]));
    let json = ragged.to_bytes();
    states.push(("ragged".to_owned(), ragged, json));
    // Enough artifacts for several record batches: fixed-width vectors, and vectors of
    // different lengths (a `List` column).
    let rows = penin_formats::arrow::ROWS_PER_BATCH;
    for (name, n, ragged) in [
        ("batches", 2 * rows + 7, false),
        ("ragged batches", rows + 3, true),
    ] {
        let mut many = Orchestrator::new();
        for i in 0..n {
            let len = if ragged { i % 5 } else { 4 };
            let vector: Vec<f64> = (0..len)
                .map(|j| f64::from(u32::try_from(i * 7 + j).unwrap()) / 3.0)
                .collect();
            many.add_knowledge(format!("k{i}"), NumericVectorArtifact::new(vector));
        }
        let json = many.to_bytes();
        states.push((name.to_owned(), many, json));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/arrow_check.py");
    for (name, state, json) in states {
        let arrow = dir.path().join(format!("{name}.arrow"));
        let plain = dir.path().join(format!("{name}.json"));
        state.save_state_as(&arrow, Format::Arrow).unwrap();
        std::fs::write(&plain, &json).unwrap();
        let output = Command::new("python3")
            .arg(&script)
            .arg(&arrow)
            .arg(&plain)
            .output()
            .expect("python3 runs");
        if penin_testkit::python_package_missing(
            test,
            &output,
            "penin's arrow snapshot cannot be checked with pyarrow",
        ) {
            return;
        }
        assert!(
            output.status.success(),
            "{name}: pyarrow does not read penin's arrow file as the state: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summary = String::from_utf8_lossy(&output.stdout);
        let artifacts = state.knowledge_base().len();
        assert!(
            summary.contains(&format!("\"artifacts\": {artifacts},")),
            "{name}: {summary}"
        );
        // pyarrow reads every batch (the script compares every row with the JSON too).
        let batches = artifacts.div_ceil(rows);
        assert!(
            summary.contains(&format!("\"batches\": {batches},")),
            "{name}: {summary}"
        );
    }
}

/// numpy's answers (`python/search_check.py`) for the knowledge base of `state` and
/// `queries`: `{"cosine": [[[key, score], ...] per query], "dot": ..., "l2": ...}`; `None`
/// when numpy is missing (the test is then skipped).
fn numpy_search(
    test: &str,
    dir: &Path,
    state: &Orchestrator,
    queries: &[Vec<f64>],
    k: usize,
) -> Option<penin_orchestrator::Map> {
    use penin_orchestrator::{Map, Value};
    let kb = state.knowledge_base();
    let vector = |v: &[f64]| Value::from(v.iter().map(|x| Value::from(*x)).collect::<Vec<_>>());
    let mut input = Map::new();
    input.insert(
        "keys",
        Value::from(
            kb.keys()
                .map(|key| Value::from(key.as_str()))
                .collect::<Vec<_>>(),
        ),
    );
    input.insert(
        "vectors",
        Value::from(kb.values().map(|a| vector(&a.vector)).collect::<Vec<_>>()),
    );
    input.insert(
        "queries",
        Value::from(queries.iter().map(|q| vector(q)).collect::<Vec<_>>()),
    );
    input.insert("k", Value::from(i64::try_from(k).unwrap()));
    let path = dir.join(format!("search-{}.json", kb.len()));
    std::fs::write(&path, penin_codec::to_vec_compact(&Value::from(input))).unwrap();
    let output = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/search_check.py"))
        .arg(&path)
        .output()
        .expect("python3 runs");
    if penin_testkit::python_package_missing(
        test,
        &output,
        "penin's search cannot be checked against numpy",
    ) {
        return None;
    }
    assert!(
        output.status.success(),
        "numpy's search failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    match penin_codec::from_slice::<Value>(&output.stdout).unwrap() {
        Value::Object(numpy) => Some(*numpy),
        other => panic!("not an object: {other:?}"),
    }
}

/// `[[key, score], ...]` as pairs.
fn key_scores(value: &penin_orchestrator::Value) -> Vec<(String, f64)> {
    use penin_orchestrator::Value;
    let Value::Array(pairs) = value else {
        panic!("not a list: {value:?}")
    };
    pairs
        .iter()
        .map(|pair| match pair {
            Value::Array(pair) => match (&pair[0], &pair[1]) {
                (Value::String(key), Value::Number(score)) => (key.to_string(), score.to_f64()),
                other => panic!("not [key, score]: {other:?}"),
            },
            other => panic!("not [key, score]: {other:?}"),
        })
        .collect()
}

/// penin's search finds what numpy finds (`python/search_check.py`: `argpartition` on the
/// product of the normalised matrix and the query, then a sort): on random knowledge bases
/// with zero vectors and vectors of another length, the same top-k keys in the same order
/// under every metric, scores within 1e-9 relative, split across threads or not.
#[test]
fn penin_search_equals_numpy() {
    use penin_orchestrator::Value;
    use penin_orchestrator::search::{Metric, Search, SearchIndex};

    let test = "python::penin_search_equals_numpy";
    if !python3_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = penin_testkit::Xorshift::new(0x5DEE_CE66_D1CE_4E5B);
    let mut next = move || rng.next_symmetric();
    // (artifacts, dimension, k, split across threads)
    for (n, dim, k, split) in [
        (300, 7, 10, false),
        (2000, 48, 10, true),
        (50, 3, 80, false),
    ] {
        let mut state = Orchestrator::new();
        for i in 0..n {
            let len = if i % 37 == 11 { dim + 2 } else { dim };
            let vector: Vec<f64> = if i % 41 == 5 {
                vec![0.0; len]
            } else {
                (0..len).map(|_| next()).collect()
            };
            state.add_knowledge(format!("key{i}"), NumericVectorArtifact::new(vector));
        }
        let queries: Vec<Vec<f64>> = (0..4).map(|_| (0..dim).map(|_| next()).collect()).collect();
        let Some(numpy) = numpy_search(test, dir.path(), &state, &queries, k) else {
            return;
        };
        let kb = state.knowledge_base();
        let index = SearchIndex::new(kb);
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            let Some(Value::Array(per_query)) = numpy.get(metric.name()) else {
                panic!("no {metric} in numpy's answer");
            };
            for (q, (query, expected)) in queries.iter().zip(per_query).enumerate() {
                let mut search = Search::new(k).metric(metric);
                if split {
                    search = search.threads(2).parallel_min(0);
                }
                let hits = index.search(kb, query, &search).unwrap();
                let expected = key_scores(expected);
                let got: Vec<&str> = hits.results.iter().map(|hit| hit.key).collect();
                let want: Vec<&str> = expected.iter().map(|(key, _)| key.as_str()).collect();
                assert_eq!(got, want, "{n} x {dim}, {metric}, query {q}");
                assert_eq!(hits.results.len(), k.min(want.len()));
                for (hit, (key, score)) in hits.results.iter().zip(&expected) {
                    assert!(
                        (hit.score - score).abs() <= 1e-9 * score.abs().max(1e-300),
                        "{n} x {dim}, {metric}, query {q}, {key}: penin {} numpy {score}",
                        hit.score
                    );
                }
                if metric == Metric::Cosine {
                    assert!(hits.skipped.zero > 0 && hits.skipped.dimension > 0);
                }
            }
        }
    }
}
