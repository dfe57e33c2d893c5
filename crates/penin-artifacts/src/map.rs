//! An insertion-ordered JSON object with Python `dict` semantics, small where objects are small.
//!
//! State files hold millions of small objects (task records, their parameters, metadata) and
//! a few large ones. A general hash map pays for each small one with a hash table, a hash
//! per entry and a heap allocation per key. [`Map`] keeps its entries in one vector, in
//! insertion order, with keys of up to 24 bytes stored inline ([`Key`]); a lookup in a map
//! of at most eight entries compares the keys in turn, and a larger map adds a hash
//! index (`SipHash` with a random key, as `std::collections::HashMap`, so a crafted file cannot
//! make its lookups quadratic).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::value::{Text, Value};

/// A key of a [`Map`]: a [`Text`], which holds up to 24 bytes inline.
pub type Key = Text;

/// Maps with more entries than this have a hash index; smaller ones are searched in turn.
pub(crate) const LINEAR_MAX: usize = 8;

/// An insertion-ordered JSON object. Inserting an existing key keeps its place and replaces
/// its value, as a Python `dict` does; removing a key shifts the later ones down.
///
/// ```
/// use penin_artifacts::{Map, Value};
///
/// let mut map = Map::new();
/// map.insert("b", Value::from(1_i64));
/// map.insert("a", Value::from(2_i64));
/// map.insert("b", Value::from(3_i64));
/// let keys: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
/// assert_eq!(keys, ["b", "a"]);
/// assert_eq!(map["b"], Value::from(3_i64));
/// assert_eq!(map.shift_remove("b"), Some(Value::from(3_i64)));
/// assert_eq!(map.len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct Map {
    entries: Vec<(Key, Value)>,
    /// Positions in `entries` by key hash, once the map has more than `LINEAR_MAX` entries.
    index: Option<Box<Index>>,
}

#[derive(Clone)]
struct Index {
    table: HashTable<usize>,
    hasher: RandomState,
}

impl Index {
    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// An index of `entries`, with room for `capacity` of them.
    fn of(entries: &[(Key, Value)], capacity: usize) -> Index {
        let mut index = Index {
            table: HashTable::with_capacity(capacity),
            hasher: RandomState::new(),
        };
        for (i, (key, _)) in entries.iter().enumerate() {
            let hash = index.hash(key);
            let hasher = &index.hasher;
            index
                .table
                .insert_unique(hash, i, |&j| hasher.hash_one(entries[j].0.as_str()));
        }
        index
    }
}

impl Map {
    /// An empty map.
    #[must_use]
    pub const fn new() -> Self {
        Map {
            entries: Vec::new(),
            index: None,
        }
    }

    /// An empty map with room for `capacity` entries.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Map {
            entries: Vec::with_capacity(capacity),
            index: (capacity > LINEAR_MAX).then(|| Box::new(Index::of(&[], capacity))),
        }
    }

    /// The number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The position of `key`, if the map has it.
    #[must_use]
    pub fn get_index_of(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index
                .table
                .find(index.hash(key), |&i| self.entries[i].0 == key)
                .copied(),
            None => self.entries.iter().position(|(k, _)| k == key),
        }
    }

    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.get_index_of(key).map(|i| &self.entries[i].1)
    }

    /// The value of `key`, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.get_index_of(key).map(|i| &mut self.entries[i].1)
    }

    /// Whether the map has `key`.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.get_index_of(key).is_some()
    }

    /// The entry at position `i`.
    #[must_use]
    pub fn get_index(&self, i: usize) -> Option<(&Key, &Value)> {
        self.entries.get(i).map(|(k, v)| (k, v))
    }

    /// Sets `key` to `value`. A new key goes last; an existing one keeps its place, and its
    /// old value is returned.
    pub fn insert(&mut self, key: impl Into<Key>, value: Value) -> Option<Value> {
        let key = key.into();
        if let Some(i) = self.get_index_of(&key) {
            return Some(std::mem::replace(&mut self.entries[i].1, value));
        }
        let i = self.entries.len();
        match &mut self.index {
            Some(index) => {
                let hash = index.hash(&key);
                let (entries, hasher) = (&self.entries, &index.hasher);
                index
                    .table
                    .insert_unique(hash, i, |&j| hasher.hash_one(entries[j].0.as_str()));
            }
            None if i >= LINEAR_MAX => {
                self.entries.push((key, value));
                self.index = Some(Box::new(Index::of(&self.entries, self.entries.capacity())));
                return None;
            }
            None => {}
        }
        self.entries.push((key, value));
        None
    }

    /// Removes `key` and returns its value; the entries after it move down one place.
    pub fn shift_remove(&mut self, key: &str) -> Option<Value> {
        let i = self.get_index_of(key)?;
        let (_, value) = self.entries.remove(i);
        self.reindex();
        Some(value)
    }

    /// Keeps only the entries for which `keep` says so, in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Key, &mut Value) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
        self.reindex();
    }

    /// Rebuilds the index after entries moved.
    fn reindex(&mut self) {
        if self.index.is_some() {
            self.index = (self.entries.len() > LINEAR_MAX)
                .then(|| Box::new(Index::of(&self.entries, self.entries.len())));
        }
    }

    /// The entries, in order.
    pub fn iter(&self) -> MapIter<'_> {
        MapIter(self.entries.iter())
    }

    /// The entries, in order, with their values to change.
    pub fn iter_mut(&mut self) -> MapIterMut<'_> {
        MapIterMut(self.entries.iter_mut())
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Key> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values, in order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The first entry.
    #[must_use]
    pub fn first(&self) -> Option<(&Key, &Value)> {
        self.get_index(0)
    }

    /// The last entry.
    #[must_use]
    pub fn last(&self) -> Option<(&Key, &Value)> {
        self.entries.last().map(|(k, v)| (k, v))
    }
}

