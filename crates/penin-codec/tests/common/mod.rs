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

/// Bytes in memory that do not say so: a reader goes through them a window at a time, as
/// through a file.
pub struct NotInMemory<'a>(pub &'a [u8]);

impl penin_codec::Source for NotInMemory<'_> {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.0.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
}
