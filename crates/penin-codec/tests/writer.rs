//! The writer, rule by rule (DESIGN.md, "The seed format, exactly"): every row is a value
//! and the exact bytes Python's `json.dump(value, cls=StateEncoder, indent=2)` writes for it.

use penin_codec::{Deque, Document, Map, Number, NumericVectorArtifact, Style, Value};

mod common;

use common::{arr, big, float, int, map, obj, s};

fn artifact(vector: Vec<f64>, metadata: Vec<(&str, Value)>) -> NumericVectorArtifact {
    NumericVectorArtifact::new(vector).with_metadata(map(metadata))
}

fn deque(items: Vec<Value>, maxlen: Option<usize>) -> Deque<Value> {
    Deque::from_items(items, maxlen)
}

fn pretty(value: &Value) -> String {
    String::from_utf8(penin_codec::to_vec(value)).unwrap()
}

fn compact(value: &Value) -> String {
    String::from_utf8(penin_codec::to_vec_compact(value)).unwrap()
}

/// Checks each row through `to_vec`, and through `to_writer` (the chunked path) as well.
fn check(rows: Vec<(Value, &str)>) {
    for (value, expected) in rows {
        assert_eq!(pretty(&value), expected, "{value:?}");
        let mut streamed = Vec::new();
        penin_codec::to_writer(&mut streamed, &value).unwrap();
        assert_eq!(String::from_utf8(streamed).unwrap(), expected, "{value:?}");
    }
}

#[test]
fn layout_indents_two_spaces_per_level() {
    let rows: Vec<(Value, &str)> = vec![
        (Value::Null, "null"),
        (Value::Bool(true), "true"),
        (Value::Bool(false), "false"),
        (int(7), "7"),
        (s("x"), r#""x""#),
        (arr(vec![int(1)]), "[\n  1\n]"),
        (arr(vec![int(1), int(2)]), "[\n  1,\n  2\n]"),
        (obj(vec![("a", int(1))]), "{\n  \"a\": 1\n}"),
        (
            obj(vec![("a", int(1)), ("b", Value::Null)]),
            "{\n  \"a\": 1,\n  \"b\": null\n}",
        ),
        (
            arr(vec![arr(vec![arr(vec![int(1)])])]),
            "[\n  [\n    [\n      1\n    ]\n  ]\n]",
        ),
        (
            obj(vec![
                ("a", arr(vec![int(1), obj(vec![("b", arr(vec![]))])])),
                ("c", obj(vec![])),
            ]),
            r#"{
  "a": [
    1,
    {
      "b": []
    }
  ],
  "c": {}
}"#,
        ),
        (
            obj(vec![(
                "l1",
                obj(vec![(
                    "l2",
                    obj(vec![("l3", obj(vec![("l4", arr(vec![s("deep")]))]))]),
                )]),
            )]),
            r#"{
  "l1": {
    "l2": {
      "l3": {
        "l4": [
          "deep"
        ]
      }
    }
  }
}"#,
        ),
    ];
    check(rows);
}

#[test]
fn empty_containers_are_written_closed() {
    let rows: Vec<(Value, &str)> = vec![
        (arr(vec![]), "[]"),
        (obj(vec![]), "{}"),
        (arr(vec![arr(vec![]), obj(vec![])]), "[\n  [],\n  {}\n]"),
        (
            obj(vec![("a", arr(vec![])), ("b", obj(vec![]))]),
            "{\n  \"a\": [],\n  \"b\": {}\n}",
        ),
        (
            Value::from(NumericVectorArtifact::new(vec![])),
            "{\n  \"__type__\": \"NumericVectorArtifact\",\n  \"vector\": [],\n  \"metadata\": {}\n}",
        ),
        (
            Value::from(deque(vec![], Some(3))),
            "{\n  \"__type__\": \"deque\",\n  \"items\": [],\n  \"maxlen\": 3\n}",
        ),
    ];
    check(rows);
}

