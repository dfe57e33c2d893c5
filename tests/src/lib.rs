//! Proptest strategies for penin's values and state files, and comparisons that hold floats
//! to their exact bits.
//!
//! The strategies reach the corners of the seed format: every kind of `f64` (canonical
//! NaN, `-0.0`, the infinities, subnormals, the extremes, random bit patterns), integers far
//! beyond `i64`, strings full of escapes and characters beyond U+FFFF, and value trees that
//! nest artifacts and deques inside task records and metadata, next to objects with unknown
//! `__type__` tags.
//!
//! Two families of state: [`any_document`] uses everything penin keeps, the extra keys of
//! artifacts and deques included; [`python_document`] leaves those extra keys out, because
//! the Python tool's decoder drops them, so that its states re-save in Python unchanged.
//!
//! Comparisons ([`same_value`], [`same_document`], [`assert_same_document`]) are structural
//! and compare floats by [`f64::to_bits`], so `-0.0` differs from `0.0` and NaN equals the
//! canonical NaN it is read back as. Maps compare in order: the writer keeps insertion
//! order, so a round trip must too.
//!
//! # Example
//!
//! ```
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::deterministic();
//! let doc = penin_tests::any_document().new_tree(&mut runner).unwrap().current();
//! let bytes = penin_codec::to_vec(&doc);
//! let back: penin_codec::Document = penin_codec::from_slice(&bytes).unwrap();
//! penin_tests::assert_same_document(&back, &doc);
//! assert_eq!(penin_codec::to_vec(&back), bytes);
//! ```

use penin_artifacts::{
    ARTIFACT_TAG, DEQUE_TAG, Deque, KnowledgeBase, Map, Number, NumericVectorArtifact, Value,
};
use penin_codec::{Document, Source};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, FileFailurePersistence};

/// The seed format's top-level keys, which a document's extra keys never repeat.
pub const DOCUMENT_KEYS: [&str; 3] = ["knowledge_base", "task_history", "score_history"];

/// Keys an artifact writes itself, which its extra keys never repeat.
pub const ARTIFACT_KEYS: [&str; 3] = ["__type__", "vector", "metadata"];

/// Keys a deque writes itself, which its extra keys never repeat.
pub const DEQUE_KEYS: [&str; 3] = ["__type__", "items", "maxlen"];

/// Tags close to the two known ones but not equal to them: kept as plain objects.
pub const NEAR_MISS_TAGS: [&str; 9] = [
    "",
    "Deque",
    "deque ",
    " deque",
    "DEQUE",
    "numericVectorArtifact",
    "NumericVectorArtifact2",
    "NumericVector",
    "collections.deque",
];

/// Floats whose spelling or reading is a known trap: the Python `repr` boundaries, ties,
/// the extremes and the special values.
#[allow(clippy::unreadable_literal)] // the literals are written as Python prints them
const SPECIAL_F64: [f64; 34] = [
    f64::NAN,
    0.0,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
    -f64::MIN_POSITIVE,
    f64::MAX,
    f64::MIN,
    f64::EPSILON,
    5e-324,
    -5e-324,
    2.225073858507201e-308,
    1.0,
    -1.0,
    0.1,
    0.5,
    0.30000000000000004,
    1e-5,
    1e-4,
    0.00012345,
    9.999999999999999e-5,
    1e15,
    1e16,
    9999999999999998.0,
    1.2345678901234568e16,
    9007199254740992.0,
    9007199254740993.0,
    1658206780088562.2,
    123456789.0,
    1e22,
    1e23,
    2.5e-7,
    -1e100,
];

/// NaN of any sign or payload becomes [`f64::NAN`], the one NaN the reader produces.
#[must_use]
pub fn canonical(f: f64) -> f64 {
    if f.is_nan() { f64::NAN } else { f }
}

/// Any `f64`: special values, subnormals, random bit patterns (NaNs made canonical),
/// short decimals and integral floats around the `1e16` exponent boundary.
pub fn any_f64() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        3 => select(SPECIAL_F64.to_vec()),
        2 => (any::<bool>(), 1_u64..(1_u64 << 52))
            .prop_map(|(negative, mantissa)| f64::from_bits(u64::from(negative) << 63 | mantissa)),
        4 => any::<u64>().prop_map(|bits| canonical(f64::from_bits(bits))),
        // Decimals with few digits, as embeddings and scores are written by people.
        3 => (-1_000_000_i32..1_000_000, 0_i32..9)
            .prop_map(|(m, k)| format!("{m}e-{k}").parse().unwrap_or(0.0)),
        // Integral floats from 2^40 to 2^60: positional up to 1e16, exponent form beyond.
        1 => ((1_u64 << 40)..(1_u64 << 60)).prop_map(|n| format!("{n}.0").parse().unwrap_or(0.0)),
        // Powers of ten across the positional and exponent forms.
        1 => (-30_i32..30).prop_map(|e| format!("1e{e}").parse().unwrap_or(0.0)),
    ]
}

