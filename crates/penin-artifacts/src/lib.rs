//! Value types of penin, the long-term memory of an agent orchestrator.
//!
//! * [`NumericVectorArtifact`]: an embedding (a [`Vector`] of `f64`) with insertion-ordered
//!   metadata, as the seed's Python class of the same name. A vector is owned or a view into
//!   a shared buffer (how an arrow snapshot's vectors are loaded without a copy).
//! * [`Deque`]: a bounded double-ended queue with the semantics of Python's
//!   `collections.deque(items, maxlen)`: a push past `maxlen` drops the item at the other end.
//! * [`Value`]: a JSON value that keeps everything a state file can hold: key order,
//!   integers of any size, the difference between `1` and `1.0`, non-finite floats, and
//!   tagged artifacts and deques anywhere in a document.
//!
//! This crate knows nothing of files or formats; `penin-codec` turns these values into bytes.
//!
//! # Example
//!
//! ```
//! use penin_artifacts::{Deque, Map, NumericVectorArtifact, Value};
//!
//! let mut metadata = Map::new();
//! metadata.insert("source", Value::from("docs"));
//! let artifact = NumericVectorArtifact::new(vec![0.1, 0.2, 0.3]).with_metadata(metadata);
//! assert_eq!(artifact.vector.len(), 3);
//!
//! // A deque keeps at most `maxlen` items and drops the oldest first.
//! let mut scores = Deque::with_maxlen(2);
//! scores.push_back(0.85);
//! scores.push_back(0.87);
//! scores.push_back(0.90);
//! assert_eq!(scores.iter().copied().collect::<Vec<_>>(), [0.87, 0.90]);
//!
//! // Building from more items than `maxlen` keeps the newest, as `deque(items, maxlen)`.
//! let tasks = Deque::from_items(1..=5, Some(3));
//! assert_eq!(tasks.iter().copied().collect::<Vec<_>>(), [3, 4, 5]);
//! ```

pub use crate::artifact::{ARTIFACT_TAG, NumericVectorArtifact};
pub use crate::deque::Deque;
pub use crate::error::{Error, Result};
pub use crate::map::{Key, Map, MapIter, MapIterMut};
pub use crate::number::{BigInt, Number};
pub use crate::value::{DEQUE_TAG, Text, Value};
pub use crate::vector::Vector;

/// The knowledge base: artifacts by key, in insertion order.
pub type KnowledgeBase = indexmap::IndexMap<String, NumericVectorArtifact>;

mod artifact;
mod deque;
mod error;
mod map;
mod number;
mod value;
mod vector;
