//! One thread of ChaCha20-Poly1305 on age's 64 KiB payload chunks, sealed and opened with the
//! two implementations the workspace builds: the `chacha20poly1305` crate (what the `age`
//! crate uses) and `aws-lc-rs` (what penin seals and opens age files with).
//!
//! ```text
//! cargo run --release -p penin-formats --example bench_aead [-- MIB]
//! ```
//!
//! Each line is the best of 5 passes over `MIB` MiB (256 unless given), in chunks of a buffer
//! as large as the data (so the chunks come from memory, as in a save, not from one chunk
//! that stays in the cache), in MB/s. It checks first that both give the same bytes.

use std::time::Instant;

use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};

const CHUNK: usize = 64 << 10;
const TAG: usize = 16;
const PASSES: usize = 5;

fn nonce(counter: usize) -> [u8; 12] {
    let mut nonce = [0; 12];
    nonce[3..11].copy_from_slice(&(counter as u64).to_be_bytes());
    nonce
}

/// The shortest of `PASSES` runs of `pass`, in seconds.
fn best(mut pass: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..PASSES {
        let start = Instant::now();
        pass();
        best = best.min(start.elapsed().as_secs_f64());
    }
    best
}

/// Seals every chunk of `buffer` (64 KiB of text, then room for its tag) in place with
/// the `chacha20poly1305` crate.
fn seal_with_rust_crypto(cipher: &ChaCha20Poly1305, buffer: &mut [u8]) {
    for (i, chunk) in buffer.chunks_mut(CHUNK + TAG).enumerate() {
        let (text, tag) = chunk.split_at_mut(CHUNK);
        let sealed = cipher
            .encrypt_in_place_detached(&nonce(i).into(), b"", text)
            .expect("a 64 KiB chunk seals");
        tag.copy_from_slice(&sealed);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args().nth(1).map_or(Ok(256), |a| a.parse())?;
    let chunks = (mib << 20) / CHUNK;
    let key = [7; 32];
    let rust_crypto = ChaCha20Poly1305::new(&key.into());
    let aws_lc = LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, &key).map_err(|_| "aws-lc-rs refused the key")?,
    );
    let mut buffer: Vec<u8> = (0..chunks * (CHUNK + TAG)).map(|i| i as u8).collect();

    // The same sealed chunk from both.
    let plain: Vec<u8> = (0..CHUNK).map(|i| (i * 7) as u8).collect();
    let (mut a, mut b) = (plain.clone(), plain.clone());
    let tag_a = rust_crypto
        .encrypt_in_place_detached(&nonce(3).into(), b"", &mut a)
        .map_err(|_| "seal")?;
    let tag_b = aws_lc
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(3)), Aad::empty(), &mut b)
        .map_err(|_| "seal")?;
    if a != b || tag_a.as_slice() != tag_b.as_ref() {
        return Err("the two implementations seal differently".into());
    }

    let bytes = chunks * CHUNK;
    // MiB to MB (the data is a whole number of chunks, so exactly `mib` MiB).
    let megabytes = f64::from(u32::try_from(mib)?) * 1.048_576;
    let seal_rust_crypto = megabytes / best(|| seal_with_rust_crypto(&rust_crypto, &mut buffer));
    let seal_aws_lc = megabytes
        / best(|| {
            for (i, chunk) in buffer.chunks_mut(CHUNK + TAG).enumerate() {
                let (text, tag) = chunk.split_at_mut(CHUNK);
                let sealed = aws_lc
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce(i)),
                        Aad::empty(),
                        text,
                    )
                    .expect("a 64 KiB chunk seals");
                tag.copy_from_slice(sealed.as_ref());
            }
        });
    // Opening: the chunks sealed last (by aws-lc-rs), into a second buffer with aws-lc-rs,
    // in place with RustCrypto (then sealed back, outside the timing, for the next pass).
    let mut out = vec![0; bytes];
    let open_aws_lc = megabytes
        / best(|| {
            for (i, (chunk, into)) in buffer
                .chunks(CHUNK + TAG)
                .zip(out.chunks_mut(CHUNK))
                .enumerate()
            {
                let (text, tag) = chunk.split_at(CHUNK);
                aws_lc
                    .open_separate_gather(
                        Nonce::assume_unique_for_key(nonce(i)),
                        Aad::empty(),
                        text,
                        tag,
                        into,
                    )
                    .expect("a sealed chunk opens");
            }
        });
    let mut open_rust_crypto = f64::INFINITY;
    for _ in 0..PASSES {
        let start = Instant::now();
        for (i, chunk) in buffer.chunks_mut(CHUNK + TAG).enumerate() {
            let (text, tag) = chunk.split_at_mut(CHUNK);
            rust_crypto
                .decrypt_in_place_detached(&nonce(i).into(), b"", text, (&*tag).into())
                .expect("a sealed chunk opens");
        }
        open_rust_crypto = open_rust_crypto.min(start.elapsed().as_secs_f64());
        seal_with_rust_crypto(&rust_crypto, &mut buffer);
    }
    let open_rust_crypto = megabytes / open_rust_crypto;
    println!("{mib} MiB in 64 KiB chunks, one thread, best of {PASSES} (MB/s):");
    println!(
        "  seal: chacha20poly1305 {seal_rust_crypto:.0}, aws-lc-rs {seal_aws_lc:.0} ({:.2}x)",
        seal_aws_lc / seal_rust_crypto
    );
    println!(
        "  open: chacha20poly1305 {open_rust_crypto:.0}, aws-lc-rs {open_aws_lc:.0} ({:.2}x)",
        open_aws_lc / open_rust_crypto
    );
    Ok(())
}
