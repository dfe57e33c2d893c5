//! A change to a state, as one journal record: its kind byte and its payload.
//!
//! | kind | change | payload |
//! |---|---|---|
//! | 1 | `add_knowledge` | key length `u32`, key (UTF-8), dimension count `u32`, the vector as little-endian `f64`s, then the rest of the artifact object (`{"metadata":{...}}` and any extra keys) in the compact seed encoding |
//! | 2 | `add_task` | the task record in the compact seed encoding |
//! | 3 | `add_score` | the score in the compact seed encoding (an integer of any size stays exact) |
//!
//! The compact seed encoding is the seed format without whitespace:
//! [`penin_codec::to_vec_compact`], read back with [`penin_codec::from_slice`].

use penin_artifacts::{Map, Number, NumericVectorArtifact, Value};

use crate::Orchestrator;

/// One change to a state.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Change {
    /// Stores an artifact under a key, replacing (in place) any artifact there.
    AddKnowledge {
        /// The key.
        key: String,
        /// The artifact.
        artifact: NumericVectorArtifact,
    },
    /// Appends a task record to the task history.
    AddTask(Value),
    /// Appends a score to the score history.
    AddScore(Number),
}

/// Kind byte of [`Change::AddKnowledge`].
pub const ADD_KNOWLEDGE: u8 = 1;
/// Kind byte of [`Change::AddTask`].
pub const ADD_TASK: u8 = 2;
/// Kind byte of [`Change::AddScore`].
pub const ADD_SCORE: u8 = 3;

impl Change {
    /// Its kind byte in the journal.
    pub fn kind(&self) -> u8 {
        match self {
            Change::AddKnowledge { .. } => ADD_KNOWLEDGE,
            Change::AddTask(_) => ADD_TASK,
            Change::AddScore(_) => ADD_SCORE,
        }
    }

    /// Its name, as the line protocol and the ledger write it.
    pub fn name(&self) -> &'static str {
        match self {
            Change::AddKnowledge { .. } => "add_knowledge",
            Change::AddTask(_) => "add_task",
            Change::AddScore(_) => "add_score",
        }
    }

    /// Appends its payload to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Change::AddKnowledge { key, artifact } => {
                out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(&(artifact.vector.len() as u32).to_le_bytes());
                out.reserve(artifact.vector.len() * 8);
                for x in &artifact.vector {
                    out.extend_from_slice(&x.to_le_bytes());
                }
                let mut rest = Map::with_capacity(1 + artifact.extra().len());
                rest.insert("metadata", Value::from(artifact.metadata.clone()));
                for (k, v) in artifact.extra() {
                    rest.insert(k.clone(), v.clone());
                }
                out.extend_from_slice(&penin_codec::to_vec_compact(&Value::from(rest)));
            }
            Change::AddTask(task) => out.extend_from_slice(&penin_codec::to_vec_compact(task)),
            Change::AddScore(score) => {
                out.extend_from_slice(&penin_codec::to_vec_compact(&Value::Number(score.clone())));
            }
        }
    }

    /// Reads a change back from its kind and payload; the error says what is wrong.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Change, String> {
        match kind {
            ADD_KNOWLEDGE => {
                let mut at = 0;
                let key_len = take_u32(payload, &mut at, "the key's length")? as usize;
                let key = payload
                    .get(at..at + key_len)
                    .ok_or("the key runs past the payload")?;
                let key = std::str::from_utf8(key)
                    .map_err(|e| format!("the key is not UTF-8: {e}"))?
                    .to_owned();
                at += key_len;
                let dimensions = take_u32(payload, &mut at, "the vector's length")? as usize;
                let bytes = payload
                    .get(at..at + dimensions * 8)
                    .ok_or("the vector runs past the payload")?;
                let vector: Vec<f64> = bytes
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
                    .collect();
                at += dimensions * 8;
                let rest = match penin_codec::from_slice::<Value>(&payload[at..]) {
                    Ok(Value::Object(map)) => *map,
                    Ok(other) => {
                        return Err(format!(
                            "the artifact's metadata is {}, not an object",
                            other.kind()
                        ));
                    }
                    Err(e) => return Err(format!("the artifact's metadata: {e}")),
                };
                let artifact =
                    NumericVectorArtifact::from_parts(vector, rest).map_err(|e| e.to_string())?;
                Ok(Change::AddKnowledge { key, artifact })
            }
            ADD_TASK => penin_codec::from_slice::<Value>(payload)
                .map(Change::AddTask)
                .map_err(|e| format!("the task record: {e}")),
            ADD_SCORE => match penin_codec::from_slice::<Value>(payload) {
                Ok(Value::Number(n)) => Ok(Change::AddScore(n)),
                Ok(other) => Err(format!("the score is {}, not a number", other.kind())),
                Err(e) => Err(format!("the score: {e}")),
            },
            other => Err(format!(
                "unknown kind {other} (a newer penin may have written it)"
            )),
        }
    }

    /// Applies it to a state.
    pub fn apply(self, orchestrator: &mut Orchestrator) {
        match self {
            Change::AddKnowledge { key, artifact } => orchestrator.add_knowledge(key, artifact),
            Change::AddTask(task) => orchestrator.add_task(task),
            Change::AddScore(score) => orchestrator.add_score(score),
        }
    }

    /// What the ledger line of this change says besides its sequence numbers: the key and
    /// the number of dimensions of an artifact; nothing for a task or a score.
    pub fn ledger_fields(&self, fields: &mut Map) {
        if let Change::AddKnowledge { key, artifact } = self {
            fields.insert("key", Value::from(key.as_str()));
            fields.insert(
                "dimensions",
                Value::from(i64::try_from(artifact.vector.len()).unwrap_or(i64::MAX)),
            );
        }
    }
}

