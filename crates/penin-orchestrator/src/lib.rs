//! The state of a penin orchestrator and its operations: the seed's `OmegaMetaOrchestrator`.
//!
//! An [`Orchestrator`] holds a knowledge base of [`NumericVectorArtifact`]s, a bounded task
//! history and a bounded score history. [`Orchestrator::save_state`] writes them in the
//! seed's format (byte-compatible with the Python tool) with an atomic, durable replace;
//! [`Orchestrator::load_state`] reads them back, returning `Ok(false)` on a first run.
//! [`diff()`] says what differs between two states, bit for bit (see [`mod@diff`]).
//!
//! # Example
//!
//! ```
//! use penin_orchestrator::{NumericVectorArtifact, Orchestrator, Value};
//!
//! let dir = std::env::temp_dir().join(format!("penin-doc-{}", std::process::id()));
//! let path = dir.join(".penin_omega/state.json");
//!
//! let mut orchestrator = Orchestrator::new();
//! orchestrator.add_knowledge("embedding_1", NumericVectorArtifact::new(vec![0.1, 0.2, 0.3]));
//! let mut task = penin_orchestrator::Map::new();
//! task.insert("task_id", Value::from(1_i64));
//! task.insert("type", Value::from("evolution"));
//! orchestrator.add_task(task);
//! orchestrator.add_score(0.85);
//! orchestrator.save_state(&path)?;
//!
//! let mut restored = Orchestrator::new();
//! assert!(restored.load_state(&path)?);
//! assert_eq!(restored, orchestrator);
//! let stats = restored.statistics();
//! assert_eq!((stats.knowledge_base_size, stats.task_history_size, stats.score_history_size), (1, 1, 1));
//! assert_eq!(stats.average_score, 0.85);
//!
//! // A missing file is a first run, not an error.
//! assert!(!Orchestrator::new().load_state(dir.join("missing.json"))?);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), penin_orchestrator::Error>(())
//! ```

pub use crate::change::Change;
pub use crate::diff::{Diff, diff};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::memory::{Appended, Loaded, Memory, Notice, Options, append, load};
pub use crate::orchestrator::Orchestrator;
pub use crate::search::{Metric, Search, SearchIndex};
pub use crate::statistics::Statistics;
pub use penin_artifacts::{
    Deque, Key, KnowledgeBase, Map, Number, NumericVectorArtifact, Text, Value, Vector,
};
pub use penin_codec::{DEFAULT_HISTORY_MAXLEN, Document};
pub use penin_formats::{Format, Keys, Layout};

pub mod change;
pub mod diff;
mod error;
pub mod memory;
mod orchestrator;
pub mod search;
mod statistics;