/// An integer outside `i64` (or at its edge), made by [`Number::parse_integer`]: 19 to 60
/// digits, either sign, and values one step past `i64::MIN` and `i64::MAX`.
///
/// # Panics
///
/// Generating panics if `Number::parse_integer` refuses a canonical decimal integer.
pub fn big_integer() -> impl Strategy<Value = Number> + Clone {
    let digits =
        (any::<bool>(), 1_u8..=9, vec(0_u8..=9, 18..60)).prop_map(|(negative, first, rest)| {
            let mut text = String::with_capacity(rest.len() + 2);
            if negative {
                text.push('-');
            }
            text.push(char::from(b'0' + first));
            text.extend(rest.iter().map(|&d| char::from(b'0' + d)));
            text
        });
    let beyond_i64 = prop_oneof![
        (i128::from(i64::MAX) + 1..=i128::from(i64::MAX) + 1000),
        (i128::from(i64::MIN) - 1000..=i128::from(i64::MIN) - 1),
        any::<i128>(),
        any::<u64>().prop_map(i128::from),
    ]
    .prop_map(|n| n.to_string());
    prop_oneof![digits, beyond_i64].prop_map(|text| {
        // The text is a canonical decimal integer by construction.
        Number::parse_integer(&text).expect("a generated decimal integer")
    })
}

/// Any number: integers (the `i64` extremes, small ones, any `i64`), big integers and floats.
pub fn any_number() -> impl Strategy<Value = Number> + Clone {
    prop_oneof![
        1 => select(vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX])
            .prop_map(Number::Int),
        2 => (-1000_i64..1000).prop_map(Number::Int),
        2 => any::<i64>().prop_map(Number::Int),
        2 => big_integer(),
        4 => any_f64().prop_map(Number::Float),
    ]
}

/// Characters the string writer must escape or keep: printable ASCII, `"` `\` and the named
/// escapes, every C0 control, DEL, C1 controls, U+2028/U+2029, the BOM, the edges of the BMP
/// and characters beyond U+FFFF (written as surrogate pairs).
pub fn any_char() -> impl Strategy<Value = char> + Clone {
    prop_oneof![
        6 => proptest::char::range(' ', '~'),
        3 => select(vec![
                '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\0', '\u{1f}', '\u{7f}',
                '\u{80}', '\u{9f}', '\u{a0}', '\u{e9}', '\u{2028}', '\u{2029}', '\u{feff}',
                '\u{fffd}', '\u{ffff}', '\u{d7ff}', '\u{e000}', '\u{10000}', '\u{1f600}',
                '\u{10ffff}',
        ]),
        1 => proptest::char::range('\0', '\u{1f}'),
        1 => proptest::char::range('\u{80}', '\u{ffff}'),
        1 => proptest::char::range('\u{10000}', '\u{10ffff}'),
        1 => any::<char>(),
    ]
}

/// Any string of up to 12 [`any_char`] characters (no lone surrogates: a Rust `String`
/// cannot hold them, and Python refuses to write them back as UTF-8).
pub fn any_string() -> impl Strategy<Value = String> + Clone {
    vec(any_char(), 0..12).prop_map(String::from_iter)
}

/// Whether a plain object with these keys would be read back as a tagged artifact or deque.
#[must_use]
pub fn looks_tagged(map: &Map) -> bool {
    matches!(
        map.get("__type__").and_then(Value::as_str),
        Some(ARTIFACT_TAG | DEQUE_TAG)
    )
}

/// Makes a plain object stay plain when written and read back: a `__type__` equal to a known
/// tag gets a `?` appended, so it becomes an unknown tag.
#[must_use]
pub fn untag(mut map: Map) -> Map {
    if looks_tagged(&map)
        && let Some(Value::String(tag)) = map.get_mut("__type__")
    {
        tag.push('?');
    }
    map
}

