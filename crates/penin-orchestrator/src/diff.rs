//! What differs between two states: the knowledge base key by key, the task and score
//! histories, and the other top-level keys.
//!
//! Everything is compared bit for bit, as the state files hold it: two floats are the same
//! when their bits are (`NaN` equals a `NaN` of the same bits; `-0.0` and `0.0` differ),
//! `1` and `1.0` differ (an integer and a float, as Python keeps them), and two objects are
//! the same when they hold the same keys in the same order with the same values. The order
//! of the knowledge base counts too ([`Diff::order_changed`]).
//!
//! ```
//! use penin_orchestrator::diff::{self, Edit};
//! use penin_orchestrator::{NumericVectorArtifact, Orchestrator};
//!
//! let mut a = Orchestrator::new();
//! a.add_knowledge("moved", NumericVectorArtifact::new(vec![0.0, 0.0]));
//! a.add_knowledge("gone", NumericVectorArtifact::new(vec![5.0]));
//! a.add_score(0.5);
//! assert!(diff::diff(&a, &a.clone()).is_empty());
//!
//! let mut b = Orchestrator::new();
//! b.add_knowledge("moved", NumericVectorArtifact::new(vec![3.0, -4.0]));
//! b.add_knowledge("new", NumericVectorArtifact::new(vec![1.0]));
//! for score in [0.5, 0.75, 0.25] {
//!     b.add_score(score);
//! }
//!
//! let d = diff::diff(&a, &b);
//! assert!(!d.is_empty());
//! assert_eq!((d.added.as_slice(), d.removed.as_slice()), (&["new".to_owned()][..], &["gone".to_owned()][..]));
//! let largest = d.largest_vector_change().unwrap();
//! assert_eq!(largest.key, "moved");
//! let change = largest.values().unwrap();
//! assert_eq!((change.max_abs, change.max_index, change.l2), (4.0, 1, 5.0));
//! // The score history grew: two scores appended.
//! assert_eq!(d.scores.edit(), Edit::Shifted { dropped: 0, appended: 2 });
//! assert!(d.tasks.is_same());
//! ```

use std::cmp::Ordering;

use penin_artifacts::{Deque, Key, Map, Number, NumericVectorArtifact, Value};

use crate::orchestrator::Orchestrator;

/// What differs from a state `a` to a state `b` (see the [module documentation](self) for
/// what counts as the same).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Diff {
    /// Keys `b` has and `a` has not, in `b`'s order.
    pub added: Vec<String>,
    /// Keys `a` has and `b` has not, in `a`'s order.
    pub removed: Vec<String>,
    /// Keys both have whose artifacts differ, in `a`'s order.
    pub changed: Vec<KeyChange>,
    /// Whether the keys both have come in another order in `b`.
    pub order_changed: bool,
    /// The task histories.
    pub tasks: HistoryDiff,
    /// The score histories.
    pub scores: HistoryDiff,
    /// The top-level keys beyond the seed's three.
    pub extra: MapDiff,
}

/// How the artifact of one key differs.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct KeyChange {
    /// The key.
    pub key: String,
    /// How the vector differs, if it does.
    pub vector: Option<VectorChange>,
    /// How the metadata differs, if it does.
    pub metadata: Option<MapDiff>,
    /// How the artifact's other keys (beyond `vector` and `metadata`) differ, if they do.
    pub artifact_extra: Option<MapDiff>,
}

/// How a vector differs.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum VectorChange {
    /// Its dimension: no component is compared.
    Dimension {
        /// In `a`.
        from: usize,
        /// In `b`.
        to: usize,
    },
    /// Some of its components, the dimension being the same.
    Values(ValuesChange),
}