#[test]
fn output_has_no_trailing_newline_or_space() {
    for value in [
        int(1),
        arr(vec![]),
        arr(vec![int(1)]),
        obj(vec![("a", obj(vec![("b", int(1))]))]),
        Value::from(deque(vec![int(1)], None)),
    ] {
        let text = pretty(&value);
        assert!(!text.ends_with('\n'), "{text:?}");
        assert!(
            text.lines().all(|line| !line.ends_with(' ')),
            "trailing space in {text:?}"
        );
    }
    let text = String::from_utf8(penin_codec::to_vec(&Document::default())).unwrap();
    assert!(text.ends_with("\n}") && !text.ends_with('\n'), "{text:?}");
}

#[test]
fn strings_escape_as_ensure_ascii() {
    let rows: &[(&str, &str)] = &[
        ("", r#""""#),
        ("plain text", r#""plain text""#),
        (
            " !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~",
            r#"" !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~""#,
        ),
        ("\"", r#""\"""#),
        ("\\", r#""\\""#),
        ("\n", r#""\n""#),
        ("\r", r#""\r""#),
        ("\t", r#""\t""#),
        ("\u{8}", r#""\b""#),
        ("\u{c}", r#""\f""#),
        ("\u{0}", r#""\u0000""#),
        ("\u{1}", r#""\u0001""#),
        ("\u{b}", r#""\u000b""#),
        ("\u{1b}", r#""\u001b""#),
        ("\u{1f}", r#""\u001f""#),
        ("\u{7f}", r#""\u007f""#),
        ("\u{80}", r#""\u0080""#),
        ("\u{a0}", r#""\u00a0""#),
        ("é", r#""\u00e9""#),
        ("Ω", r#""\u03a9""#),
        ("\u{abcd}", r#""\uabcd""#),
        ("\u{2028}", r#""\u2028""#),
        ("\u{2029}", r#""\u2029""#),
        ("\u{feff}", r#""\ufeff""#),
        ("\u{fffd}", r#""\ufffd""#),
        ("\u{ffff}", r#""\uffff""#),
        ("😀", r#""\ud83d\ude00""#),
        ("\u{10000}", r#""\ud800\udc00""#),
        ("\u{10ffff}", r#""\udbff\udfff""#),
        (
            "a\"b\\c\nd\u{e9}\u{1f600}~\u{7f}\u{0}\u{2028}",
            r#""a\"b\\c\nd\u00e9\ud83d\ude00~\u007f\u0000\u2028""#,
        ),
        ("ação 🚀", r#""a\u00e7\u00e3o \ud83d\ude80""#),
    ];
    for &(input, expected) in rows {
        assert_eq!(pretty(&s(input)), expected, "{input:?}");
        assert_eq!(compact(&s(input)), expected, "{input:?}");
    }
}

#[test]
fn keys_escape_like_strings() {
    let rows: Vec<(Value, &str)> = vec![
        (obj(vec![("k\"ey\n", int(1))]), "{\n  \"k\\\"ey\\n\": 1\n}"),
        (
            obj(vec![("café ☕", int(1))]),
            "{\n  \"caf\\u00e9 \\u2615\": 1\n}",
        ),
        (obj(vec![("", int(1))]), "{\n  \"\": 1\n}"),
    ];
    check(rows);
}

#[test]
#[allow(clippy::unreadable_literal)]
fn floats_are_python_repr() {
    let rows: &[(f64, &str)] = &[
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (-1.0, "-1.0"),
        (0.5, "0.5"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (100.0, "100.0"),
        (123.456, "123.456"),
        (0.30000000000000004, "0.30000000000000004"),
        (1e-05, "1e-05"),
        (-1e-05, "-1e-05"),
        (1.5e-05, "1.5e-05"),
        (2.5e-07, "2.5e-07"),
        (0.0001, "0.0001"),
        (0.00012, "0.00012"),
        (1e-100, "1e-100"),
        (1e15, "1000000000000000.0"),
        (9999999999999998.0, "9999999999999998.0"),
        (1e16, "1e+16"),
        (1.5e16, "1.5e+16"),
        (123456789012345680.0, "1.2345678901234568e+17"),
        (123456789.0, "123456789.0"),
        (1e21, "1e+21"),
        (1e22, "1e+22"),
        (1e100, "1e+100"),
        (-1e100, "-1e+100"),
        (5e-324, "5e-324"),
        (-5e-324, "-5e-324"),
        (2.2250738585072014e-308, "2.2250738585072014e-308"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-1.7976931348623157e308, "-1.7976931348623157e+308"),
        (9007199254740992.0, "9007199254740992.0"),
        (1658206780088562.2, "1658206780088562.2"),
        (f64::NAN, "NaN"),
        (-f64::NAN, "NaN"),
        (f64::INFINITY, "Infinity"),
        (f64::NEG_INFINITY, "-Infinity"),
    ];
    for &(f, expected) in rows {
        assert_eq!(pretty(&float(f)), expected, "{f:e}");
        assert_eq!(compact(&float(f)), expected, "{f:e}");
        // The same spelling inside an artifact's vector and a score history.
        let in_vector = pretty(&Value::from(NumericVectorArtifact::new(vec![f])));
        assert!(
            in_vector.contains(&format!("\"vector\": [\n    {expected}\n  ]")),
            "{in_vector}"
        );
    }
}

#[test]
fn integers_are_plain_decimal_of_any_size() {
    let rows: Vec<(Value, &str)> = vec![
        (int(0), "0"),
        (int(-1), "-1"),
        (int(42), "42"),
        (int(1_000_000), "1000000"),
        (int(i64::MAX), "9223372036854775807"),
        (int(i64::MIN), "-9223372036854775808"),
        (big("9223372036854775808"), "9223372036854775808"),
        (big("-9223372036854775809"), "-9223372036854775809"),
        (
            big("123456789012345678901234567890"),
            "123456789012345678901234567890",
        ),
    ];
    check(rows);
    let nines = "9".repeat(300);
    check(vec![(big(&nines), nines.as_str())]);
    let negative = format!("-{}", "1".repeat(4300));
    check(vec![(big(&negative), negative.as_str())]);
}

#[test]
fn integers_and_floats_stay_apart() {
    let rows: Vec<(Value, &str)> = vec![
        (int(1), "1"),
        (float(1.0), "1.0"),
        (int(0), "0"),
        (float(0.0), "0.0"),
        (float(-0.0), "-0.0"),
        (
            arr(vec![int(1), float(1.0), int(-3), float(-3.0)]),
            "[\n  1,\n  1.0,\n  -3,\n  -3.0\n]",
        ),
        (
            obj(vec![("n", int(2)), ("f", float(2.0))]),
            "{\n  \"n\": 2,\n  \"f\": 2.0\n}",
        ),
    ];
    check(rows);
}

#[test]
fn object_keys_keep_insertion_order() {
    let mut m = Map::new();
    for key in ["zeta", "alpha", "mid", "Alpha", "0"] {
        m.insert(key.to_owned(), s(key));
    }
    // Re-inserting a key keeps its first place, as a Python dict does.
    m.insert("zeta", int(9));
    let rows: Vec<(Value, &str)> = vec![(
        Value::from(m),
        r#"{
  "zeta": 9,
  "alpha": "alpha",
  "mid": "mid",
  "Alpha": "Alpha",
  "0": "0"
}"#,
    )];
    check(rows);
}

#[test]
fn artifact_keys_are_type_vector_metadata_then_extras() {
    let mut with_extras = artifact(vec![0.5], vec![("b", int(1)), ("a", int(2))]);
    with_extras.extra_mut().insert("id", s("e1"));
    with_extras.extra_mut().insert("created", float(1.5));
    let rows: Vec<(Value, &str)> = vec![
        (
            Value::from(artifact(vec![1.0, -0.0, 1e-05], vec![])),
            r#"{
  "__type__": "NumericVectorArtifact",
  "vector": [
    1.0,
    -0.0,
    1e-05
  ],
  "metadata": {}
}"#,
        ),
        (
            Value::from(with_extras),
            r#"{
  "__type__": "NumericVectorArtifact",
  "vector": [
    0.5
  ],
  "metadata": {
    "b": 1,
    "a": 2
  },
  "id": "e1",
  "created": 1.5
}"#,
        ),
    ];
    check(rows);
}

#[test]
fn deque_keys_are_type_items_maxlen_then_extras() {
    let mut with_extras = deque(vec![s("x")], Some(2));
    with_extras.extra_mut().insert("note", s("kept"));
    let rows: Vec<(Value, &str)> = vec![
        (
            Value::from(deque(vec![int(1), float(2.0)], None)),
            "{\n  \"__type__\": \"deque\",\n  \"items\": [\n    1,\n    2.0\n  ],\n  \"maxlen\": null\n}",
        ),
        (
            Value::from(deque(vec![], None)),
            "{\n  \"__type__\": \"deque\",\n  \"items\": [],\n  \"maxlen\": null\n}",
        ),
        (
            Value::from(deque(vec![int(1)], Some(0))),
            "{\n  \"__type__\": \"deque\",\n  \"items\": [],\n  \"maxlen\": 0\n}",
        ),
        (
            // Built from more items than its bound: only the newest are written.
            Value::from(deque(vec![int(1), int(2), int(3), int(4)], Some(2))),
            "{\n  \"__type__\": \"deque\",\n  \"items\": [\n    3,\n    4\n  ],\n  \"maxlen\": 2\n}",
        ),
        (
            Value::from(with_extras),
            "{\n  \"__type__\": \"deque\",\n  \"items\": [\n    \"x\"\n  ],\n  \"maxlen\": 2,\n  \"note\": \"kept\"\n}",
        ),
    ];
    check(rows);
}

#[test]
fn typed_encoders_match_value_encoding() {
    let a = artifact(vec![0.25], vec![("k", s("v"))]);
    assert_eq!(
        penin_codec::to_vec(&a),
        penin_codec::to_vec(&Value::from(a.clone()))
    );
    let d = deque(vec![int(1)], Some(4));
    assert_eq!(
        penin_codec::to_vec(&d),
        penin_codec::to_vec(&Value::from(d.clone()))
    );
}

#[test]
fn document_writes_seed_keys_then_extras() {
    let mut doc = Document::default();
    doc.knowledge_base
        .insert("e1".to_owned(), artifact(vec![0.1], vec![]));
    doc.task_history.push_back(obj(vec![("task_id", int(1))]));
    doc.score_history.push_back(Number::Float(0.85));
    doc.score_history.push_back(Number::Int(1));
    doc.extra.insert("version", int(2));
    doc.extra.insert("notes", arr(vec![]));
    let expected = r#"{
  "knowledge_base": {
    "e1": {
      "__type__": "NumericVectorArtifact",
      "vector": [
        0.1
      ],
      "metadata": {}
    }
  },
  "task_history": {
    "__type__": "deque",
    "items": [
      {
        "task_id": 1
      }
    ],
    "maxlen": 1000
  },
  "score_history": {
    "__type__": "deque",
    "items": [
      0.85,
      1
    ],
    "maxlen": 1000
  },
  "version": 2,
  "notes": []
}"#;
    assert_eq!(
        String::from_utf8(penin_codec::to_vec(&doc)).unwrap(),
        expected
    );

    let empty = r#"{
  "knowledge_base": {},
  "task_history": {
    "__type__": "deque",
    "items": [],
    "maxlen": 1000
  },
  "score_history": {
    "__type__": "deque",
    "items": [],
    "maxlen": 1000
  }
}"#;
    assert_eq!(
        String::from_utf8(penin_codec::to_vec(&Document::default())).unwrap(),
        empty
    );
    let unbounded = String::from_utf8(penin_codec::to_vec(&Document::new(None))).unwrap();
    assert_eq!(unbounded, empty.replace("1000", "null"));
}

#[test]
fn compact_style_is_one_line_without_spaces() {
    let mut with_extras = artifact(vec![], vec![]);
    with_extras.extra_mut().insert("id", int(1));
    let rows: Vec<(Value, &str)> = vec![
        (arr(vec![]), "[]"),
        (obj(vec![]), "{}"),
        (
            obj(vec![
                ("a", int(1)),
                ("b", arr(vec![int(1), float(2.0), obj(vec![])])),
                ("c", arr(vec![])),
            ]),
            r#"{"a":1,"b":[1,2.0,{}],"c":[]}"#,
        ),
        (
            arr(vec![
                float(1e-05),
                float(f64::NAN),
                float(-0.0),
                big("-9223372036854775809"),
            ]),
            "[1e-05,NaN,-0.0,-9223372036854775809]",
        ),
        (
            obj(vec![("k e\"y", s("v a\u{e9}l"))]),
            r#"{"k e\"y":"v a\u00e9l"}"#,
        ),
        (
            Value::from(artifact(vec![0.5, 1.0], vec![("m", Value::Null)])),
            r#"{"__type__":"NumericVectorArtifact","vector":[0.5,1.0],"metadata":{"m":null}}"#,
        ),
        (
            Value::from(with_extras),
            r#"{"__type__":"NumericVectorArtifact","vector":[],"metadata":{},"id":1}"#,
        ),
        (
            Value::from(deque(vec![int(1), int(2)], Some(2))),
            r#"{"__type__":"deque","items":[1,2],"maxlen":2}"#,
        ),
        (
            Value::from(deque(vec![], None)),
            r#"{"__type__":"deque","items":[],"maxlen":null}"#,
        ),
    ];
    for (value, expected) in rows {
        assert_eq!(compact(&value), expected, "{value:?}");
        let mut streamed = Vec::new();
        penin_codec::to_writer_styled(&mut streamed, &value, Style::Compact).unwrap();
        assert_eq!(String::from_utf8(streamed).unwrap(), expected);
    }
    let doc = String::from_utf8(penin_codec::to_vec_compact(&Document::new(Some(5)))).unwrap();
    assert_eq!(
        doc,
        r#"{"knowledge_base":{},"task_history":{"__type__":"deque","items":[],"maxlen":5},"score_history":{"__type__":"deque","items":[],"maxlen":5}}"#
    );
}

#[test]
fn large_output_streams_identically() {
    // Larger than the writer's chunk, so `to_writer` hands it over in several pieces.
    let items: Vec<Value> = (0..60_000)
        .map(|i| {
            obj(vec![
                ("i", int(i64::from(i))),
                ("f", float(f64::from(i) / 7.0)),
            ])
        })
        .collect();
    let value = arr(items);
    let whole = penin_codec::to_vec(&value);
    assert!(whole.len() > 1_000_000);
    let mut streamed = Vec::new();
    penin_codec::to_writer(&mut streamed, &value).unwrap();
    assert!(streamed == whole);
}

// The seed's own encoder tests, by name.

#[test]
fn encoder_artifact() {
    let value = artifact(vec![0.1, 0.2, 0.3], vec![("source", s("test"))]);
    assert_eq!(
        String::from_utf8(penin_codec::to_vec(&value)).unwrap(),
        r#"{
  "__type__": "NumericVectorArtifact",
  "vector": [
    0.1,
    0.2,
    0.3
  ],
  "metadata": {
    "source": "test"
  }
}"#
    );
}

#[test]
fn encoder_deque_with_maxlen() {
    let value = deque(vec![int(1), int(2), int(3)], Some(5));
    assert_eq!(
        String::from_utf8(penin_codec::to_vec(&value)).unwrap(),
        r#"{
  "__type__": "deque",
  "items": [
    1,
    2,
    3
  ],
  "maxlen": 5
}"#
    );
}

#[test]
fn encoder_deque_without_maxlen() {
    let value = deque(vec![int(1), int(2), int(3)], None);
    assert_eq!(
        String::from_utf8(penin_codec::to_vec(&value)).unwrap(),
        r#"{
  "__type__": "deque",
  "items": [
    1,
    2,
    3
  ],
  "maxlen": null
}"#
    );
}

#[test]
fn encoder_nested() {
    // An artifact inside a task record, with a deque inside its metadata.
    let best = artifact(
        vec![0.5, -1.0],
        vec![(
            "window",
            Value::from(deque(vec![float(0.25), float(1e-05)], Some(2))),
        )],
    );
    let task = obj(vec![("task_id", int(1)), ("best", Value::from(best))]);
    assert_eq!(
        pretty(&task),
        r#"{
  "task_id": 1,
  "best": {
    "__type__": "NumericVectorArtifact",
    "vector": [
      0.5,
      -1.0
    ],
    "metadata": {
      "window": {
        "__type__": "deque",
        "items": [
          0.25,
          1e-05
        ],
        "maxlen": 2
      }
    }
  }
}"#
    );
    // And the task record inside a bounded history, with an unbounded deque deeper still.
    let inner = artifact(vec![1.5], vec![("w", Value::from(deque(vec![], None)))]);
    let history = deque(
        vec![obj(vec![
            ("task_id", int(1)),
            ("artifact", Value::from(inner)),
        ])],
        Some(10),
    );
    assert_eq!(
        String::from_utf8(penin_codec::to_vec(&history)).unwrap(),
        r#"{
  "__type__": "deque",
  "items": [
    {
      "task_id": 1,
      "artifact": {
        "__type__": "NumericVectorArtifact",
        "vector": [
          1.5
        ],
        "metadata": {
          "w": {
            "__type__": "deque",
            "items": [],
            "maxlen": null
          }
        }
      }
    }
  ],
  "maxlen": 10
}"#
    );
}

/// A knowledge base large enough to be encoded on two threads writes exactly what the
/// one-thread path writes for the same values (through `Value`, which never splits).
#[test]
fn a_large_knowledge_base_encodes_the_same_on_two_threads() {
    use penin_codec::{Document, Map, NumericVectorArtifact};
    for artifacts in [255_i32, 256, 257, 1000, 64 * 7 + 3] {
        let mut doc = Document::default();
        for i in 0..artifacts {
            let mut metadata = Map::new();
            metadata.insert("i", Value::from(i64::from(i)));
            let vector: Vec<f64> = (0..8).map(|j| f64::from(i * 8 + j) / 7.0).collect();
            doc.knowledge_base.insert(
                format!("k{i}"),
                NumericVectorArtifact::new(vector).with_metadata(metadata),
            );
        }
        let bytes = penin_codec::to_vec(&doc);
        let value: Value = penin_codec::from_slice(&bytes).unwrap();
        assert!(
            penin_codec::to_vec(&value) == bytes,
            "{artifacts} artifacts"
        );
        let mut streamed = Vec::new();
        penin_codec::to_writer(&mut streamed, &doc).unwrap();
        assert!(streamed == bytes, "{artifacts} artifacts, streamed");
        // Where the system refuses the second thread, this one writes the same bytes.
        let alone = penin_codec::refusing_helpers(|| penin_codec::to_vec(&doc));
        assert!(
            alone == bytes,
            "{artifacts} artifacts, second thread refused"
        );
        let compact = penin_codec::to_vec_compact(&doc);
        assert!(
            penin_codec::to_vec_compact(&value) == compact,
            "{artifacts} artifacts, compact"
        );
        assert_eq!(penin_codec::from_slice::<Document>(&bytes).unwrap(), doc);
    }
}

/// A bare `Map` writes what the object value of it writes, in both styles.
#[test]
fn a_map_writes_as_its_object() {
    let rows: Vec<Map> = vec![
        Map::new(),
        map(vec![("a", int(1)), ("b", float(-0.0))]),
        map(vec![
            ("nested", obj(vec![("x", arr(vec![s("é"), Value::Null]))])),
            ("t", Value::Artifact(Box::new(artifact(vec![0.5], vec![])))),
        ]),
    ];
    for row in rows {
        let value = Value::Object(Box::new(row.clone()));
        assert_eq!(penin_codec::to_vec(&row), penin_codec::to_vec(&value));
        assert_eq!(
            penin_codec::to_vec_compact(&row),
            penin_codec::to_vec_compact(&value)
        );
    }
}
