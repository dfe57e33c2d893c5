//! The allocator of the `penin` command: [mimalloc] for small blocks, the system's (glibc's
//! `malloc` on Linux) for large ones.
//!
//! A state holds hundreds of thousands of small blocks (an artifact's metadata, a task
//! record's parameters, a long key) and a few large ones (the knowledge base's table, a long
//! history, an array of millions of numbers). The two kinds are served best by different
//! allocators, measured on the states of `bench/formats.py` and `bench/compare.py`
//! (docs/benchmarks.md, "The allocator"):
//!
//! - **Small blocks: mimalloc.** Its allocations and frees are cheaper than glibc's: a
//!   mapped load of 100,000 × 384 took 61 ms of CPU with glibc's `malloc` alone and 49 ms
//!   with this allocator (35.4 against 32.4 ms of wall time), a task-heavy JSON state loaded
//!   in 0.22 s against 0.18 s. mimalloc is built without its transparent huge pages
//!   (`no_thp`): with them the same loads took 29.3 ms and 0.14 s, but on the virtual
//!   machine measured, whose host takes back free memory in 2 MiB blocks, one task-heavy load
//!   in four took up to 0.38 s, slower than glibc's worst.
//! - **Large blocks: the system's.** glibc gives a block of at least its mapping threshold a
//!   mapping of its own, grows it with `mremap` (no copy) and unmaps it when it is freed;
//!   the threshold starts at 128 KiB and rises to the size of a mapped block freed (up to
//!   32 MiB), and smaller blocks come from its heaps, as they do for any Rust program on
//!   glibc. mimalloc copies a large block that grows, and keeps freed memory for a while: with
//!   mimalloc for every block, the peak memory of a load of 1,000,000 scores went from 76 to
//!   130 MB, and of an array of 3,000,000 numbers from 154 to 321 MB; with this allocator it
//!   is 76 and 152 MB (glibc alone: 75 and 150).
//!
//! A block is large from [`LARGE`] bytes. Every block is freed by the allocator that gave
//! it: [`GlobalAlloc`] frees and resizes a block with the layout it was allocated (or last
//! resized) with, and its size alone chooses the allocator. A resize across [`LARGE`]
//! moves the block to the other allocator (a new block, the bytes copied, the old one
//! freed).
//!
//! The libraries of the workspace choose no allocator: a program that uses them chooses its
//! own. The `penin` binary and the examples that time what it does
//! (`penin-orchestrator`'s `bench_io` and `bench_search`) declare this one:
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: penin_alloc::Allocator = penin_alloc::Allocator;
//!
//! fn main() {
//!     // A small block, then the same vector grown past `LARGE` and shrunk below it again:
//!     // its bytes move from one allocator to the other and back.
//!     let mut bytes: Vec<u8> = (0..=255).collect();
//!     bytes.resize(penin_alloc::LARGE * 2, 7);
//!     bytes.truncate(256);
//!     bytes.shrink_to_fit();
//!     assert!(bytes.iter().copied().eq(0..=255));
//! }
//! ```
//!
//! [mimalloc]: https://github.com/microsoft/mimalloc

// The one place beside `penin_formats::arrow::map_file` that allows unsafe code (see the
// workspace's Cargo.toml and `.ci/run`): a global allocator is an `unsafe impl` of unsafe
// functions. Each forwards its caller's promises to one of two allocators that make the same
// promises; the argument is on each.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// The size from which a block is large, and comes from the system's allocator: 256 KiB, past
/// glibc's first threshold for a block of its own mapping (128 KiB).
pub const LARGE: usize = 256 << 10;

/// mimalloc for blocks of fewer than [`LARGE`] bytes, the system's allocator for the others
/// (see the crate's documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct Allocator;

/// Whether `block` lies in memory mimalloc holds: whether mimalloc, not the system's
/// allocator, served it. Any pointer may be asked about (it is compared, never read).
///
/// ```
/// #[global_allocator]
/// static ALLOCATOR: penin_alloc::Allocator = penin_alloc::Allocator;
///
/// fn main() {
///     let small = vec![1_u8; 100];
///     let large = vec![1_u8; penin_alloc::LARGE];
///     assert!(penin_alloc::from_mimalloc(small.as_ptr()));
///     assert!(!penin_alloc::from_mimalloc(large.as_ptr()));
/// }
/// ```
pub fn from_mimalloc(block: *const u8) -> bool {
    // SAFETY: `mi_is_in_heap_region` looks the address up in mimalloc's map of its segments;
    // it does not read the memory at `block`, so any value is valid.
    unsafe { libmimalloc_sys::mi_is_in_heap_region(block.cast()) }
}

/// Whether a block of `size` bytes is large, and so the system's.
#[inline]
const fn is_large(size: usize) -> bool {
    size >= LARGE
}

// SAFETY: every method forwards to `System` or `MiMalloc`, both sound `GlobalAlloc`s, with
// the caller's arguments, and the choice between them depends on the block's size only. The
// caller frees and resizes a block with the layout it was given (or last resized) with, so a
// block always goes back to the allocator that gave it. A resize across `LARGE` gets a block
// from the other allocator through `alloc`, whose promises it keeps (size, alignment), and
// frees the old one through `dealloc`, as `GlobalAlloc::realloc`'s default does.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `layout` (a non-zero size) is passed on unchanged.
        unsafe {
            if is_large(layout.size()) {
                System.alloc(layout)
            } else {
                MiMalloc.alloc(layout)
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if is_large(layout.size()) {
                System.alloc_zeroed(layout)
            } else {
                MiMalloc.alloc_zeroed(layout)
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was given by `alloc` (or `realloc`) for this `layout`, whose size
        // chose the same allocator then as now.
        unsafe {
            if is_large(layout.size()) {
                System.dealloc(ptr, layout);
            } else {
                MiMalloc.dealloc(ptr, layout);
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (is_large(layout.size()), is_large(new_size)) {
            // SAFETY: the block stays with the allocator that gave it, which takes the
            // caller's arguments unchanged.
            (true, true) => unsafe { System.realloc(ptr, layout, new_size) },
            // SAFETY: as above.
            (false, false) => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            // SAFETY: `new_size` with the block's alignment is a valid layout (the caller
            // promises it: non-zero, not overflowing `isize` when rounded up). The new block,
            // from the other allocator, is at least `new_size` bytes and distinct from the
            // old one, so the copy of the bytes both hold does not overlap; the old block is
            // then freed with its own layout, and never used again.
            (_, _) => unsafe {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_from_large_up_are_the_systems() {
        assert!(!is_large(1));
        assert!(!is_large(LARGE - 1));
        assert!(is_large(LARGE));
        assert!(is_large(usize::MAX));
    }
}
