//! The line protocol of `penin run`: one JSON operation per line on stdin, one answer line
//! on stdout.
//!
//! ```text
//! {"op":"add_knowledge","key":K,"vector":[...],"metadata":{...}}
//! {"op":"add_task","task":{...}}
//! {"op":"add_score","score":X}
//! {"op":"save"}
//! {"op":"stats"}
//! {"op":"search","vector":[...],"k":10,"metric":"cosine","filter":{"KEY":VALUE,...}}
//! ```
//! An optional `"id"` is echoed. Answers are `{"ok":true,...}` or
//! `{"ok":false,"error":"..."}`; a bad line gets an error answer and changes nothing.
//!
//! `search` finds the `k` artifacts nearest to `vector` (`k` 10, `metric` `cosine`, `dot` or
//! `l2`, `filter` none by default: every key of `filter` must be in an artifact's metadata
//! with an equal value) and answers `{"ok":true,"results":[{"key":K,"score":X,
//! "metadata":{...}},...],"skipped":{"dimension":n,"nan":n,"zero":n}}`, best first; it sees
//! every change answered before it. The rules (ties, NaN, zero vectors, other dimensions) are
//! `penin_orchestrator::search`'s.

use penin_orchestrator::{
    Change, Map, Metric, Number, NumericVectorArtifact, Search, Statistics, Value,
};

/// What a line asks for, checked.
#[derive(Debug)]
pub enum Request {
    AddKnowledge {
        key: String,
        artifact: NumericVectorArtifact,
    },
    AddTask(Value),
    AddScore(Number),
    Save,
    Stats,
    Search {
        vector: Vec<f64>,
        search: Search,
    },
}

/// A parsed line: the request, and the `id` to echo.
#[derive(Debug)]
pub struct Line {
    pub id: Option<Value>,
    pub request: Request,
}

/// Reads one line. The error is the answer's message; the id, when the line had one
/// readable, is echoed with it.
pub fn parse(line: &[u8]) -> Result<Line, (Option<Value>, String)> {
    let value: Value =
        penin_codec::from_slice(line).map_err(|e| (None, format!("invalid JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err((
            None,
            format!("expected an object with an \"op\", found {}", value.kind()),
        ));
    };
    let id = map.shift_remove("id");
    match request(&mut map) {
        Ok(request) => Ok(Line { id, request }),
        Err(message) => Err((id, message)),
    }
}

fn request(map: &mut Map) -> Result<Request, String> {
    let op = match map.shift_remove("op") {
        Some(Value::String(op)) => op,
        Some(other) => return Err(format!("\"op\" must be a string, found {}", other.kind())),
        None => return Err("missing \"op\"".to_owned()),
    };
    let request = match op.as_str() {
        "add_knowledge" => {
            let key = match map.shift_remove("key") {
                Some(Value::String(key)) => key,
                Some(other) => {
                    return Err(format!("\"key\" must be a string, found {}", other.kind()));
                }
                None => return Err("add_knowledge needs a \"key\"".to_owned()),
            };
            let mut dict = Map::new();
            dict.insert("vector", map.shift_remove("vector").unwrap_or(Value::Null));
            if let Some(metadata) = map.shift_remove("metadata") {
                dict.insert("metadata", metadata);
            }
            if !matches!(dict["vector"], Value::Array(_)) {
                return Err(format!(
                    "add_knowledge needs a \"vector\" array of numbers, found {}",
                    dict["vector"].kind()
                ));
            }
            let artifact = NumericVectorArtifact::from_dict(dict).map_err(|e| e.to_string())?;
            Request::AddKnowledge {
                key: key.into(),
                artifact,
            }
        }
        "add_task" => Request::AddTask(
            map.shift_remove("task")
                .ok_or("add_task needs a \"task\"")?,
        ),
        "add_score" => match map.shift_remove("score") {
            Some(Value::Number(n)) => Request::AddScore(n),
            Some(other) => {
                return Err(format!(
                    "\"score\" must be a number, found {}",
                    other.kind()
                ));
            }
            None => return Err("add_score needs a \"score\"".to_owned()),
        },
        "save" => Request::Save,
        "stats" => Request::Stats,
        "search" => search(map)?,
        other => {
            return Err(format!(
                "unknown op {other:?}: expected add_knowledge, add_task, add_score, save, stats \
                 or search"
            ));
        }
    };
    if let Some(key) = map.keys().next() {
        return Err(format!("unexpected key {key:?} for op {op:?}"));
    }
    Ok(request)
}

