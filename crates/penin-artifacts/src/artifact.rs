use crate::error::{Error, Result};
use crate::map::Map;
use crate::value::Value;
use crate::vector::Vector;

/// The `__type__` tag of an artifact in a state file.
pub const ARTIFACT_TAG: &str = "NumericVectorArtifact";

/// A numeric vector (an embedding) with metadata, as the seed's Python class.
///
/// `metadata` is an insertion-ordered JSON object, empty by default; it may hold any
/// [`Value`], tagged artifacts and deques included.
#[derive(Clone, Debug, Default)]
pub struct NumericVectorArtifact {
    /// The vector: owned, or a view into the buffer it was loaded from.
    pub vector: Vector,
    /// Free-form metadata, in insertion order.
    pub metadata: Map,
    /// Boxed: nearly every artifact has none, and a knowledge base's entries are 24 bytes
    /// smaller for it (a load of 100,000 artifacts takes 2.4 MB less fresh memory).
    extra: Option<Box<Map>>,
}

/// What [`NumericVectorArtifact::extra`] gives an artifact without extra keys.
static NO_EXTRA: Map = Map::new();

impl PartialEq for NumericVectorArtifact {
    /// Equal vectors, metadata and extra keys (no extra keys and an emptied map of them are
    /// the same).
    fn eq(&self, other: &Self) -> bool {
        self.vector == other.vector
            && self.metadata == other.metadata
            && self.extra() == other.extra()
    }
}

impl NumericVectorArtifact {
    /// An artifact with empty metadata.
    #[must_use]
    pub fn new(vector: impl Into<Vector>) -> Self {
        NumericVectorArtifact {
            vector: vector.into(),
            metadata: Map::new(),
            extra: None,
        }
    }

    /// Replaces the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Map) -> Self {
        self.metadata = metadata;
        self
    }

    /// The seed's `to_dict`: `{"__type__": "NumericVectorArtifact", "vector": [...],
    /// "metadata": {...}}`, then any extra keys the artifact was read with.
    ///
    /// ```
    /// use penin_artifacts::{NumericVectorArtifact, Value};
    /// let dict = NumericVectorArtifact::new(vec![0.5]).to_dict();
    /// let keys: Vec<_> = dict.keys().map(|k| k.as_str()).collect();
    /// assert_eq!(keys, ["__type__", "vector", "metadata"]);
    /// assert_eq!(dict["vector"], Value::Array(vec![Value::from(0.5)]));
    /// ```
    #[must_use]
    pub fn to_dict(&self) -> Map {
        let mut map = Map::with_capacity(3 + self.extra().len());
        map.insert("__type__", Value::from(ARTIFACT_TAG));
        map.insert(
            "vector",
            Value::Array(self.vector.iter().map(|&f| Value::from(f)).collect()),
        );
        map.insert("metadata", Value::from(self.metadata.clone()));
        for (k, v) in self.extra() {
            map.insert(k.clone(), v.clone());
        }
        map
    }

    /// The seed's `from_dict`: reads `vector` (required: numbers, integers only when a float
    /// holds them exactly) and `metadata` (optional: an object, or `null` for empty). Other
    /// keys but `__type__` are kept as extras; `__type__` itself is not checked here.
    ///
    /// ```
    /// use penin_artifacts::{Map, NumericVectorArtifact, Value};
    /// let mut dict = Map::new();
    /// dict.insert("vector", Value::Array(vec![Value::from(1.5), Value::from("x")]));
    /// let err = NumericVectorArtifact::from_dict(dict).unwrap_err();
    /// assert_eq!(err.to_string(), "vector[1]: expected a number, found a string");
    /// ```
    pub fn from_dict(mut dict: Map) -> Result<Self> {
        let vector = match dict.shift_remove("vector") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| vector_element(v).map_err(|e| e.under(&format!("vector[{i}]"))))
                .collect::<Result<Vec<f64>>>()?,
            Some(other) => return Err(shape("vector", "an array of numbers", &other)),
            None => {
                return Err(Error::Shape {
                    path: "vector".to_owned(),
                    expected: "an array of numbers",
                    found: "nothing (the key is missing)".to_owned(),
                });
            }
        };
        Self::from_parts(vector, dict)
    }

    /// Builds an artifact from a vector already read and the rest of its object: `metadata`
    /// (an object, `null` or missing for empty), `__type__` (dropped, not checked) and any
    /// other keys (kept as extras). A `vector` key left in `rest` is dropped.
    pub fn from_parts(vector: impl Into<Vector>, mut rest: Map) -> Result<Self> {
        let metadata = match rest.shift_remove("metadata") {
            Some(Value::Object(map)) => *map,
            Some(Value::Null) | None => Map::new(),
            Some(other) => return Err(shape("metadata", "an object", &other)),
        };
        rest.shift_remove("__type__");
        rest.shift_remove("vector");
        Ok(NumericVectorArtifact {
            vector: vector.into(),
            metadata,
            extra: (!rest.is_empty()).then(|| Box::new(rest)),
        })
    }

    /// Keys a file's artifact object carried beyond `__type__`, `vector` and `metadata`;
    /// kept so that a re-save loses nothing. Empty for artifacts made in code.
    #[must_use]
    pub fn extra(&self) -> &Map {
        self.extra.as_deref().unwrap_or(&NO_EXTRA)
    }

    /// Mutable access to the extra keys.
    pub fn extra_mut(&mut self) -> &mut Map {
        self.extra.get_or_insert_with(Box::default)
    }
}