/// A plain object of up to `len` entries with arbitrary keys and values from `values`,
/// never one that the reader would take for a tagged type.
pub fn plain_map(
    values: impl Strategy<Value = Value> + Clone,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = Map> + Clone {
    vec((any_string(), values), len).prop_map(|pairs| untag(pairs.into_iter().collect()))
}

/// An object with an unknown `__type__` first: a near-miss tag, any string or a non-string
/// value; then other entries.
pub fn unknown_tagged_map(
    values: impl Strategy<Value = Value> + Clone,
) -> impl Strategy<Value = Map> + Clone {
    let tag = prop_oneof![
        select(NEAR_MISS_TAGS.to_vec()).prop_map(Value::from),
        any_string().prop_map(Value::from),
        values.clone(),
    ];
    (tag, vec((any_string(), values), 0..3)).prop_map(|(tag, pairs)| {
        let mut map = Map::new();
        map.insert("__type__", tag);
        map.extend(pairs);
        untag(map)
    })
}

/// Extra keys of a tagged object: arbitrary keys but the `reserved` ones.
fn extra_map(
    values: impl Strategy<Value = Value> + Clone,
    reserved: &'static [&'static str],
) -> impl Strategy<Value = Map> + Clone {
    let extras = vec(
        (
            prop_oneof![
                any_string(),
                select(vec!["id", "source", "_version"]).prop_map(str::to_owned)
            ],
            values,
        ),
        0..3,
    );
    prop_oneof![
        // Most artifacts and deques have none.
        2 => Just(Map::new()),
        1 => extras.prop_map(move |pairs| {
            pairs
                .into_iter()
                .filter(|(k, _)| !reserved.contains(&k.as_str()))
                .collect()
        }),
    ]
}

/// The largest `maxlen` Python's `deque` takes (`sys.maxsize`).
pub const MAX_MAXLEN: usize = isize::MAX.unsigned_abs();

/// A deque's bound: unbounded, 0 to 4 (so that items overflow it), or the seed's 1000 and
/// [`MAX_MAXLEN`].
///
/// Bounds beyond [`MAX_MAXLEN`] are left out: Python does not read them back (penin does,
/// see `roundtrip::history_maxlen_beyond_i64_saves_a_state_that_loads`).
pub fn any_maxlen() -> impl Strategy<Value = Option<usize>> + Clone {
    prop_oneof![
        3 => Just(None),
        6 => (0_usize..5).prop_map(Some),
        1 => select(vec![1000, MAX_MAXLEN]).prop_map(Some),
    ]
}

/// An artifact: up to 8 floats of [`any_f64`], metadata of `values`, and (when `extras`)
/// extra keys beyond `__type__`, `vector` and `metadata`.
pub fn artifact_of(
    values: impl Strategy<Value = Value> + Clone + 'static,
    extras: bool,
) -> impl Strategy<Value = NumericVectorArtifact> + Clone {
    let extra = if extras {
        extra_map(values.clone(), &ARTIFACT_KEYS).boxed()
    } else {
        Just(Map::new()).boxed()
    };
    (vec(any_f64(), 0..8), plain_map(values, 0..4), extra).prop_map(|(vector, metadata, extra)| {
        let mut artifact = NumericVectorArtifact::new(vector).with_metadata(metadata);
        *artifact.extra_mut() = extra;
        artifact
    })
}

/// A deque of `items`, built as `deque(items, maxlen)` (so only the last `maxlen` stay),
/// with (when `extras`) extra keys beyond `__type__`, `items` and `maxlen`.
pub fn deque_of<T: Clone + std::fmt::Debug>(
    items: impl Strategy<Value = T> + Clone,
    max_items: usize,
    extra_values: impl Strategy<Value = Value> + Clone + 'static,
    extras: bool,
) -> impl Strategy<Value = Deque<T>> + Clone {
    let extra = if extras {
        extra_map(extra_values, &DEQUE_KEYS).boxed()
    } else {
        Just(Map::new()).boxed()
    };
    (vec(items, 0..max_items), any_maxlen(), extra).prop_map(|(items, maxlen, extra)| {
        let mut deque = Deque::from_items(items, maxlen);
        *deque.extra_mut() = extra;
        deque
    })
}

/// A leaf value: `null`, a boolean, a number or a string.
pub fn leaf_value() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        4 => any_number().prop_map(Value::Number),
        3 => any_string().prop_map(Value::from),
    ]
}

