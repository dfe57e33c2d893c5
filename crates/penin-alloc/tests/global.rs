//! The allocator as a program's global allocator: what it gives holds what was put there,
//! aligned and zeroed as asked, whichever allocator a block comes from and however often it
//! moves between them.

use penin_alloc::{Allocator, LARGE};
use proptest::prelude::*;

#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

/// Bytes that tell every position apart (within 251 of each other).
fn pattern(len: usize, seed: u8) -> impl Iterator<Item = u8> {
    (0..len).map(move |i| (i % 251) as u8 ^ seed)
}

#[test]
fn a_vector_keeps_its_bytes_as_it_grows_past_large_and_shrinks_back() {
    let mut bytes: Vec<u8> = pattern(1000, 3).collect();
    // Small to large (mimalloc to the system's), large to larger (the system's own resize),
    // back to small (the system's to mimalloc's), each a `realloc`.
    for len in [LARGE - 1, LARGE, 3 * LARGE, 40 * LARGE, LARGE - 1, 1000, 10] {
        bytes.resize(len, 0);
        bytes.shrink_to_fit();
        bytes.clear();
        bytes.extend(pattern(len, len as u8));
        bytes.shrink_to_fit();
        assert!(bytes.iter().copied().eq(pattern(len, len as u8)), "{len}");
    }
    // A resize keeps the bytes before the new end.
    let mut grown: Vec<u8> = pattern(LARGE - 10, 9).collect();
    grown.reserve_exact(LARGE);
    assert!(grown.iter().copied().eq(pattern(LARGE - 10, 9)));
    grown.truncate(100);
    grown.shrink_to_fit();
    assert!(grown.iter().copied().eq(pattern(100, 9)));
}

#[test]
fn zeroed_blocks_are_zero_even_where_freed_blocks_held_other_bytes() {
    for len in [16, 4096, LARGE - 1, LARGE, 5 * LARGE] {
        // Blocks of the same size, filled and freed, that a zeroed block may reuse.
        for _ in 0..4 {
            drop(vec![0xA5_u8; len]);
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
        // Grown across `LARGE` by `realloc`, still aligned.
        block.resize(pages * 2 + LARGE / 4096, Page([2; 4096]));
        assert_eq!(block.as_ptr() as usize % 4096, 0, "{pages} pages, grown");
        assert!(block[..pages].iter().all(|page| page.0 == [1; 4096]));
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
            let seed = i as u8;
            let keep = bytes.len().min(len);
            bytes.truncate(keep);
            bytes.shrink_to_fit();
            bytes.extend(pattern(len - keep, seed));
            bytes.shrink_to_fit();
            prop_assert_eq!(bytes.len(), len);
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
