//! `penin_artifacts::Deque` against a model of Python's `collections.deque`.

use penin_artifacts::Deque;
use proptest::collection::vec;
use proptest::prelude::*;

/// One call on a deque.
#[derive(Clone, Debug)]
enum Op {
    PushBack(u8),
    PushFront(u8),
    PopBack,
    PopFront,
    Extend(Vec<u8>),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::PushBack),
        3 => any::<u8>().prop_map(Op::PushFront),
        2 => Just(Op::PopBack),
        2 => Just(Op::PopFront),
        2 => vec(any::<u8>(), 0..12).prop_map(Op::Extend),
        1 => Just(Op::Clear),
    ]
}

fn maxlen() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![Just(None), (0_usize..8).prop_map(Some)]
}

/// Python's deque, the plainest way: a `Vec`, front first.
#[derive(Debug)]
struct Model {
    items: Vec<u8>,
    maxlen: Option<usize>,
}

impl Model {
    fn full(&self) -> bool {
        self.maxlen.is_some_and(|m| self.items.len() >= m)
    }

    /// `append`: when full, the front item falls out (with `maxlen=0`, the item itself).
    fn push_back(&mut self, x: u8) -> Option<u8> {
        if self.maxlen == Some(0) {
            return Some(x);
        }
        let dropped = if self.full() {
            Some(self.items.remove(0))
        } else {
            None
        };
        self.items.push(x);
        dropped
    }

    /// `appendleft`: when full, the back item falls out.
    fn push_front(&mut self, x: u8) -> Option<u8> {
        if self.maxlen == Some(0) {
            return Some(x);
        }
        let dropped = if self.full() { self.items.pop() } else { None };
        self.items.insert(0, x);
        dropped
    }

    fn pop_front(&mut self) -> Option<u8> {
        (!self.items.is_empty()).then(|| self.items.remove(0))
    }

    /// `extend`: `append` of each item in turn.
    fn extend(&mut self, xs: &[u8]) {
        for &x in xs {
            self.push_back(x);
        }
    }
}

fn check(deque: &Deque<u8>, model: &Model) -> Result<(), TestCaseError> {
    let items: Vec<u8> = deque.iter().copied().collect();
    prop_assert_eq!(&items, &model.items);
    prop_assert_eq!(deque.maxlen(), model.maxlen);
    prop_assert_eq!(deque.len(), model.items.len());
    prop_assert_eq!(deque.is_empty(), model.items.is_empty());
    prop_assert_eq!(deque.front(), model.items.first());
    prop_assert_eq!(deque.back(), model.items.last());
    for (i, x) in model.items.iter().enumerate() {
        prop_assert_eq!(deque.get(i), Some(x));
    }
    prop_assert_eq!(deque.get(model.items.len()), None);
    if let Some(max) = deque.maxlen() {
        prop_assert!(deque.len() <= max);
    }
    Ok(())
}

proptest! {
    #![proptest_config(penin_tests::config(512, regressions!("deque")))]

    /// After every operation the deque holds what Python's would, never more than `maxlen`,
    /// and the bound never changes.
    #[test]
    fn operations_match_python_deque(
        maxlen in maxlen(),
        start in vec(any::<u8>(), 0..10),
        ops in vec(op(), 0..40),
    ) {
        let mut deque = Deque::from_items(start.iter().copied(), maxlen);
        let mut model = Model { items: Vec::new(), maxlen };
        model.extend(&start);
        check(&deque, &model)?;
        for op in ops {
            match op {
                Op::PushBack(x) => prop_assert_eq!(deque.push_back(x), model.push_back(x)),
                Op::PushFront(x) => prop_assert_eq!(deque.push_front(x), model.push_front(x)),
                Op::PopBack => prop_assert_eq!(deque.pop_back(), model.items.pop()),
                Op::PopFront => prop_assert_eq!(deque.pop_front(), model.pop_front()),
                Op::Extend(xs) => {
                    deque.extend(xs.iter().copied());
                    model.extend(&xs);
                }
                Op::Clear => {
                    deque.clear();
                    model.items.clear();
                }
            }
            check(&deque, &model)?;
        }
        let items: Vec<u8> = deque.clone().into_iter().collect();
        prop_assert_eq!(&items, &model.items);
        prop_assert_eq!(Vec::from(deque.into_items()), model.items);
    }

    /// `deque(items, maxlen)` keeps the last `maxlen` items, in order.
    #[test]
    fn from_items_keeps_the_newest(items in vec(any::<u8>(), 0..20), maxlen in maxlen()) {
        let deque = Deque::from_items(items.iter().copied(), maxlen);
        let keep = maxlen.map_or(items.len(), |m| m.min(items.len()));
        let expected = &items[items.len() - keep..];
        prop_assert_eq!(deque.iter().copied().collect::<Vec<_>>(), expected);
        prop_assert_eq!(deque.maxlen(), maxlen);
        prop_assert!(deque.extra().is_empty());
    }
}