fn value_tree(extras: bool) -> BoxedStrategy<Value> {
    leaf_value()
        .prop_recursive(4, 48, 4, move |inner| {
            prop_oneof![
                2 => vec(inner.clone(), 0..4).prop_map(Value::Array),
                2 => plain_map(inner.clone(), 0..4).prop_map(Value::from),
                1 => unknown_tagged_map(inner.clone()).prop_map(Value::from),
                2 => artifact_of(inner.clone(), extras).prop_map(Value::from),
                2 => deque_of(inner.clone(), 5, inner, extras).prop_map(Value::from),
            ]
        })
        .boxed()
}

/// Any value tree, at most four levels deep: arrays, plain objects with arbitrary keys,
/// objects with unknown `__type__` tags, and artifacts and deques (extra keys included)
/// nested anywhere.
///
/// No plain object's `__type__` equals `NumericVectorArtifact` or `deque`: the reader would
/// take it for the tagged type, so it could not round-trip as the object it is.
pub fn any_value() -> BoxedStrategy<Value> {
    value_tree(true)
}

/// As [`any_value`], but artifacts and deques carry no extra keys, which the Python tool's
/// decoder would drop.
pub fn python_value() -> BoxedStrategy<Value> {
    value_tree(false)
}

/// Any artifact, extra keys included.
pub fn any_artifact() -> impl Strategy<Value = NumericVectorArtifact> + Clone {
    artifact_of(any_value(), true)
}

fn document(values: BoxedStrategy<Value>, extras: bool) -> impl Strategy<Value = Document> {
    let knowledge_base = vec((any_string(), artifact_of(values.clone(), extras)), 0..5)
        .prop_map(|pairs| pairs.into_iter().collect::<KnowledgeBase>());
    let top_extra = vec(
        (
            prop_oneof![
                any_string(),
                select(vec!["__type__", "version", "config", "Knowledge_base"])
                    .prop_map(str::to_owned),
            ],
            values.clone(),
        ),
        0..3,
    )
    .prop_map(|pairs| {
        untag(
            pairs
                .into_iter()
                .filter(|(k, _)| !DOCUMENT_KEYS.contains(&k.as_str()))
                .collect(),
        )
    });
    (
        knowledge_base,
        deque_of(values.clone(), 6, values.clone(), extras),
        deque_of(any_number(), 8, values, extras),
        top_extra,
    )
        .prop_map(
            |(knowledge_base, task_history, score_history, extra)| Document {
                knowledge_base,
                task_history,
                score_history,
                extra,
            },
        )
}

/// Any state: up to 4 artifacts under arbitrary keys, a task history of [`any_value`] and a
/// score history of [`any_number`] (each with its own bound, `None` included, and possibly
/// extra keys), and extra top-level keys other than the seed's three.
///
/// The top level never carries `"__type__": "deque"` or `"NumericVectorArtifact"`: Python's
/// decoder would turn the whole state into that type.
pub fn any_document() -> impl Strategy<Value = Document> {
    document(any_value(), true)
}

/// As [`any_document`], without the extra keys of artifacts and deques, which the Python
/// tool drops: a state that Python loads and dumps unchanged.
pub fn python_document() -> impl Strategy<Value = Document> {
    document(python_value(), false)
}

/// A proptest configuration of `cases` cases that keeps failures in `regressions`, an
/// absolute path (`concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/NAME.txt")`).
///
/// Proptest's default places the file beside the crate's `src`, which for a test binary
/// whose `main.rs` sits at the package root would be outside the package; an explicit
/// path keeps the regressions in `tests/proptest-regressions/`, where they are committed.
#[must_use]
pub fn config(cases: u32, regressions: &'static str) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    }
}

/// Whether two floats have the same bits.
#[must_use]
pub fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

/// Whether two numbers are the same kind and value, floats by their bits.
#[must_use]
pub fn same_number(a: &Number, b: &Number) -> bool {
    match (a, b) {
        (Number::Float(x), Number::Float(y)) => same_f64(*x, *y),
        _ => a == b,
    }
}

/// Whether two values are structurally the same, floats compared by their bits and object
/// keys in order.
#[must_use]
pub fn same_value(a: &Value, b: &Value) -> bool {
    value_difference(a, b, "$").is_none()
}

/// Whether two documents are structurally the same, floats compared by their bits.
#[must_use]
pub fn same_document(a: &Document, b: &Document) -> bool {
    document_difference(a, b).is_none()
}

/// Asserts [`same_value`].
///
/// # Panics
///
/// Unless the values are the same; the message names the path of the first difference.
#[track_caller]
pub fn assert_same_value(actual: &Value, expected: &Value) {
    if let Some(difference) = value_difference(actual, expected, "$") {
        panic!("values differ at {difference}\n actual: {actual:?}\n expected: {expected:?}");
    }
}

