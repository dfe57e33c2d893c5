use std::collections::VecDeque;

use crate::map::Map;

/// A double-ended queue with an optional bound, as Python's `collections.deque`.
///
/// * `maxlen` is fixed at construction; `None` is unbounded.
/// * A push onto a full deque drops one item from the other end: [`Deque::push_back`] drops
///   the oldest (front), [`Deque::push_front`] the newest (back).
/// * [`Deque::from_items`] with more items than `maxlen` keeps the last `maxlen`.
/// * `maxlen` 0 keeps nothing.
///
/// A deque read from a file may carry keys beyond `__type__`, `items` and `maxlen`; they are
/// kept in [`Deque::extra`] so that a re-save loses nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Deque<T> {
    items: VecDeque<T>,
    maxlen: Option<usize>,
    extra: Map,
}

impl<T> Deque<T> {
    /// An empty unbounded deque.
    #[must_use]
    pub fn new() -> Self {
        Self::with_bound(None)
    }

    /// An empty deque that keeps at most `maxlen` items.
    #[must_use]
    pub fn with_maxlen(maxlen: usize) -> Self {
        Self::with_bound(Some(maxlen))
    }

    /// An empty deque with an optional bound.
    #[must_use]
    pub fn with_bound(maxlen: Option<usize>) -> Self {
        Deque {
            items: VecDeque::new(),
            maxlen,
            extra: Map::new(),
        }
    }

    /// `deque(items, maxlen)`: the items in order, keeping only the last `maxlen`.
    pub fn from_items(items: impl IntoIterator<Item = T>, maxlen: Option<usize>) -> Self {
        let mut deque = Self::with_bound(maxlen);
        deque.extend(items);
        deque
    }

    /// `deque(items, maxlen)` from a vector, whose buffer the deque takes over without a
    /// copy: reading a long history needs no second buffer.
    #[must_use]
    pub fn from_vec(mut items: Vec<T>, maxlen: Option<usize>) -> Self {
        if let Some(maxlen) = maxlen {
            let excess = items.len().saturating_sub(maxlen);
            items.drain(..excess);
        }
        Deque {
            items: VecDeque::from(items),
            maxlen,
            extra: Map::new(),
        }
    }

    /// The bound, or `None` when unbounded.
    #[must_use]
    pub fn maxlen(&self) -> Option<usize> {
        self.maxlen
    }

    /// Number of items held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends at the back (Python's `append`); when full, drops and returns the front item.
    /// With `maxlen` 0 the item itself is returned and nothing is kept.
    pub fn push_back(&mut self, item: T) -> Option<T> {
        match self.maxlen {
            Some(0) => Some(item),
            Some(max) if self.items.len() >= max => {
                let dropped = self.items.pop_front();
                self.items.push_back(item);
                dropped
            }
            _ => {
                self.items.push_back(item);
                None
            }
        }
    }

    /// Prepends at the front (Python's `appendleft`); when full, drops and returns the back item.
    pub fn push_front(&mut self, item: T) -> Option<T> {
        match self.maxlen {
            Some(0) => Some(item),
            Some(max) if self.items.len() >= max => {
                let dropped = self.items.pop_back();
                self.items.push_front(item);
                dropped
            }
            _ => {
                self.items.push_front(item);
                None
            }
        }
    }

    /// Removes and returns the back item (Python's `pop`).
    pub fn pop_back(&mut self) -> Option<T> {
        self.items.pop_back()
    }

    /// Removes and returns the front item (Python's `popleft`).
    pub fn pop_front(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// The front (oldest) item.
    #[must_use]
    pub fn front(&self) -> Option<&T> {
        self.items.front()
    }

    /// The back (newest) item.
    #[must_use]
    pub fn back(&self) -> Option<&T> {
        self.items.back()
    }

    /// The item at `index` from the front.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<&T> {
        self.items.get(index)
    }

    /// Removes every item; the bound stays.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// The items from front to back.
    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, T> {
        self.items.iter()
    }

    /// The items, without the bound.
    #[must_use]
    pub fn into_items(self) -> VecDeque<T> {
        self.items
    }

    /// Keys a file's deque object carried beyond `__type__`, `items` and `maxlen`.
    #[must_use]
    pub fn extra(&self) -> &Map {
        &self.extra
    }

    /// Mutable access to the extra keys.
    pub fn extra_mut(&mut self) -> &mut Map {
        &mut self.extra
    }
}

impl<T> Default for Deque<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Extend<T> for Deque<T> {
    /// Appends each item in turn (Python's `extend`); only the last `maxlen` stay.
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        if self.maxlen == Some(0) {
            return;
        }
        for item in iter {
            self.push_back(item);
        }
    }
}

impl<'a, T> IntoIterator for &'a Deque<T> {
    type Item = &'a T;
    type IntoIter = std::collections::vec_deque::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T> IntoIterator for Deque<T> {
    type Item = T;
    type IntoIter = std::collections::vec_deque::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items<T: Clone>(d: &Deque<T>) -> Vec<T> {
        d.iter().cloned().collect()
    }

    #[test]
    fn push_past_maxlen_drops_oldest() {
        let mut d = Deque::with_maxlen(3);
        let dropped: Vec<_> = (1..=5).map(|i| d.push_back(i)).collect();
        assert_eq!(dropped, [None, None, None, Some(1), Some(2)]);
        assert_eq!(items(&d), [3, 4, 5]);
        assert_eq!(d.maxlen(), Some(3));
    }

    #[test]
    fn push_front_when_full_drops_newest() {
        let mut d = Deque::from_items([1, 2, 3], Some(3));
        assert_eq!(d.push_front(0), Some(3));
        assert_eq!(items(&d), [0, 1, 2]);
    }

    #[test]
    fn from_more_items_than_maxlen_keeps_newest() {
        assert_eq!(items(&Deque::from_items(0..10, Some(4))), [6, 7, 8, 9]);
        assert_eq!(items(&Deque::from_items(0..3, Some(4))), [0, 1, 2]);
        assert_eq!(items(&Deque::from_items(0..3, None)), [0, 1, 2]);
    }

    #[test]
    fn maxlen_zero_keeps_nothing() {
        let mut d = Deque::with_maxlen(0);
        assert_eq!(d.push_back("a"), Some("a"));
        assert_eq!(d.push_front("b"), Some("b"));
        d.extend(["c", "d"]);
        assert!(d.is_empty());
        assert!(Deque::from_items(0..5, Some(0)).is_empty());
        // From a vector, the same.
        for maxlen in [None, Some(0), Some(3), Some(4), Some(10)] {
            assert_eq!(
                Deque::from_vec((0..4).collect(), maxlen),
                Deque::from_items(0..4, maxlen),
                "{maxlen:?}"
            );
        }
    }

    #[test]
    fn unbounded_grows() {
        let mut d = Deque::new();
        d.extend(0..2000);
        assert_eq!(d.len(), 2000);
        assert_eq!(d.front(), Some(&0));
        assert_eq!(d.back(), Some(&1999));
        assert_eq!(d.pop_front(), Some(0));
        assert_eq!(d.pop_back(), Some(1999));
        assert_eq!(d.get(0), Some(&1));
        d.clear();
        assert!(d.is_empty());
        assert_eq!(d.maxlen(), None);
    }
}