fn take_u32(payload: &[u8], at: &mut usize, what: &str) -> Result<u32, String> {
    let bytes = payload
        .get(*at..*at + 4)
        .ok_or_else(|| format!("{what} runs past the payload"))?;
    *at += 4;
    Ok(u32::from_le_bytes(bytes.try_into().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(change: &Change) -> Change {
        let mut payload = Vec::new();
        change.encode(&mut payload);
        Change::decode(change.kind(), &payload).unwrap()
    }

    #[test]
    fn changes_round_trip_bit_for_bit() {
        let mut metadata = Map::new();
        metadata.insert("source", Value::from("é \u{1F600}"));
        let mut artifact =
            NumericVectorArtifact::new(vec![0.1, -0.0, f64::NAN, f64::INFINITY, 1e-310])
                .with_metadata(metadata);
        artifact.extra_mut().insert("other", Value::from(3_i64));
        let changes = [
            Change::AddKnowledge {
                key: "k\u{e9}y".to_owned(),
                artifact,
            },
            Change::AddTask(penin_codec::from_str(r#"{"a":[1,2.5,null,"x"]}"#).unwrap()),
            Change::AddScore(Number::parse_integer("123456789012345678901234567890").unwrap()),
            Change::AddScore(Number::Float(0.85)),
        ];
        for change in &changes {
            let back = round_trip(change);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            change.encode(&mut a);
            back.encode(&mut b);
            assert_eq!(a, b, "{change:?}");
            assert_eq!(back.kind(), change.kind());
        }
        let Change::AddKnowledge { artifact, .. } = round_trip(&changes[0]) else {
            panic!()
        };
        let bits: Vec<u64> = artifact.vector.iter().map(|x| x.to_bits()).collect();
        assert_eq!(
            bits,
            [0.1, -0.0, f64::NAN, f64::INFINITY, 1e-310].map(f64::to_bits)
        );
        assert_eq!(artifact.extra()["other"], Value::from(3_i64));
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        let rows: &[(u8, &[u8], &str)] = &[
            (1, b"\x05\0\0", "the key's length runs past the payload"),
            (1, b"\x05\0\0\0ab", "the key runs past the payload"),
            (
                1,
                b"\x01\0\0\0a\x02\0\0\0",
                "the vector runs past the payload",
            ),
            (
                1,
                b"\x01\0\0\0a\0\0\0\0[]",
                "the artifact's metadata is an array, not an object",
            ),
            (3, b"\"x\"", "the score is a string, not a number"),
            (9, b"", "unknown kind 9 (a newer penin may have written it)"),
        ];
        for (kind, payload, message) in rows {
            assert_eq!(Change::decode(*kind, payload).unwrap_err(), *message);
        }
    }
}