/// Asserts [`same_document`].
///
/// # Panics
///
/// Unless the documents are the same; the message names the path of the first difference.
#[track_caller]
pub fn assert_same_document(actual: &Document, expected: &Document) {
    if let Some(difference) = document_difference(actual, expected) {
        panic!("documents differ at {difference}\n actual: {actual:?}\n expected: {expected:?}");
    }
}

/// The path of the first difference between two documents and what differs there, or
/// `None` when they are the same.
#[must_use]
pub fn document_difference(a: &Document, b: &Document) -> Option<String> {
    if a.knowledge_base.len() != b.knowledge_base.len() {
        return Some(format!(
            "knowledge_base: {} artifacts against {}",
            a.knowledge_base.len(),
            b.knowledge_base.len()
        ));
    }
    for ((ka, va), (kb, vb)) in a.knowledge_base.iter().zip(&b.knowledge_base) {
        if ka != kb {
            return Some(format!("knowledge_base: key {ka:?} against {kb:?}"));
        }
        if let Some(d) = artifact_difference(va, vb, &format!("knowledge_base[{ka:?}]")) {
            return Some(d);
        }
    }
    deque_difference(
        &a.task_history,
        &b.task_history,
        "task_history",
        value_difference,
    )
    .or_else(|| {
        deque_difference(
            &a.score_history,
            &b.score_history,
            "score_history",
            |x, y, p| (!same_number(x, y)).then(|| format!("{p}: {x:?} against {y:?}")),
        )
    })
    .or_else(|| map_difference(&a.extra, &b.extra, "extra"))
}

/// The path of the first difference between two values, below `path`.
#[must_use]
pub fn value_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            (!same_number(x, y)).then(|| format!("{path}: {x:?} against {y:?}"))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: {} items against {}", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (x, y))| value_difference(x, y, &format!("{path}[{i}]")))
        }
        (Value::Object(x), Value::Object(y)) => map_difference(x, y, path),
        (Value::Artifact(x), Value::Artifact(y)) => artifact_difference(x, y, path),
        (Value::Deque(x), Value::Deque(y)) => deque_difference(x, y, path, value_difference),
        (Value::Null, Value::Null) => None,
        (Value::Bool(x), Value::Bool(y)) if x == y => None,
        (Value::String(x), Value::String(y)) if x == y => None,
        _ => Some(format!("{path}: {a:?} against {b:?}")),
    }
}

fn map_difference(a: &Map, b: &Map, path: &str) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{path}: {} keys against {}", a.len(), b.len()));
    }
    a.iter().zip(b).find_map(|((ka, va), (kb, vb))| {
        if ka == kb {
            value_difference(va, vb, &format!("{path}[{ka:?}]"))
        } else {
            Some(format!("{path}: key {ka:?} against {kb:?}"))
        }
    })
}

fn artifact_difference(
    a: &NumericVectorArtifact,
    b: &NumericVectorArtifact,
    path: &str,
) -> Option<String> {
    if a.vector.len() != b.vector.len() {
        return Some(format!(
            "{path}.vector: {} floats against {}",
            a.vector.len(),
            b.vector.len()
        ));
    }
    a.vector
        .iter()
        .zip(&b.vector)
        .enumerate()
        .find_map(|(i, (&x, &y))| {
            (!same_f64(x, y)).then(|| format!("{path}.vector[{i}]: {x:?} against {y:?}"))
        })
        .or_else(|| map_difference(&a.metadata, &b.metadata, &format!("{path}.metadata")))
        .or_else(|| map_difference(a.extra(), b.extra(), &format!("{path}.<extra>")))
}