/// How the components of two vectors of one dimension differ.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ValuesChange {
    /// How many components differ (in their bits).
    pub components: usize,
    /// The largest `|b[i] - a[i]|`: `0.0` when only the sign of a zero or a `NaN`'s bits
    /// changed, `NaN` when a component is `NaN` on one side only (a `NaN` counts as the
    /// largest change).
    pub max_abs: f64,
    /// The index of that component (the first one, among equal changes).
    pub max_index: usize,
    /// The Euclidean distance between the two vectors: `sqrt(sum((b[i] - a[i])^2))`.
    pub l2: f64,
}

/// How two objects differ: keys added, removed, changed, or the same keys in another order.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct MapDiff {
    /// Keys `b` has and `a` has not, in `b`'s order.
    pub added: Vec<Key>,
    /// Keys `a` has and `b` has not, in `a`'s order.
    pub removed: Vec<Key>,
    /// Keys both have with values that differ, in `a`'s order.
    pub changed: Vec<Key>,
    /// Whether the keys both have come in another order in `b`.
    pub order_changed: bool,
}

/// How two histories (deques) differ, in the terms that describe a history's usual edits:
/// entries appended at the end, and the oldest dropped from the front past the bound.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryDiff {
    /// The number of entries in `a`.
    pub len_a: usize,
    /// The number of entries in `b`.
    pub len_b: usize,
    /// The bound of `a` (`None`: unbounded).
    pub maxlen_a: Option<usize>,
    /// The bound of `b`.
    pub maxlen_b: Option<usize>,
    /// How many entries, from the oldest, are the same in both.
    pub common_prefix: usize,
    /// How many entries, from the newest, are the same in both (not counting the common
    /// prefix: `common_prefix + common_suffix <= min(len_a, len_b)`).
    pub common_suffix: usize,
    /// The longest run of `a`'s newest entries that are `b`'s oldest: `b` is `a` with
    /// `len_a - overlap` entries dropped from the front and `len_b - overlap` appended.
    pub overlap: usize,
    /// Whether the deques' other keys (beyond `items` and `maxlen`) differ.
    pub extra_changed: bool,
}

/// The simplest account of how a history went from `a` to `b` (see [`HistoryDiff::edit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Edit {
    /// The same entries.
    Same,
    /// `dropped` of `a`'s oldest entries are gone and `appended` new ones follow the rest:
    /// a history that grew (`dropped == 0`), or that grew past its bound.
    Shifted {
        /// Entries dropped from the front.
        dropped: usize,
        /// Entries appended at the end.
        appended: usize,
    },
    /// The first `prefix` and last `suffix` entries are the same; `removed` entries of `a`
    /// between them became `inserted` entries of `b`.
    Replaced {
        /// Entries the same from the front.
        prefix: usize,
        /// Entries the same from the end.
        suffix: usize,
        /// Entries of `a` in between.
        removed: usize,
        /// Entries of `b` in between.
        inserted: usize,
    },
}

/// What differs from `a` to `b`.
pub fn diff(a: &Orchestrator, b: &Orchestrator) -> Diff {
    let (ka, kb) = (a.knowledge_base(), b.knowledge_base());
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    // `b`'s index of each key both have, in `a`'s order: increasing unless the order changed.
    let mut last_index = None;
    let mut order_changed = false;
    for (key, artifact_a) in ka {
        let Some((index, _, artifact_b)) = kb.get_full(key.as_str()) else {
            removed.push(key.clone());
            continue;
        };
        if last_index.is_some_and(|last| index < last) {
            order_changed = true;
        }
        last_index = Some(index);
        if let Some(change) = artifact_change(key, artifact_a, artifact_b) {
            changed.push(change);
        }
    }
    let added = kb
        .keys()
        .filter(|key| !ka.contains_key(key.as_str()))
        .cloned()
        .collect();
    Diff {
        added,
        removed,
        changed,
        order_changed,
        tasks: history_diff(a.task_history(), b.task_history(), same_value),
        scores: history_diff(a.score_history(), b.score_history(), same_number),
        extra: map_diff(a.extra(), b.extra()),
    }
}

