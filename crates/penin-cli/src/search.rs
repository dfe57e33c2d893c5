//! `penin search`, and the answer of the line protocol's `search`: the k nearest artifacts
//! (`penin_orchestrator::search` does the work).

use std::io::Write;

use anyhow::{Context, Result};
use penin_orchestrator::search::{Hits, QueryError, Skipped};
use penin_orchestrator::{Map, Metric, Search, SearchIndex, Value};

use crate::commands;
use crate::exit::Usage;
use crate::globals::Globals;

/// A search asked for on the command line, checked before the state is loaded.
#[derive(Debug)]
pub struct Query {
    vector: Vec<f64>,
    search: Search,
}

impl Query {
    /// Checks `--vector`, `-k`, `--metric` and the `--filter`s: a bad one is a usage error.
    pub fn parse(vector: &str, k: usize, metric: &str, filters: &[String]) -> Result<Query> {
        let vector = commands::parse_vector(vector)?;
        if vector.is_empty() {
            return Err(Usage("invalid --vector: it has no number".to_owned()).into());
        }
        if k == 0 {
            return Err(Usage(format!("invalid -k 0: {}", QueryError::ZeroK)).into());
        }
        let metric: Metric = metric
            .parse()
            .map_err(|e: QueryError| Usage(format!("invalid --metric: {e}")))?;
        let mut search = Search::new(k).metric(metric);
        for filter in filters {
            let (key, value) = parse_filter(filter)?;
            search = search.filter(key, value);
        }
        Ok(Query { vector, search })
    }
}

/// `KEY=VALUE`: VALUE as JSON when it reads as JSON (`3`, `true`, `null`, `"x"`), else the
/// string itself.
fn parse_filter(text: &str) -> Result<(String, Value)> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(Usage(format!("invalid --filter {text:?}: expected KEY=VALUE")).into());
    };
    if key.is_empty() {
        return Err(Usage(format!("invalid --filter {text:?}: the key is empty")).into());
    }
    let value = penin_codec::from_str::<Value>(value).unwrap_or_else(|_| Value::from(value));
    Ok((key.to_owned(), value))
}

/// `penin search`: loads the state, searches, prints a table (rank, score, key, metadata) or
/// with `json` one object.
pub fn search(ctx: &Globals, query: &Query, json: bool, out: &mut dyn Write) -> Result<()> {
    let loaded = commands::load_to_scan(ctx, &ctx.path)?;
    if !loaded.exists() {
        eprintln!(
            "penin: no state at {} yet (first run): searching an empty state",
            ctx.path.display()
        );
    }
    let kb = loaded.state.knowledge_base();
    let index = SearchIndex::new(kb);
    let hits = index
        .search(kb, &query.vector, &query.search)
        .map_err(|e| Usage(e.to_string()))
        .context("cannot search")?;
    if json {
        let mut map = Map::new();
        map.insert("metric", Value::from(query.search.metric_used().name()));
        map.insert(
            "k",
            Value::from(i64::try_from(query.search.k()).unwrap_or(i64::MAX)),
        );
        answer_fields(&hits, &mut map);
        out.write_all(&penin_codec::to_vec_compact(&Value::from(map)))?;
        writeln!(out)?;
        return Ok(());
    }
    table(&hits, query.search.metric_used(), out)?;
    Ok(())
}

fn table(hits: &Hits<'_>, metric: Metric, out: &mut dyn Write) -> Result<()> {
    let rows: Vec<[String; 4]> = hits
        .results
        .iter()
        .enumerate()
        .map(|(i, hit)| {
            [
                (i + 1).to_string(),
                compact(&Value::from(hit.score)),
                crate::inspect::one_line(hit.key).into_owned(),
                compact(&Value::from(hit.artifact.metadata.clone())),
            ]
        })
        .collect();
    let score = if metric == Metric::L2 {
        "distance"
    } else {
        "score"
    };
    let header = ["rank", score, "key", "metadata"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: [&str; 4]| {
        writeln!(
            out,
            "{:>w0$}  {:<w1$}  {:<w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        )
    };
    if rows.is_empty() {
        writeln!(out, "no results ({metric})")?;
    } else {
        line(out, header)?;
        for row in &rows {
            line(out, [&row[0], &row[1], &row[2], &row[3]])?;
        }
    }
    let Skipped {
        dimension,
        nan,
        zero,
    } = hits.skipped;
    if dimension + nan + zero > 0 {
        writeln!(
            out,
            "skipped: {dimension} of another dimension, {nan} with a NaN score, {zero} of norm 0 \
             (cosine)"
        )?;
    }
    Ok(())
}

fn compact(value: &Value) -> String {
    String::from_utf8_lossy(&penin_codec::to_vec_compact(value)).into_owned()
}

fn count(n: usize) -> Value {
    Value::from(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The fields of a search's answer, `--json`'s and the line protocol's: `results` (best
/// first, each `{"key":…,"score":…,"metadata":{…}}`) and `skipped` (`{"dimension":n,
/// "nan":n,"zero":n}`).
pub fn answer_fields(hits: &Hits<'_>, map: &mut Map) {
    let results = hits
        .results
        .iter()
        .map(|hit| {
            let mut result = Map::with_capacity(3);
            result.insert("key", Value::from(hit.key));
            result.insert("score", Value::from(hit.score));
            result.insert("metadata", Value::from(hit.artifact.metadata.clone()));
            Value::from(result)
        })
        .collect::<Vec<_>>();
    map.insert("results", Value::from(results));
    let mut skipped = Map::with_capacity(3);
    skipped.insert("dimension", count(hits.skipped.dimension));
    skipped.insert("nan", count(hits.skipped.nan));
    skipped.insert("zero", count(hits.skipped.zero));
    map.insert("skipped", Value::from(skipped));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        let rows: &[(&str, &str, Value)] = &[
            ("lang=en", "lang", Value::from("en")),
            ("n=3", "n", Value::from(3_i64)),
            ("x=1.5", "x", Value::from(1.5)),
            ("ok=true", "ok", Value::Bool(true)),
            ("none=null", "none", Value::Null),
            ("q=\"3\"", "q", Value::from("3")),
            ("eq=a=b", "eq", Value::from("a=b")),
            ("empty=", "empty", Value::from("")),
        ];
        for (text, key, value) in rows {
            assert_eq!(
                &parse_filter(text).unwrap(),
                &((*key).to_owned(), value.clone())
            );
        }
        assert_eq!(
            format!("{:#}", parse_filter("lang").unwrap_err()),
            "invalid --filter \"lang\": expected KEY=VALUE"
        );
        assert_eq!(
            format!("{:#}", parse_filter("=x").unwrap_err()),
            "invalid --filter \"=x\": the key is empty"
        );
    }
}
