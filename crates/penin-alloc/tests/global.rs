//! The allocator as a program's global allocator: what it gives holds what was put there,
//! aligned and zeroed as asked, whichever allocator a block comes from and however often it
//! moves between them.

use penin_alloc::{Allocator, LARGE, from_mimalloc};
use proptest::prelude::*;

#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

/// Bytes that tell every position apart (within 251 of each other).
fn pattern(len: usize, seed: u8) -> impl Iterator<Item = u8> {
    (0..len).map(move |i| (i % 251) as u8 ^ seed)
}

/// Resizes `bytes` to `len` through `realloc`s only: cut to what stays and shrunk, then
/// extended with [`pattern`]`(.., seed)` and shrunk to fit. Gives how many bytes stayed.
fn resize(bytes: &mut Vec<u8>, len: usize, seed: u8) -> usize {
    let keep = bytes.len().min(len);
    bytes.truncate(keep);
    bytes.shrink_to_fit();
    bytes.extend(pattern(len - keep, seed));
    bytes.shrink_to_fit();
    keep
}

#[test]
fn a_vector_keeps_its_bytes_as_it_grows_past_large_and_shrinks_back() {
    let mut bytes: Vec<u8> = pattern(1000, 3).collect();
    // Small to large (mimalloc to the system's), large to larger (the system's own resize),
    // back to small (the system's to mimalloc's): each a `realloc` of the same bytes, which
    // keeps those before the new end.
    let mut expected = bytes.clone();
    for len in [LARGE - 1, LARGE, 3 * LARGE, 40 * LARGE, LARGE - 1, 1000, 10] {
        let seed = len as u8;
        let keep = resize(&mut bytes, len, seed);
        expected.truncate(keep);
        expected.extend(pattern(len - keep, seed));
        assert!(bytes == expected, "{len}");
        assert_eq!(from_mimalloc(bytes.as_ptr()), len < LARGE, "{len}");
    }
}

#[test]
fn small_blocks_are_mimallocs_and_large_ones_the_systems() {
    for len in [1, 16, 4096, LARGE - 1] {
        let block = vec![1_u8; len];
        assert!(from_mimalloc(block.as_ptr()), "{len}");
    }
    for len in [LARGE, LARGE + 1, 10 * LARGE, 200 * LARGE] {
        let block = vec![1_u8; len];
        assert!(!from_mimalloc(block.as_ptr()), "{len}");
    }
    // Threads other than the first take blocks as the first does.
    std::thread::spawn(|| {
        assert!(from_mimalloc(vec![1_u8; 100].as_ptr()));
        assert!(!from_mimalloc(vec![1_u8; LARGE].as_ptr()));
    })
    .join()
    .unwrap();
}

#[test]
fn a_resize_refused_leaves_the_block_as_it_was() {
    // A small block asked to become one no system can give: the other allocator refuses it,
    // and the block stays where it was, with its bytes.
    let mut bytes: Vec<u8> = pattern(5000, 1).collect();
    let before = bytes.as_ptr();
    assert!(bytes.try_reserve_exact(1 << 46).is_err());
    assert_eq!(bytes.as_ptr(), before);
    assert!(bytes.iter().copied().eq(pattern(5000, 1)));
    assert!(from_mimalloc(bytes.as_ptr()));
    // And a large one, whose own allocator refuses it.
    let mut large: Vec<u8> = pattern(2 * LARGE, 2).collect();
    assert!(large.try_reserve_exact(1 << 46).is_err());
    assert!(large.iter().copied().eq(pattern(2 * LARGE, 2)));
    // The vector is still usable.
    bytes.extend(pattern(10, 5));
    assert_eq!(bytes.len(), 5010);
}

#[test]
fn zeroed_blocks_are_zero_even_where_freed_blocks_held_other_bytes() {
    for len in [16, 4096, LARGE - 1, LARGE, 5 * LARGE] {
        // Blocks of the same size, filled and freed, that a zeroed block may reuse (kept
        // from the optimiser by `black_box`).
        for _ in 0..4 {
            drop(std::hint::black_box(vec![0xA5_u8; len]));
        }
        // `vec![0; n]` asks for zeroed memory (`alloc_zeroed`).
        let zeroed = vec![0_u64; len / 8];
        assert!(zeroed.iter().all(|&word| word == 0), "{len}");
    }
}

/// A block aligned to a page.
#[repr(align(4096))]
#[derive(Clone, Copy)]
struct Page([u8; 4096]);

/// A block aligned to a cache line.
#[repr(align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

#[test]
fn blocks_are_aligned_as_asked_on_either_side_of_large() {
    for pages in [1, 2, LARGE / 4096 - 1, LARGE / 4096, LARGE / 4096 + 7] {
        let mut block = vec![Page([1; 4096]); pages];
        assert_eq!(block.as_ptr() as usize % 4096, 0, "{pages} pages");
        // Grown across `LARGE` (or within the system's) by `realloc`, still aligned.
        block.resize(pages * 2 + LARGE / 4096, Page([2; 4096]));
        assert_eq!(block.as_ptr() as usize % 4096, 0, "{pages} pages, grown");
        assert!(block[..pages].iter().all(|page| page.0 == [1; 4096]));
        // Shrunk back below `LARGE` (the system's to mimalloc's), still aligned.
        block.truncate(2);
        block.shrink_to_fit();
        assert_eq!(block.as_ptr() as usize % 4096, 0, "{pages} pages, shrunk");
        assert!(from_mimalloc(block.as_ptr().cast()));
        assert!(block[0].0 == [1; 4096]);
        // Grown within mimalloc's blocks, still aligned.
        block.resize(5, Page([3; 4096]));
        assert_eq!(block.as_ptr() as usize % 4096, 0, "{pages} pages, regrown");
        assert!(block[0].0 == [1; 4096] && block[4].0 == [3; 4096]);
    }
    for lines in [1, LARGE / 64 - 1, LARGE / 64, 3 * LARGE / 64] {
        let block = vec![Line([7; 64]); lines];
        assert_eq!(block.as_ptr() as usize % 64, 0, "{lines} lines");
        assert!(block.iter().all(|line| line.0 == [7; 64]));
    }
}

proptest! {
    /// Any sequence of resizes, from a few bytes to several times `LARGE`, keeps the bytes
    /// that stay, in several vectors alive at once.
    #[test]
    fn any_sequence_of_resizes_keeps_the_bytes(
        lens in prop::collection::vec(1_usize..4 * LARGE, 1..12),
    ) {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        let mut bytes: Vec<u8> = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            resize(&mut bytes, len, i as u8);
            prop_assert_eq!(bytes.len(), len);
            prop_assert_eq!(from_mimalloc(bytes.as_ptr()), len < LARGE);
            kept.push(bytes.clone());
        }
        // Every copy still holds what it was given.
        let mut expected: Vec<u8> = Vec::new();
        for (i, (&len, copy)) in lens.iter().zip(&kept).enumerate() {
            let keep = expected.len().min(len);
            expected.truncate(keep);
            expected.extend(pattern(len - keep, i as u8));
            prop_assert!(copy == &expected, "copy {} differs", i);
        }
    }
}