impl Diff {
    /// Whether the two states are the same.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && !self.order_changed
            && self.tasks.is_same()
            && self.scores.is_same()
            && self.extra.is_empty()
    }

    /// The changed key whose vector moved the furthest (by [`ValuesChange::l2`]; a `NaN`
    /// distance counts as the furthest; the first such key among equals). Keys whose
    /// dimension changed are not compared.
    pub fn largest_vector_change(&self) -> Option<&KeyChange> {
        let mut best: Option<(&KeyChange, f64)> = None;
        for change in &self.changed {
            let Some(values) = change.values() else {
                continue;
            };
            if best.is_none_or(|(_, l2)| further(values.l2, l2) == Ordering::Greater) {
                best = Some((change, values.l2));
            }
        }
        best.map(|(change, _)| change)
    }
}

impl KeyChange {
    /// The change of the vector's components, when its dimension stayed.
    pub fn values(&self) -> Option<&ValuesChange> {
        match &self.vector {
            Some(VectorChange::Values(values)) => Some(values),
            _ => None,
        }
    }
}

impl MapDiff {
    /// Whether the two objects are the same.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && !self.order_changed
    }
}

impl HistoryDiff {
    /// Whether the two histories are the same: entries, bound and other keys.
    pub fn is_same(&self) -> bool {
        self.entries_same() && self.maxlen_a == self.maxlen_b && !self.extra_changed
    }

    /// Whether the entries are the same (whatever the bounds).
    pub fn entries_same(&self) -> bool {
        self.len_a == self.len_b && self.common_prefix == self.len_a
    }

    /// The simplest account of the entries' change: [`Edit::Shifted`] when it touches no
    /// more entries than [`Edit::Replaced`] would (so that a history that grew reads as
    /// entries appended), else [`Edit::Replaced`].
    pub fn edit(&self) -> Edit {
        if self.entries_same() {
            return Edit::Same;
        }
        let dropped = self.len_a - self.overlap;
        let appended = self.len_b - self.overlap;
        let removed = self.len_a - self.common_prefix - self.common_suffix;
        let inserted = self.len_b - self.common_prefix - self.common_suffix;
        if dropped + appended <= removed + inserted {
            Edit::Shifted { dropped, appended }
        } else {
            Edit::Replaced {
                prefix: self.common_prefix,
                suffix: self.common_suffix,
                removed,
                inserted,
            }
        }
    }
}

/// Whether two values are the same, bit for bit (see the [module documentation](self)).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => same_map(x, y),
        (Value::Artifact(x), Value::Artifact(y)) => same_artifact(x, y),
        (Value::Deque(x), Value::Deque(y)) => {
            x.maxlen() == y.maxlen()
                && x.len() == y.len()
                && x.iter().zip(y.iter()).all(|(x, y)| same_value(x, y))
                && same_map(x.extra(), y.extra())
        }
        _ => false,
    }
}

/// Whether two numbers are the same: integers by value, floats by their bits, an integer
/// never the same as a float.
pub fn same_number(a: &Number, b: &Number) -> bool {
    match (a, b) {
        (Number::Float(x), Number::Float(y)) => x.to_bits() == y.to_bits(),
        (Number::Int(x), Number::Int(y)) => x == y,
        (Number::Big(x), Number::Big(y)) => x == y,
        _ => false,
    }
}

/// Whether two floats slices are the same, bit for bit.
fn same_floats(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The same keys in the same order with the same values.
fn same_map(a: &Map, b: &Map) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
}

fn same_artifact(a: &NumericVectorArtifact, b: &NumericVectorArtifact) -> bool {
    same_floats(&a.vector, &b.vector)
        && same_map(&a.metadata, &b.metadata)
        && same_map(a.extra(), b.extra())
}

