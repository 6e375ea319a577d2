//! The binary's allocator: mimalloc for everything but large blocks, which go to the
//! system allocator.
//!
//! mimalloc makes the many small, short-lived allocations of the server and the scanner
//! cheaper (~25 % more audited reads per second over HTTP, docs/benchmarks.md), but it
//! keeps freed memory in its arenas for reuse. For a block of many megabytes that is used
//! once — Argon2id's 64 MiB when the root key is unsealed at start-up, a large result set —
//! that left the idle server holding it (93 MB RSS instead of ~30). glibc returns such
//! blocks (`mmap`/`munmap`) the moment they are freed, so they go there.
//!
//! This is the one place with `unsafe` in the binary: a `GlobalAlloc` cannot be written
//! without it. Each call only forwards to one of the two allocators; a block is always freed
//! by the allocator its current size selects, which is the one that allocated it (the
//! layout passed to `dealloc`/`realloc` is the one it was allocated or last resized with).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of at least this many bytes come from the system allocator: Argon2id's 19 and
/// 64 MiB do, the scanner's ~1 MiB text blocks (allocated and freed over and over) do not —
/// at a 1 MiB threshold the scan ran 7 % slower, faulting in fresh pages from the system.
const LARGE: usize = 8 << 20;

pub struct Allocator;

/// Which allocator a block of `size` bytes lives in.
fn large(size: usize) -> bool {
    size >= LARGE
}

static SMALL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if large(layout.size()) {
            unsafe { System.alloc(layout) }
        } else {
            unsafe { SMALL.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if large(layout.size()) {
            unsafe { System.alloc_zeroed(layout) }
        } else {
            unsafe { SMALL.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if large(layout.size()) {
            unsafe { System.dealloc(ptr, layout) }
        } else {
            unsafe { SMALL.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (large(layout.size()), large(new_size)) {
            (true, true) => unsafe { System.realloc(ptr, layout, new_size) },
            (false, false) => unsafe { SMALL.realloc(ptr, layout, new_size) },
            // Crossing the threshold: move the block to the other allocator.
            _ => {
                // SAFETY: `new_size` is non-zero and, rounded up to `layout.align()`, does not
                // overflow `isize` (the caller's contract for `realloc`).
                let new_layout =
                    unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are valid for the smaller of the two sizes and
                    // distinct (the new one was just allocated).
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// The threshold: Argon2id's 19 MiB go to the system allocator, the scanner's ~1 MiB
    /// blocks do not.
    #[test]
    fn large_blocks_are_the_system_allocators() {
        assert!(!super::large(0));
        assert!(!super::large((1 << 20) + (64 << 10)));
        assert!(!super::large(super::LARGE - 1));
        assert!(super::large(super::LARGE));
        assert!(super::large(19 << 20));
    }

    /// Blocks that grow and shrink across the threshold keep their contents (this test
    /// binary runs on this allocator too; a block freed by the wrong allocator is not
    /// reliably detected, hence the routing test above).
    #[test]
    fn blocks_move_between_allocators_intact() {
        let mut v: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        v.reserve(super::LARGE * 2);
        v.extend((0..super::LARGE as u32).map(|i| (i * 7) as u8));
        v.truncate(1000);
        v.shrink_to_fit();
        assert_eq!(v, (0..1000u32).map(|i| i as u8).collect::<Vec<_>>());
        let big = vec![1u8; super::LARGE * 3];
        assert_eq!(
            big.iter().map(|&b| b as usize).sum::<usize>(),
            super::LARGE * 3
        );
    }
}
