//! Python's reference loader and `json.dump(indent=2)` (`python/seed_ref.py`) re-save the
//! files penin writes byte for byte, and accept them as states.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use penin_codec::{Document, NumericVectorArtifact};
use penin_tests::{any_f64, python_document};
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