impl PartialEq for Map {
    /// The same keys with equal values, in any order (as two Python dicts compare).
    fn eq(&self, other: &Map) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(k, v)| other.get(k).is_some_and(|w| v == w))
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<Q: Borrow<str> + ?Sized> std::ops::Index<&Q> for Map {
    type Output = Value;

    /// The value of `key`; panics if the map does not have it (use [`Map::get`] otherwise).
    fn index(&self, key: &Q) -> &Value {
        let key = key.borrow();
        self.get(key)
            .unwrap_or_else(|| panic!("no key {key:?} in the map"))
    }
}

impl<K: Into<Key>> Extend<(K, Value)> for Map {
    fn extend<I: IntoIterator<Item = (K, Value)>>(&mut self, entries: I) {
        for (k, v) in entries {
            self.insert(k, v);
        }
    }
}

impl<K: Into<Key>> FromIterator<(K, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(entries: I) -> Self {
        let entries = entries.into_iter();
        let mut map = Map::with_capacity(entries.size_hint().0);
        map.extend(entries);
        map
    }
}

impl IntoIterator for Map {
    type Item = (Key, Value);
    type IntoIter = std::vec::IntoIter<(Key, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a Key, &'a Value);
    type IntoIter = MapIter<'a>;

    fn into_iter(self) -> MapIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Map {
    type Item = (&'a Key, &'a mut Value);
    type IntoIter = MapIterMut<'a>;

    fn into_iter(self) -> MapIterMut<'a> {
        self.iter_mut()
    }
}

/// The entries of a [`Map`], in order.
#[derive(Clone, Debug)]
pub struct MapIter<'a>(std::slice::Iter<'a, (Key, Value)>);

impl<'a> Iterator for MapIter<'a> {
    type Item = (&'a Key, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for MapIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for MapIter<'_> {}

/// The entries of a [`Map`], in order, with their values to change.
#[derive(Debug)]
pub struct MapIterMut<'a>(std::slice::IterMut<'a, (Key, Value)>);

impl<'a> Iterator for MapIterMut<'a> {
    type Item = (&'a Key, &'a mut Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&*k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for MapIterMut<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (&*k, v))
    }
}

impl ExactSizeIterator for MapIterMut<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(map: &Map) -> Vec<String> {
        map.keys().map(ToString::to_string).collect()
    }

    /// Python's dict, on both sides of the index threshold: order of first insertion, last
    /// value wins, removal shifts, lookups find every key and no other.
    #[test]
    fn dict_semantics_small_and_large() {
        let small = i64::try_from(LINEAR_MAX).unwrap();
        for n in [0, 1, small - 1, small, small + 1, 100] {
            let len = usize::try_from(n).unwrap();
            let mut map = Map::new();
            for i in 0..n {
                assert_eq!(map.insert(format!("k{i}"), Value::from(i)), None);
            }
            // Re-inserting every other key keeps its place and takes the new value.
            for i in (0..n).step_by(2) {
                let old = map.insert(format!("k{i}"), Value::from(-i));
                assert_eq!(old, Some(Value::from(i)));
            }
            assert_eq!(map.len(), len);
            assert_eq!(
                keys(&map),
                (0..n).map(|i| format!("k{i}")).collect::<Vec<_>>()
            );
            for (position, i) in (0..n).enumerate() {
                let expected = if i % 2 == 0 { -i } else { i };
                assert_eq!(
                    map.get(&format!("k{i}")),
                    Some(&Value::from(expected)),
                    "{n}"
                );
                assert_eq!(map.get_index_of(&format!("k{i}")), Some(position));
            }
            assert_eq!(map.get("missing"), None);
            assert!(!map.contains_key("k"));
            // Remove the first half: the rest move down, still found.
            for i in 0..n / 2 {
                assert!(map.shift_remove(&format!("k{i}")).is_some());
            }
            assert_eq!(map.shift_remove("missing"), None);
            for (position, i) in (n / 2..n).enumerate() {
                assert_eq!(map.get_index_of(&format!("k{i}")), Some(position), "{n}");
            }
            // Grow again past the threshold after removals.
            for i in 0..n {
                map.insert(format!("new{i}"), Value::Null);
            }
            assert_eq!(map.len(), len - len / 2 + len);
            assert!((0..n).all(|i| map.contains_key(&format!("new{i}"))));
            assert!((n / 2..n).all(|i| map.contains_key(&format!("k{i}"))));
        }
    }

    #[test]
    fn equality_ignores_order_and_retain_keeps_order() {
        let a: Map = (0..20)
            .map(|i| (format!("k{i}"), Value::from(i64::from(i))))
            .collect();
        let mut b: Map = (0..20)
            .rev()
            .map(|i| (format!("k{i}"), Value::from(i64::from(i))))
            .collect();
        assert_eq!(a, b);
        b.insert("k3", Value::Null);
        assert_ne!(a, b);
        b.retain(|k, _| k.ends_with('3'));
        assert_eq!(keys(&b), ["k13", "k3"]);
        assert_eq!(b["k3"], Value::Null);
        assert_eq!(b.get("k13"), Some(&Value::from(13_i64)));
    }

    #[test]
    fn short_keys_are_inline() {
        let key = Key::from("a key of twenty-four by");
        assert!(!key.is_heap_allocated());
        assert!(Key::from("a key longer than twenty-four bytes").is_heap_allocated());
    }
}
