//! The cost of sealing: one append (`Writer::push` of a 3 KB change, then `Writer::write`)
//! to a plaintext journal and to a sealed one, without `fdatasync` (the same for both, and
//! it would drown the difference). Also `push` alone (encoding in memory) and opening one
//! sealed record.
//!
//! ```text
//! cargo bench -p penin-history --bench journal
//! ```

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use penin_history::journal::{self, Header, Identity, Seal, Writer};

/// A 3 KB change, as a task record with its text is.
fn change() -> Vec<u8> {
    (0..3072_u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn header() -> Header {
    Header::new(
        0,
        0,
        0,
        Identity {
            size: 0,
            mtime: 0,
            inode: 0,
            xxh3: 0,
        },
    )
}

fn appends(c: &mut Criterion) {
    let change = change();
    let key = age::x25519::Identity::generate();
    let mut group = c.benchmark_group("append 3 KB");
    group.throughput(Throughput::Elements(1));
    for (name, sealed) in [("plain", false), ("sealed", true)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json.journal");
        let seal = sealed.then(|| Seal::generate(&[key.to_public()]).unwrap());
        let mut writer = Writer::create_with(&path, &header(), seal.clone()).unwrap();
        group.bench_function(format!("{name}: push + write"), |b| {
            b.iter(|| {
                writer.push(1, 1, black_box(&change));
                writer.write().unwrap();
            });
        });
        group.bench_function(format!("{name}: push"), |b| {
            let mut frame = Vec::with_capacity(change.len() + 128);
            b.iter(|| {
                frame.clear();
                match &seal {
                    Some(seal) => seal.encode_frame(&mut frame, 1, 1, 1, black_box(&change)),
                    None => journal::encode_frame(&mut frame, 1, 1, 1, black_box(&change)),
                }
                black_box(&frame);
            });
        });
    }
    // Reading back: opening one sealed record of the journal.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json.journal");
    let seal = Seal::generate(&[key.to_public()]).unwrap();
    let mut writer = Writer::create_with(&path, &header(), Some(seal.clone())).unwrap();
    writer.push(1, 1, &change);
    writer.write().unwrap();
    let scan = journal::read(&path).unwrap().unwrap();
    group.bench_function("sealed: open", |b| {
        b.iter(|| {
            black_box(
                scan.records[0]
                    .open(&scan.bytes, Some(&seal), &path)
                    .unwrap(),
            );
        });
    });
    group.finish();
}

criterion_group!(benches, appends);
criterion_main!(benches);