/// One element of a vector: a float, or an integer that a float holds exactly.
pub(crate) fn vector_element(value: &Value) -> Result<f64> {
    match value {
        Value::Number(n) => n.to_f64_exact().ok_or_else(|| Error::Shape {
            path: String::new(),
            expected: "a number that a 64-bit float holds exactly",
            found: format!("the integer {n}"),
        }),
        other => Err(shape("", "a number", other)),
    }
}

pub(crate) fn shape(path: &str, expected: &'static str, found: &Value) -> Error {
    Error::Shape {
        path: path.to_owned(),
        expected,
        found: found.kind().to_owned(),
    }
}

impl Error {
    /// Puts a path segment in front of a shape error's path.
    #[must_use]
    pub fn under(self, segment: &str) -> Error {
        match self {
            Error::Shape {
                path,
                expected,
                found,
            } => Error::Shape {
                path: if path.is_empty() {
                    segment.to_owned()
                } else if path.starts_with('[') {
                    format!("{segment}{path}")
                } else {
                    format!("{segment}.{path}")
                },
                expected,
                found,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(pairs: Vec<(&str, Value)>) -> Map {
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn to_dict_then_from_dict_round_trips() {
        let mut metadata = Map::new();
        metadata.insert("source", Value::from("test"));
        metadata.insert("dim", Value::from(3_i64));
        let artifact =
            NumericVectorArtifact::new(vec![0.1, -0.0, f64::INFINITY]).with_metadata(metadata);
        let back = NumericVectorArtifact::from_dict(artifact.to_dict()).unwrap();
        assert_eq!(back, artifact);
    }

    #[test]
    fn from_dict_defaults_and_extras() {
        let a = NumericVectorArtifact::from_dict(dict(vec![
            ("__type__", Value::from(ARTIFACT_TAG)),
            (
                "vector",
                Value::Array(vec![Value::from(1_i64), Value::from(2.5)]),
            ),
            ("metadata", Value::Null),
            ("id", Value::from("e1")),
        ]))
        .unwrap();
        assert_eq!(a.vector, [1.0, 2.5]);
        assert!(a.metadata.is_empty());
        assert_eq!(a.extra().get("id"), Some(&Value::from("e1")));
        let keys: Vec<_> = a.to_dict().keys().cloned().collect();
        assert_eq!(keys, ["__type__", "vector", "metadata", "id"]);
    }

    #[test]
    fn extra_keys_are_empty_until_given_and_an_emptied_map_equals_none() {
        let plain = NumericVectorArtifact::new(vec![1.0]);
        assert!(plain.extra().is_empty());
        let mut emptied = plain.clone();
        emptied.extra_mut().insert("note", Value::from("x"));
        assert_ne!(emptied, plain);
        assert_eq!(emptied.extra().get("note"), Some(&Value::from("x")));
        emptied.extra_mut().shift_remove("note");
        assert_eq!(emptied, plain);
        assert_eq!(emptied.to_dict(), plain.to_dict());
        // An artifact is its vector, its metadata and one pointer for extras: 24 + 32 + 8.
        assert_eq!(std::mem::size_of::<NumericVectorArtifact>(), 64);
    }

    #[test]
    fn from_dict_errors_name_the_field() {
        let rows: Vec<(Map, &str)> = vec![
            (
                dict(vec![]),
                "vector: expected an array of numbers, found nothing (the key is missing)",
            ),
            (
                dict(vec![("vector", Value::from("x"))]),
                "vector: expected an array of numbers, found a string",
            ),
            (
                dict(vec![("vector", Value::Array(vec![Value::Null]))]),
                "vector[0]: expected a number, found null",
            ),
            (
                dict(vec![(
                    "vector",
                    Value::Array(vec![Value::from(9_007_199_254_740_993_i64)]),
                )]),
                "vector[0]: expected a number that a 64-bit float holds exactly, found the integer 9007199254740993",
            ),
            (
                dict(vec![
                    ("vector", Value::Array(vec![])),
                    ("metadata", Value::Array(vec![])),
                ]),
                "metadata: expected an object, found an array",
            ),
        ];
        for (input, message) in rows {
            assert_eq!(
                NumericVectorArtifact::from_dict(input)
                    .unwrap_err()
                    .to_string(),
                message
            );
        }
    }
}