fn deque_difference<T>(
    a: &Deque<T>,
    b: &Deque<T>,
    path: &str,
    item: impl Fn(&T, &T, &str) -> Option<String>,
) -> Option<String> {
    if a.maxlen() != b.maxlen() {
        return Some(format!(
            "{path}.maxlen: {:?} against {:?}",
            a.maxlen(),
            b.maxlen()
        ));
    }
    if a.len() != b.len() {
        return Some(format!("{path}.items: {} against {}", a.len(), b.len()));
    }
    a.iter()
        .zip(b)
        .enumerate()
        .find_map(|(i, (x, y))| item(x, y, &format!("{path}.items[{i}]")))
        .or_else(|| map_difference(a.extra(), b.extra(), &format!("{path}.<extra>")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn floats_compare_by_bits() {
        assert!(same_f64(f64::NAN, f64::NAN));
        assert!(!same_f64(0.0, -0.0));
        assert!(!same_number(&Number::Int(1), &Number::Float(1.0)));
        let a = Value::Array(vec![Value::from(-0.0)]);
        let b = Value::Array(vec![Value::from(0.0)]);
        assert_eq!(
            value_difference(&a, &b, "$").as_deref(),
            Some("$[0]: Float(-0.0) against Float(0.0)")
        );
        assert!(same_value(&a, &a.clone()));
    }

    #[test]
    fn maps_compare_in_order() {
        let ab: Map = [("a", 1_i64), ("b", 2)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
        let ba: Map = ab
            .iter()
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert!(!same_value(&Value::from(ab.clone()), &Value::from(ba)));
        assert!(same_value(&Value::from(ab.clone()), &Value::from(ab)));
    }

    #[test]
    fn untag_keeps_plain_objects_plain() {
        for tag in [ARTIFACT_TAG, DEQUE_TAG] {
            let mut map = Map::new();
            map.insert("__type__", Value::from(tag));
            let map = untag(map);
            assert!(!looks_tagged(&map));
            assert_eq!(map["__type__"], Value::from(format!("{tag}?")));
        }
    }

    /// The generators reach the corners they promise, so a passing property means something.
    #[test]
    fn strategies_reach_the_corners() {
        let mut runner = TestRunner::deterministic();
        let floats: Vec<f64> = (0..2000)
            .map(|_| any_f64().new_tree(&mut runner).unwrap().current())
            .collect();
        assert!(floats.iter().any(|f| f.is_nan()));
        assert!(floats.iter().all(|f| !f.is_nan() || same_f64(*f, f64::NAN)));
        assert!(floats.iter().any(|f| same_f64(*f, -0.0)));
        assert!(floats.iter().any(|f| f.is_subnormal()));
        assert!(floats.iter().any(|f| f.is_infinite()));

        let numbers: Vec<Number> = (0..500)
            .map(|_| any_number().new_tree(&mut runner).unwrap().current())
            .collect();
        assert!(
            numbers
                .iter()
                .any(|n| matches!(n, Number::Big(b) if b.as_str().len() > 40))
        );

        let strings: String = (0..500)
            .map(|_| any_string().new_tree(&mut runner).unwrap().current())
            .collect();
        for c in ['"', '\\', '\u{7f}', '\u{2028}', '\0'] {
            assert!(strings.contains(c), "{c:?}");
        }
        assert!(strings.chars().any(|c| u32::from(c) > 0xFFFF));

        let (mut artifacts, mut deques, mut unknown, mut bounded) = (0, 0, 0, 0);
        for _ in 0..300 {
            let doc = any_document().new_tree(&mut runner).unwrap().current();
            let text = String::from_utf8(penin_codec::to_vec(&doc)).unwrap();
            artifacts += text.matches("\"NumericVectorArtifact\"").count();
            deques += text.matches("\"deque\"").count();
            unknown += usize::from(
                doc.task_history
                    .iter()
                    .any(|v| matches!(v, Value::Object(m) if m.contains_key("__type__"))),
            );
            bounded += usize::from(doc.task_history.maxlen().is_some());
        }
        assert!(artifacts > 600 && deques > 900, "{artifacts} {deques}");
        assert!(unknown > 5 && bounded > 100, "{unknown} {bounded}");
    }
}

/// Bytes in memory read as a file is read: a window at a time, in reads of at most
/// `max_read` bytes each (short reads, as a pipe or a network file system gives them).
#[derive(Clone, Copy, Debug)]
pub struct Windowed<'a> {
    /// The input.
    pub bytes: &'a [u8],
    /// The most a read returns.
    pub max_read: usize,
}

impl Source for Windowed<'_> {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let n = buf.len().min(self.max_read.max(1));
        self.bytes.read_at(&mut buf[..n], offset)
    }
}

/// What a read gave, comparable across readers: the state as written (NaN is not equal to
/// itself, its text is), or the error with every field (kind, message, line, column, path).
pub fn outcome<T: penin_codec::Encode>(read: penin_codec::Result<T>) -> Result<String, String> {
    read.map(|value| String::from_utf8_lossy(&penin_codec::to_vec(&value)).into_owned())
        .map_err(|e| format!("{e:?}"))
}