/// How the artifact of `key` changed, if it did.
fn artifact_change(
    key: &str,
    a: &NumericVectorArtifact,
    b: &NumericVectorArtifact,
) -> Option<KeyChange> {
    let vector = vector_change(&a.vector, &b.vector);
    let metadata = Some(map_diff(&a.metadata, &b.metadata)).filter(|d| !d.is_empty());
    let artifact_extra = Some(map_diff(a.extra(), b.extra())).filter(|d| !d.is_empty());
    (vector.is_some() || metadata.is_some() || artifact_extra.is_some()).then(|| KeyChange {
        key: key.to_owned(),
        vector,
        metadata,
        artifact_extra,
    })
}

/// How vector `a` became `b`, if it changed.
pub fn vector_change(a: &[f64], b: &[f64]) -> Option<VectorChange> {
    if a.len() != b.len() {
        return Some(VectorChange::Dimension {
            from: a.len(),
            to: b.len(),
        });
    }
    let mut components = 0;
    let mut max_abs = 0.0_f64;
    let mut max_index = 0;
    let mut squares = 0.0_f64;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x.to_bits() == y.to_bits() {
            continue;
        }
        let delta = (y - x).abs();
        // Same bits or not, two NaNs are no distance apart: only the bits changed.
        let delta = if x.is_nan() && y.is_nan() { 0.0 } else { delta };
        if components == 0 || further(delta, max_abs) == Ordering::Greater {
            max_abs = delta;
            max_index = i;
        }
        components += 1;
        squares += delta * delta;
    }
    (components > 0).then(|| {
        VectorChange::Values(ValuesChange {
            components,
            max_abs,
            max_index,
            l2: squares.sqrt(),
        })
    })
}

/// Orders two non-negative distances, a `NaN` above every number.
fn further(x: f64, y: f64) -> Ordering {
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => x.total_cmp(&y),
    }
}

/// How object `a` became `b`.
pub fn map_diff(a: &Map, b: &Map) -> MapDiff {
    let mut diff = MapDiff::default();
    let mut last_index = None;
    for (key, va) in a {
        let Some(index) = b.get_index_of(key) else {
            diff.removed.push(key.clone());
            continue;
        };
        if last_index.is_some_and(|last| index < last) {
            diff.order_changed = true;
        }
        last_index = Some(index);
        // The index was just found, so the entry is there.
        if let Some((_, vb)) = b.get_index(index)
            && !same_value(va, vb)
        {
            diff.changed.push(key.clone());
        }
    }
    diff.added = b
        .keys()
        .filter(|key| !a.contains_key(key))
        .cloned()
        .collect();
    diff
}

/// How history `a` became `b`, entries compared with `same`.
fn history_diff<T>(a: &Deque<T>, b: &Deque<T>, same: fn(&T, &T) -> bool) -> HistoryDiff {
    let (len_a, len_b) = (a.len(), b.len());
    let common_prefix = a
        .iter()
        .zip(b.iter())
        .take_while(|(x, y)| same(x, y))
        .count();
    let room = len_a.min(len_b) - common_prefix;
    let common_suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| same(x, y))
        .count();
    let items_a: Vec<&T> = a.iter().collect();
    let items_b: Vec<&T> = b.iter().collect();
    HistoryDiff {
        len_a,
        len_b,
        maxlen_a: a.maxlen(),
        maxlen_b: b.maxlen(),
        common_prefix,
        common_suffix,
        overlap: suffix_prefix_overlap(&items_a, &items_b, same),
        extra_changed: !same_map(a.extra(), b.extra()),
    }
}

