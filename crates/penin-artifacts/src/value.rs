use crate::artifact::{NumericVectorArtifact, shape};
use crate::deque::Deque;
use crate::error::{Error, Result};
use crate::map::Map;

/// A string of a [`Value`] or a key of a [`Map`]: up to 24 bytes are held inline, without an
/// allocation. It derefs to `str`, and converts from `&str` and `String`.
pub type Text = compact_str::CompactString;
use crate::number::Number;

/// The `__type__` tag of a deque in a state file.
pub const DEQUE_TAG: &str = "deque";

/// A JSON value as a state file holds it.
///
/// Beyond JSON's own kinds it has the two tagged types of the seed format, recognised
/// anywhere in a document: [`Value::Artifact`] and [`Value::Deque`]. Numbers keep Python's
/// distinction between integers and floats ([`Number`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// An integer of any size or a float.
    Number(Number),
    /// A string, inline up to 24 bytes (most strings of task records and metadata).
    String(Text),
    /// An array.
    Array(Vec<Value>),
    /// An object, in insertion order. Boxed, so that a value takes 32 bytes, not the 72 of
    /// a map: arrays of numbers and histories of task records hold millions of values.
    Object(Box<Map>),
    /// `{"__type__": "NumericVectorArtifact", ...}`
    Artifact(Box<NumericVectorArtifact>),
    /// `{"__type__": "deque", "items": [...], "maxlen": ...}`
    Deque(Box<Deque<Value>>),
}

impl Value {
    /// What kind of value this is, with its article, for error messages: `a string`, `null`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(Number::Float(_)) => "a float",
            Value::Number(_) => "an integer",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
            Value::Artifact(_) => "a NumericVectorArtifact",
            Value::Deque(_) => "a deque",
        }
    }

    /// The string, if this is one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as a float (see [`Number::to_f64`]), if this is a number.
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(n.to_f64()),
            _ => None,
        }
    }

    /// The object, if this is one.
    #[must_use]
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }
}

impl Deque<Value> {
    /// The encoder's form: `{"__type__": "deque", "items": [...], "maxlen": n or null}`,
    /// then any extra keys the deque was read with.
    #[must_use]
    pub fn to_dict(&self) -> Map {
        let mut map = Map::with_capacity(3 + self.extra().len());
        map.insert("__type__", Value::from(DEQUE_TAG));
        map.insert("items", Value::Array(self.iter().cloned().collect()));
        map.insert(
            "maxlen",
            self.maxlen()
                .map_or(Value::Null, |n| Value::Number(Number::from_usize(n))),
        );
        for (k, v) in self.extra() {
            map.insert(k.clone(), v.clone());
        }
        map
    }

    /// The decoder's `deque(d["items"], maxlen=d.get("maxlen"))`: `items` is required and
    /// must be an array; `maxlen` is `null`, missing or a non-negative integer. Other keys
    /// but `__type__` are kept as extras.
    ///
    /// ```
    /// use penin_artifacts::{Deque, Map, Value};
    /// let mut dict = Map::new();
    /// dict.insert("items", Value::Array((1..=4).map(|i| Value::from(i64::from(i))).collect()));
    /// dict.insert("maxlen", Value::from(2_i64));
    /// let deque = Deque::<Value>::from_dict(dict).unwrap();
    /// assert_eq!(deque.iter().cloned().collect::<Vec<_>>(), [Value::from(3_i64), Value::from(4_i64)]);
    /// ```
    pub fn from_dict(mut dict: Map) -> Result<Self> {
        let maxlen = match dict.shift_remove("maxlen") {
            None | Some(Value::Null) => None,
            // Bounds beyond i64 (which Python cannot take) still read back when a `usize`
            // holds them, so that whatever penin writes, penin reads.
            Some(Value::Number(n @ (Number::Int(_) | Number::Big(_)))) => {
                Some(n.to_string().parse::<usize>().map_err(|_| Error::Shape {
                    path: "maxlen".to_owned(),
                    expected: "null or a non-negative integer",
                    found: format!("{n}"),
                })?)
            }
            Some(other) => return Err(shape("maxlen", "null or a non-negative integer", &other)),
        };
        let items = match dict.shift_remove("items") {
            Some(Value::Array(items)) => items,
            Some(other) => return Err(shape("items", "an array", &other)),
            None => {
                return Err(Error::Shape {
                    path: "items".to_owned(),
                    expected: "an array",
                    found: "nothing (the key is missing)".to_owned(),
                });
            }
        };
        dict.shift_remove("__type__");
        let mut deque = Deque::from_vec(items, maxlen);
        *deque.extra_mut() = dict;
        Ok(deque)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Number(Number::Float(f))
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(Number::Int(n))
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Self {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s.into())
    }
}

impl From<Text> for Value {
    fn from(s: Text) -> Self {
        Value::String(s)
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Self {
        Value::Object(Box::new(map))
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::Array(items)
    }
}

impl From<NumericVectorArtifact> for Value {
    fn from(a: NumericVectorArtifact) -> Self {
        Value::Artifact(Box::new(a))
    }
}

impl From<Deque<Value>> for Value {
    fn from(d: Deque<Value>) -> Self {
        Value::Deque(Box::new(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(pairs: Vec<(&str, Value)>) -> Map {
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn deque_dict_round_trip_with_and_without_maxlen() {
        for maxlen in [None, Some(0), Some(2), Some(1000)] {
            let deque = Deque::from_items((0..5).map(Value::from), maxlen);
            let dict = deque.to_dict();
            assert_eq!(
                dict["maxlen"],
                maxlen.map_or(Value::Null, |n| Value::from(i64::try_from(n).unwrap()))
            );
            assert_eq!(Deque::<Value>::from_dict(dict).unwrap(), deque);
        }
    }

    #[test]
    fn deque_from_dict_errors() {
        let rows: Vec<(Map, &str)> = vec![
            (
                dict(vec![]),
                "items: expected an array, found nothing (the key is missing)",
            ),
            (
                dict(vec![("items", Value::from(5_i64))]),
                "items: expected an array, found an integer",
            ),
            (
                dict(vec![
                    ("items", Value::Array(vec![])),
                    ("maxlen", Value::from(-1_i64)),
                ]),
                "maxlen: expected null or a non-negative integer, found -1",
            ),
            (
                dict(vec![
                    ("items", Value::Array(vec![])),
                    ("maxlen", Value::from(3.0)),
                ]),
                "maxlen: expected null or a non-negative integer, found a float",
            ),
        ];
        for (input, message) in rows {
            assert_eq!(
                Deque::<Value>::from_dict(input).unwrap_err().to_string(),
                message
            );
        }
    }

    #[test]
    fn map_keeps_first_position_and_last_value() {
        let mut map = Map::new();
        map.insert("b", Value::from(1_i64));
        map.insert("a", Value::from(2_i64));
        map.insert("b", Value::from(3_i64));
        let pairs: Vec<_> = map.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert_eq!(
            pairs,
            [("b", Value::from(3_i64)), ("a", Value::from(2_i64))]
        );
    }
}
