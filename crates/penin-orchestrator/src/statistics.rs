use serde::Serialize;

/// The seed's `get_statistics()`: sizes of the three collections and the mean score.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Statistics {
    /// Number of artifacts in the knowledge base.
    pub knowledge_base_size: usize,
    /// Number of task records held.
    pub task_history_size: usize,
    /// Number of scores held.
    pub score_history_size: usize,
    /// Mean of the scores held, `0.0` when there are none; summed left to right as Python's
    /// `sum(scores) / len(scores)`.
    pub average_score: f64,
}