/// The length of the longest suffix of `a` that is a prefix of `b`, in `O(len(a) + len(b))`
/// comparisons (Knuth–Morris–Pratt: `b` is the pattern, `a` the text).
fn suffix_prefix_overlap<T>(a: &[&T], b: &[&T], same: fn(&T, &T) -> bool) -> usize {
    if b.is_empty() {
        return 0;
    }
    // border[i]: the length of the longest proper prefix of b[..=i] that is also its suffix.
    let mut border = vec![0; b.len()];
    let mut k = 0;
    for i in 1..b.len() {
        while k > 0 && !same(b[i], b[k]) {
            k = border[k - 1];
        }
        if same(b[i], b[k]) {
            k += 1;
        }
        border[i] = k;
    }
    // The matched length of b after each entry of a; a whole match falls back to its
    // border before the next entry, so that it can stand at the end.
    let mut q = 0;
    for x in a {
        if q == b.len() {
            q = border[q - 1];
        }
        while q > 0 && !same(x, b[q]) {
            q = border[q - 1];
        }
        if same(x, b[q]) {
            q += 1;
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(keys: &[(&str, &[f64])]) -> Orchestrator {
        let mut state = Orchestrator::new();
        for (key, vector) in keys {
            state.add_knowledge(*key, NumericVectorArtifact::new(vector.to_vec()));
        }
        state
    }

    fn scores(items: &[f64], maxlen: Option<usize>) -> Deque<Number> {
        Deque::from_items(items.iter().map(|&x| Number::Float(x)), maxlen)
    }

    fn history(a: &[f64], b: &[f64]) -> HistoryDiff {
        history_diff(&scores(a, Some(1000)), &scores(b, Some(1000)), same_number)
    }

    #[test]
    fn equal_states_have_no_difference() {
        let mut a = state(&[("x", &[1.0, f64::NAN, -0.0]), ("y", &[])]);
        a.add_task(Value::from("t"));
        a.add_score(0.5);
        let d = diff(&a, &a.clone());
        assert!(d.is_empty(), "{d:?}");
        assert!(d.largest_vector_change().is_none());
    }

    #[test]
    fn keys_added_removed_and_changed() {
        let a = state(&[("a", &[1.0]), ("b", &[1.0, 2.0]), ("c", &[0.0])]);
        let b = state(&[("d", &[1.0]), ("b", &[1.0, 2.5]), ("c", &[0.0, 0.0])]);
        let d = diff(&a, &b);
        assert_eq!(d.added, ["d"]);
        assert_eq!(d.removed, ["a"]);
        let keys: Vec<&str> = d.changed.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!(
            d.changed[1].vector,
            Some(VectorChange::Dimension { from: 1, to: 2 })
        );
        assert_eq!(
            d.changed[0].vector,
            Some(VectorChange::Values(ValuesChange {
                components: 1,
                max_abs: 0.5,
                max_index: 1,
                l2: 0.5
            }))
        );
        assert!(!d.order_changed);
        assert!(!d.is_empty());
    }

    #[test]
    fn floats_compare_bit_for_bit() {
        let nan = f64::NAN;
        let other_nan = f64::from_bits(nan.to_bits() | 1);
        assert!(vector_change(&[nan, 1.0], &[nan, 1.0]).is_none());
        assert_eq!(
            vector_change(&[0.0], &[-0.0]),
            Some(VectorChange::Values(ValuesChange {
                components: 1,
                max_abs: 0.0,
                max_index: 0,
                l2: 0.0
            }))
        );
        let Some(VectorChange::Values(payload)) = vector_change(&[nan], &[other_nan]) else {
            panic!("NaN payloads differ");
        };
        assert_eq!((payload.components, payload.max_abs), (1, 0.0));
        // A NaN on one side is the largest change of all.
        let Some(VectorChange::Values(one_side)) =
            vector_change(&[1.0, 0.0, 2.0], &[1e300, nan, 2.0])
        else {
            panic!("a NaN appeared");
        };
        assert_eq!((one_side.components, one_side.max_index), (2, 1));
        assert!(one_side.max_abs.is_nan() && one_side.l2.is_nan());

        assert!(same_number(&Number::Float(nan), &Number::Float(nan)));
        assert!(!same_number(&Number::Float(0.0), &Number::Float(-0.0)));
        assert!(!same_number(&Number::Int(1), &Number::Float(1.0)));
    }

    #[test]
    fn the_largest_change_is_the_furthest_by_l2() {
        let a = state(&[
            ("small", &[0.0, 0.0]),
            ("big", &[0.0, 0.0]),
            ("dim", &[0.0]),
        ]);
        let b = state(&[
            ("small", &[0.1, 0.0]),
            ("big", &[3.0, 4.0]),
            ("dim", &[9.0, 9.0]),
        ]);
        let d = diff(&a, &b);
        assert_eq!(d.largest_vector_change().unwrap().key, "big");
        assert_eq!(d.largest_vector_change().unwrap().values().unwrap().l2, 5.0);
        let c = state(&[
            ("small", &[0.1, 0.0]),
            ("big", &[f64::NAN, 0.0]),
            ("dim", &[0.0]),
        ]);
        assert_eq!(diff(&a, &c).largest_vector_change().unwrap().key, "big");
    }

    #[test]
    fn metadata_changes_alone() {
        let a = state(&[("k", &[1.0])]);
        let mut b = a.clone();
        let mut metadata = Map::new();
        metadata.insert("source", Value::from("x"));
        b.add_knowledge(
            "k",
            NumericVectorArtifact::new(vec![1.0]).with_metadata(metadata),
        );
        let d = diff(&a, &b);
        assert_eq!(d.changed.len(), 1);
        assert!(d.changed[0].vector.is_none());
        let metadata = d.changed[0].metadata.as_ref().unwrap();
        assert_eq!(metadata.added, ["source"]);
        assert!(d.largest_vector_change().is_none());
    }

    #[test]
    fn maps_compare_keys_values_and_order() {
        let map = |pairs: &[(&str, Value)]| -> Map {
            pairs.iter().map(|(k, v)| (*k, v.clone())).collect()
        };
        let a = map(&[
            ("x", Value::from(1_i64)),
            ("y", Value::from(0.0)),
            ("z", Value::Null),
        ]);
        let b = map(&[
            ("y", Value::from(-0.0)),
            ("x", Value::from(1_i64)),
            ("w", Value::Null),
        ]);
        let d = map_diff(&a, &b);
        assert_eq!(d.added, ["w"]);
        assert_eq!(d.removed, ["z"]);
        assert_eq!(d.changed, ["y"]);
        assert!(d.order_changed);
        assert!(map_diff(&a, &a).is_empty());
        // Nested values, integers against floats.
        let nested = |x: Value| Value::Array(vec![Value::from(map(&[("n", x)]))]);
        assert!(same_value(
            &nested(Value::from(1_i64)),
            &nested(Value::from(1_i64))
        ));
        assert!(!same_value(
            &nested(Value::from(1_i64)),
            &nested(Value::from(1.0))
        ));
        assert!(!same_value(
            &nested(Value::from(0.0)),
            &nested(Value::from(-0.0))
        ));
    }

    #[test]
    fn knowledge_base_order_counts() {
        let a = state(&[("a", &[1.0]), ("b", &[2.0])]);
        let b = state(&[("b", &[2.0]), ("a", &[1.0])]);
        let d = diff(&a, &b);
        assert!(d.order_changed && d.changed.is_empty() && d.added.is_empty());
        assert!(!d.is_empty());
    }

    #[test]
    fn histories_read_as_appends_and_shifts() {
        // (a, b, the edit)
        let rows: &[(&[f64], &[f64], Edit)] = &[
            (&[1.0, 2.0], &[1.0, 2.0], Edit::Same),
            (
                &[],
                &[1.0],
                Edit::Shifted {
                    dropped: 0,
                    appended: 1,
                },
            ),
            (
                &[1.0, 2.0],
                &[1.0, 2.0, 3.0, 4.0, 5.0],
                Edit::Shifted {
                    dropped: 0,
                    appended: 3,
                },
            ),
            // A bounded history that went past its bound.
            (
                &[1.0, 2.0, 3.0],
                &[2.0, 3.0, 4.0],
                Edit::Shifted {
                    dropped: 1,
                    appended: 1,
                },
            ),
            (
                &[1.0, 2.0, 3.0],
                &[3.0],
                Edit::Shifted {
                    dropped: 2,
                    appended: 0,
                },
            ),
            (
                &[1.0, 2.0],
                &[],
                Edit::Shifted {
                    dropped: 2,
                    appended: 0,
                },
            ),
            (
                &[1.0, 2.0, 3.0, 4.0],
                &[1.0, 9.0, 3.0, 4.0],
                Edit::Replaced {
                    prefix: 1,
                    suffix: 2,
                    removed: 1,
                    inserted: 1,
                },
            ),
            (
                &[1.0, 2.0, 3.0],
                &[1.0, 2.0],
                Edit::Replaced {
                    prefix: 2,
                    suffix: 0,
                    removed: 1,
                    inserted: 0,
                },
            ),
            // Repeated entries: the overlap is the longest one.
            (
                &[5.0, 5.0, 5.0],
                &[5.0, 5.0, 5.0, 5.0],
                Edit::Shifted {
                    dropped: 0,
                    appended: 1,
                },
            ),
            (
                &[1.0, 2.0, 1.0, 2.0],
                &[1.0, 2.0, 1.0, 2.0, 7.0],
                Edit::Shifted {
                    dropped: 0,
                    appended: 1,
                },
            ),
            (
                &[0.0],
                &[-0.0],
                Edit::Shifted {
                    dropped: 1,
                    appended: 1,
                },
            ),
        ];
        for (a, b, edit) in rows {
            assert_eq!(history(a, b).edit(), *edit, "{a:?} -> {b:?}");
        }
        let h = history(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]);
        assert!(h.is_same());
        let bound = history_diff(
            &scores(&[1.0], Some(5)),
            &scores(&[1.0], Some(6)),
            same_number,
        );
        assert!(bound.entries_same() && !bound.is_same());
    }

    #[test]
    fn overlap_is_the_longest_suffix_that_is_a_prefix() {
        let rows: &[(&[i64], &[i64], usize)] = &[
            (&[], &[], 0),
            (&[1], &[], 0),
            (&[], &[1], 0),
            (&[1, 2, 3], &[2, 3, 4], 2),
            (&[1, 2, 3], &[1, 2, 3], 3),
            (&[1, 2, 1, 2], &[1, 2, 1, 2, 1], 4),
            (&[3, 1, 2, 1, 2], &[1, 2, 1, 2], 4),
            (&[1, 2, 1, 1], &[1, 1, 2], 2),
            (&[1, 2, 3], &[4], 0),
            (&[7, 7, 7, 7], &[7, 7], 2),
        ];
        for (a, b, expected) in rows {
            let a: Vec<Number> = a.iter().map(|&n| Number::Int(n)).collect();
            let b: Vec<Number> = b.iter().map(|&n| Number::Int(n)).collect();
            let ra: Vec<&Number> = a.iter().collect();
            let rb: Vec<&Number> = b.iter().collect();
            assert_eq!(
                suffix_prefix_overlap(&ra, &rb, same_number),
                *expected,
                "{a:?} {b:?}"
            );
            // Against the obvious quadratic search.
            let naive = (0..=ra.len().min(rb.len()))
                .rev()
                .find(|&n| {
                    ra[ra.len() - n..]
                        .iter()
                        .zip(&rb[..n])
                        .all(|(x, y)| same_number(x, y))
                })
                .unwrap_or(0);
            assert_eq!(naive, *expected, "{a:?} {b:?}");
        }
    }

    #[test]
    fn extra_top_level_keys() {
        let a = Orchestrator::new();
        let mut document = a.document().clone();
        document.extra.insert("version", Value::from(2_i64));
        let b = Orchestrator::from(document);
        let d = diff(&a, &b);
        assert_eq!(d.extra.added, ["version"]);
        assert!(!d.is_empty());
    }
}