/// `{"op":"search","vector":[...],"k":10,"metric":"cosine","filter":{...}}`: every field but
/// the vector optional.
fn search(map: &mut Map) -> Result<Request, String> {
    let vector = match map.shift_remove("vector") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Number(n) => Ok(n.to_f64()),
                other => Err(format!(
                    "vector[{i}]: expected a number, found {}",
                    other.kind()
                )),
            })
            .collect::<Result<Vec<f64>, String>>()?,
        Some(Value::Array(_)) => return Err("search needs a non-empty \"vector\"".to_owned()),
        Some(other) => {
            return Err(format!(
                "\"vector\" must be an array of numbers, found {}",
                other.kind()
            ));
        }
        None => return Err("search needs a \"vector\"".to_owned()),
    };
    let k = match map.shift_remove("k") {
        None => 10,
        Some(Value::Number(Number::Int(k))) if k >= 1 => usize::try_from(k).unwrap_or(usize::MAX),
        Some(other) => {
            return Err(format!(
                "\"k\" must be an integer of at least 1, found {}",
                match &other {
                    Value::Number(Number::Int(k)) => k.to_string(),
                    other => other.kind().to_owned(),
                }
            ));
        }
    };
    let metric = match map.shift_remove("metric") {
        None => Metric::Cosine,
        Some(Value::String(name)) => name.parse().map_err(|e| format!("{e}"))?,
        Some(other) => {
            return Err(format!(
                "\"metric\" must be a string, found {}",
                other.kind()
            ));
        }
    };
    let mut search = Search::new(k).metric(metric);
    match map.shift_remove("filter") {
        None => {}
        Some(Value::Object(filter)) => {
            for (key, value) in *filter {
                search = search.filter(key.as_str(), value);
            }
        }
        Some(other) => {
            return Err(format!(
                "\"filter\" must be an object, found {}",
                other.kind()
            ));
        }
    }
    Ok(Request::Search { vector, search })
}

/// The change a request makes and its answer's fields; the request itself back if it
/// changes nothing (`save` and `stats`).
pub fn change(request: Request) -> Result<(Change, Map), Request> {
    let mut answer = Map::new();
    let change = match request {
        Request::AddKnowledge { key, artifact } => {
            answer.insert("key", Value::from(key.as_str()));
            Change::AddKnowledge { key, artifact }
        }
        Request::AddTask(task) => Change::AddTask(task),
        Request::AddScore(score) => Change::AddScore(score),
        other => return Err(other),
    };
    Ok((change, answer))
}

/// An answer line: `{"ok":..,"id":..,...}` on one line, with a newline.
pub fn answer(ok: bool, id: Option<Value>, fields: Map) -> Vec<u8> {
    let mut map = Map::with_capacity(fields.len() + 2);
    map.insert("ok", Value::Bool(ok));
    if let Some(id) = id {
        map.insert("id", id);
    }
    map.extend(fields);
    let mut line = penin_codec::to_vec_compact(&Value::from(map));
    line.push(b'\n');
    line
}

/// An error answer.
pub fn error(id: Option<Value>, message: &str) -> Vec<u8> {
    let mut fields = Map::new();
    fields.insert("error", Value::from(message));
    answer(false, id, fields)
}

