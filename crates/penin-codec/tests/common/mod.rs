//! Short builders of values for the table-driven codec tests.
// Each test binary uses some of them.
#![allow(dead_code)]

use penin_codec::{Map, Number, Value};

pub fn int(n: i64) -> Value {
    Value::from(n)
}

pub fn float(f: f64) -> Value {
    Value::from(f)
}

pub fn s(text: &str) -> Value {
    Value::from(text)
}

pub fn big(digits: &str) -> Value {
    Value::Number(Number::parse_integer(digits).unwrap())
}

pub fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

pub fn map(pairs: Vec<(&str, Value)>) -> Map {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::from(map(pairs))
}
