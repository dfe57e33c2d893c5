//! The one-shot commands.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use penin_orchestrator::{Map, Number, NumericVectorArtifact, Orchestrator, Value};

use crate::exit::{NotFound, Usage};
use crate::lifecycle;
use crate::progress;

/// Loads the state for a command that changes it: a missing file is an empty state.
fn load_for_update(path: &Path, maxlen: Option<usize>) -> Result<Orchestrator> {
    let mut orchestrator = Orchestrator::with_history_maxlen(maxlen);
    progress::slow("Loading", path, || orchestrator.load_state(path))
        .with_context(|| format!("cannot update {}: it was left as it is", path.display()))?;
    Ok(orchestrator)
}

/// Loads a state that must exist.
fn load_existing(path: &Path, maxlen: Option<usize>) -> Result<Orchestrator> {
    let mut orchestrator = Orchestrator::with_history_maxlen(maxlen);
    if !progress::slow("Loading", path, || orchestrator.load_state(path))? {
        return Err(NotFound(path.to_owned()).into());
    }
    Ok(orchestrator)
}

fn save(orchestrator: &Orchestrator, path: &Path) -> Result<()> {
    progress::slow("Saving", path, || orchestrator.save_state(path))
        .with_context(|| format!("cannot save the state to {}", path.display()))
}

pub fn stats(path: &Path, maxlen: Option<usize>, json: bool, out: &mut dyn Write) -> Result<()> {
    let mut orchestrator = Orchestrator::with_history_maxlen(maxlen);
    let found = progress::slow("Loading", path, || orchestrator.load_state(path))?;
    let stats = orchestrator.statistics();
    if json {
        serde_json::to_writer(&mut *out, &stats)?;
        writeln!(out)?;
    } else {
        if !found {
            eprintln!(
                "penin: no state at {} yet (first run): statistics of an empty state",
                path.display()
            );
        }
        writeln!(out, "Knowledge base: {} items", stats.knowledge_base_size)?;
        writeln!(out, "Task history: {} entries", stats.task_history_size)?;
        writeln!(out, "Score history: {} entries", stats.score_history_size)?;
        writeln!(out, "Average score: {:?}", stats.average_score)?;
    }
    Ok(())
}

pub fn add_knowledge(
    path: &Path,
    maxlen: Option<usize>,
    wait: bool,
    key: &str,
    vector: &str,
    metadata: Option<&str>,
    out: &mut dyn Write,
) -> Result<()> {
    let vector = parse_vector(vector)?;
    let metadata = match metadata {
        None => Map::new(),
        Some(text) => match penin_codec::from_str::<Value>(text)
            .context(Usage("invalid --metadata".to_owned()))?
        {
            Value::Object(map) => *map,
            other => {
                return Err(Usage(format!(
                    "invalid --metadata: expected a JSON object, found {}",
                    other.kind()
                ))
                .into());
            }
        },
    };
    let _lock = lifecycle::one_shot_writer(path, wait)?;
    let mut orchestrator = load_for_update(path, maxlen)?;
    let dimensions = vector.len();
    orchestrator.add_knowledge(
        key,
        NumericVectorArtifact::new(vector).with_metadata(metadata),
    );
    save(&orchestrator, path)?;
    writeln!(
        out,
        "Added {key:?} ({dimensions} dimensions); state saved to {}",
        path.display()
    )?;
    Ok(())
}

/// `0.1,0.2,-3e-5`: floats as Python's `float()` reads them (`nan`, `inf` too).
fn parse_vector(text: &str) -> Result<Vec<f64>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .enumerate()
        .map(|(i, item)| {
            item.trim().parse::<f64>().with_context(|| {
                Usage(format!(
                    "invalid --vector: element {i} {:?} is not a number",
                    item.trim()
                ))
            })
        })
        .collect()
}

pub fn add_task(
    path: &Path,
    maxlen: Option<usize>,
    wait: bool,
    task: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let task: Value = penin_codec::from_str(task).context(Usage("invalid task JSON".to_owned()))?;
    let _lock = lifecycle::one_shot_writer(path, wait)?;
    let mut orchestrator = load_for_update(path, maxlen)?;
    orchestrator.add_task(task);
    save(&orchestrator, path)?;
    writeln!(
        out,
        "Added a task ({} in the history); state saved to {}",
        orchestrator.task_history().len(),
        path.display()
    )?;
    Ok(())
}

pub fn add_score(
    path: &Path,
    maxlen: Option<usize>,
    wait: bool,
    score: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let score = match penin_codec::from_str::<Value>(score) {
        Ok(Value::Number(n)) => n,
        _ => Number::Float(
            score
                .trim()
                .parse()
                .with_context(|| Usage(format!("invalid score {score:?}: expected a number")))?,
        ),
    };
    let _lock = lifecycle::one_shot_writer(path, wait)?;
    let mut orchestrator = load_for_update(path, maxlen)?;
    orchestrator.add_score(score);
    save(&orchestrator, path)?;
    writeln!(
        out,
        "Added a score ({} in the history); state saved to {}",
        orchestrator.score_history().len(),
        path.display()
    )?;
    Ok(())
}

pub fn convert(
    input: &Path,
    output: &Path,
    maxlen: Option<usize>,
    wait: bool,
    out: &mut dyn Write,
) -> Result<()> {
    // The output's lock first: when the input is the same state, nothing can change it
    // between this read and the write.
    let _lock = lifecycle::one_shot_writer(output, wait)?;
    let orchestrator = load_existing(input, maxlen)?;
    save(&orchestrator, output)?;
    writeln!(out, "Converted {} to {}", input.display(), output.display())?;
    Ok(())
}

pub fn verify(path: &Path, maxlen: Option<usize>, out: &mut dyn Write) -> Result<()> {
    let orchestrator = load_existing(path, maxlen)?;
    let stats = orchestrator.statistics();
    let bound =
        |m: Option<usize>| m.map_or_else(|| "unbounded".to_owned(), |n| format!("maxlen {n}"));
    writeln!(
        out,
        "{}: ok: {} knowledge items, {} tasks ({}), {} scores ({}), {} other top-level keys",
        path.display(),
        stats.knowledge_base_size,
        stats.task_history_size,
        bound(orchestrator.task_history().maxlen()),
        stats.score_history_size,
        bound(orchestrator.score_history().maxlen()),
        orchestrator.extra().len(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_parse() {
        assert_eq!(parse_vector("0.1, 0.2,-3e-5").unwrap(), [0.1, 0.2, -3e-5]);
        assert!(parse_vector("").unwrap().is_empty());
        assert_eq!(
            format!("{:#}", parse_vector("1,x").unwrap_err()),
            "invalid --vector: element 1 \"x\" is not a number: invalid float literal"
        );
    }
}