pub fn statistics_value(stats: &Statistics) -> Value {
    let mut map = Map::new();
    for (key, n) in [
        ("knowledge_base_size", stats.knowledge_base_size),
        ("task_history_size", stats.task_history_size),
        ("score_history_size", stats.score_history_size),
    ] {
        map.insert(
            key.to_owned(),
            Value::from(i64::try_from(n).unwrap_or(i64::MAX)),
        );
    }
    map.insert("average_score", Value::from(stats.average_score));
    Value::from(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn good_lines_parse() {
        let line = parse(
            br#"{"op":"add_knowledge","id":7,"key":"k","vector":[0.1,2],"metadata":{"s":"x"}}"#,
        )
        .unwrap();
        assert_eq!(line.id, Some(Value::from(7_i64)));
        let Request::AddKnowledge { key, artifact } = line.request else {
            panic!()
        };
        assert_eq!(key, "k");
        assert_eq!(artifact.vector, [0.1, 2.0]);
        assert_eq!(artifact.metadata["s"], Value::from("x"));
        assert!(
            matches!(parse(br#"{"op":"add_score","score":NaN}"#).unwrap().request, Request::AddScore(Number::Float(f)) if f.is_nan())
        );
        assert!(matches!(
            parse(br#"{"op":"add_task","task":{"a":1}}"#)
                .unwrap()
                .request,
            Request::AddTask(Value::Object(_))
        ));
        assert!(matches!(
            parse(b" {\"op\":\"save\"} \r").unwrap().request,
            Request::Save
        ));
        assert!(matches!(
            parse(br#"{"op":"stats"}"#).unwrap().request,
            Request::Stats
        ));
    }

    #[test]
    fn bad_lines_say_why() {
        let rows: &[(&[u8], Option<Value>, &str)] = &[
            (
                b"{",
                None,
                "invalid JSON: unexpected end of input at line 1, column 2",
            ),
            (
                b"[1]",
                None,
                "expected an object with an \"op\", found an array",
            ),
            (br#"{"id":"a"}"#, Some(Value::from("a")), "missing \"op\""),
            (
                br#"{"op":"fly","id":1}"#,
                Some(Value::from(1_i64)),
                "unknown op \"fly\": expected add_knowledge, add_task, add_score, save, stats or search",
            ),
            (
                br#"{"op":"add_score","score":"x"}"#,
                None,
                "\"score\" must be a number, found a string",
            ),
            (
                br#"{"op":"add_score"}"#,
                None,
                "add_score needs a \"score\"",
            ),
            (br#"{"op":"add_task"}"#, None, "add_task needs a \"task\""),
            (
                br#"{"op":"add_knowledge","vector":[1]}"#,
                None,
                "add_knowledge needs a \"key\"",
            ),
            (
                br#"{"op":"add_knowledge","key":"k"}"#,
                None,
                "add_knowledge needs a \"vector\" array of numbers, found null",
            ),
            (
                br#"{"op":"add_knowledge","key":"k","vector":[1,"a"]}"#,
                None,
                "vector[1]: expected a number, found a string",
            ),
            (
                br#"{"op":"add_knowledge","key":"k","vector":[],"metadata":3}"#,
                None,
                "metadata: expected an object, found an integer",
            ),
            (
                br#"{"op":"save","force":true}"#,
                None,
                "unexpected key \"force\" for op \"save\"",
            ),
        ];
        for (input, id, message) in rows {
            let (got_id, got) = parse(input).unwrap_err();
            assert_eq!((&got_id, got.as_str()), (id, *message), "{}", text(input));
        }
    }

    #[test]
    fn answers_are_one_compact_line() {
        let mut fields = Map::new();
        fields.insert("key", Value::from("k"));
        assert_eq!(
            text(&answer(true, Some(Value::from(3_i64)), fields)),
            "{\"ok\":true,\"id\":3,\"key\":\"k\"}\n"
        );
        assert_eq!(
            text(&error(None, "bad \"x\"\n")),
            "{\"ok\":false,\"error\":\"bad \\\"x\\\"\\n\"}\n"
        );
    }
}
