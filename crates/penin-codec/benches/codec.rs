//! Codec throughput in MB/s of seed-format text: decode (`Document::decode`) and encode
//! (`to_vec`), on a float-heavy state (embeddings) and a text-heavy one (task records with
//! escaped, non-ASCII strings).
//!
//! ```text
//! cargo bench -p penin-codec --bench codec
//! ```

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use penin_codec::{Document, Map, NumericVectorArtifact, Value};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    #[allow(clippy::cast_precision_loss)]
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 52) as f64 - 1.0
    }
}

/// 1,000 embeddings of 384 floats, as an agent's memory holds them.
fn float_heavy() -> Document {
    let mut rng = Rng(7);
    let mut doc = Document::default();
    for i in 0..1000_i64 {
        let mut metadata = Map::new();
        metadata.insert("source", Value::from("bench"));
        metadata.insert("index", Value::from(i));
        let vector: Vec<f64> = (0..384).map(|_| rng.unit()).collect();
        doc.knowledge_base.insert(
            format!("embedding_{i}"),
            NumericVectorArtifact::new(vector).with_metadata(metadata),
        );
    }
    doc
}

/// 1,000 task records full of prose, quotes, control characters and non-ASCII text.
fn text_heavy() -> Document {
    let mut rng = Rng(11);
    let words = [
        "evolution",
        "avaliação",
        "Ω-META",
        "naïve",
        "\"quoted\"",
        "tab\there",
        "línea\nnueva",
        "🚀",
        "日本語",
    ];
    let mut doc = Document::default();
    for i in 0..1000_i64 {
        let mut task = Map::new();
        task.insert("task_id", Value::from(i));
        for field in ["summary", "notes", "plan"] {
            let text: Vec<&str> = (0..40)
                .map(|_| words[usize::try_from(rng.next() % words.len() as u64).unwrap()])
                .collect();
            task.insert(field, Value::from(text.join(" ")));
        }
        doc.task_history.push_back(Value::from(task));
    }
    doc
}

fn bench(c: &mut Criterion) {
    for (name, doc) in [("float-heavy", float_heavy()), ("text-heavy", text_heavy())] {
        let bytes = penin_codec::to_vec(&doc);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.sample_size(20);
        group.bench_function("decode", |b| {
            b.iter(|| Document::decode(black_box(&bytes), Some(1000)).unwrap());
        });
        group.bench_function("encode", |b| {
            b.iter(|| penin_codec::to_vec(black_box(&doc)));
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
