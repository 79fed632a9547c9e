//! The extension's global allocator: the system allocator behind a per-thread cache of small
//! blocks (up to 512 bytes, in 16-byte classes).
//!
//! A backward pass on small tensors allocates and frees hundreds of small objects (tensors,
//! storages, nodes, edge and metadata lists) and frees most of them in a burst when the graph
//! goes away. glibc's per-thread cache holds only seven blocks per size, so the bursts fell to
//! its slow path: malloc/free were a quarter of a ten-step backward. Freed small blocks are
//! kept on an intrusive per-thread list (bounded per class) and handed out again first.
//!
//! Blocks may be freed on another thread than the one that allocated them: each is a plain
//! system allocation of its class size, so any thread may keep it or return it. The cache of
//! a thread that exits stays allocated (at most `MAX_CACHED_BYTES`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr::null_mut;

const CLASS: usize = 16;
const CLASSES: usize = 32;
/// What one thread keeps cached at most, all classes together.
const MAX_CACHED_BYTES: usize = 256 << 10;

struct Cache {
    heads: [Cell<*mut u8>; CLASSES],
    bytes: Cell<usize>,
}

thread_local! {
    // Const-initialized and without a destructor: touching it never allocates, so the
    // allocator may use it.
    static CACHE: Cache = const {
        Cache { heads: [const { Cell::new(null_mut()) }; CLASSES], bytes: Cell::new(0) }
    };
}

/// The class of a layout the cache serves, or `None`.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    if size == 0 || size > CLASS * CLASSES || layout.align() > CLASS {
        return None;
    }
    Some((size - 1) / CLASS)
}

#[inline]
fn block_layout(class: usize) -> Layout {
    // SAFETY: the size is a non-zero multiple of the power-of-two alignment.
    unsafe { Layout::from_size_align_unchecked((class + 1) * CLASS, CLASS) }
}

pub(crate) struct SmallAlloc;

// SAFETY: every block handed out is a live system allocation at least as large and as aligned
// as the layout asked for (a class block is 16-aligned and covers its class's sizes), and is
// handed out again only after it was freed; a block is freed to the system with the layout it
// was allocated with (its class's, or the caller's for the sizes outside the classes).
unsafe impl GlobalAlloc for SmallAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class_of(layout) else {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { System.alloc(layout) };
        };
        let cached = CACHE
            .try_with(|cache| {
                let head = &cache.heads[c];
                let p = head.get();
                if !p.is_null() {
                    // SAFETY: a cached block's first word holds the next cached block.
                    head.set(unsafe { p.cast::<*mut u8>().read() });
                    cache.bytes.set(cache.bytes.get() - (c + 1) * CLASS);
                }
                p
            })
            .unwrap_or(null_mut());
        if cached.is_null() {
            // SAFETY: a non-zero-size layout.
            unsafe { System.alloc(block_layout(c)) }
        } else {
            cached
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(c) = class_of(layout) else {
            // SAFETY: `ptr` came from `System` with this layout (it is in no class).
            return unsafe { System.dealloc(ptr, layout) };
        };
        let kept = CACHE
            .try_with(|cache| {
                let bytes = cache.bytes.get() + (c + 1) * CLASS;
                if bytes > MAX_CACHED_BYTES {
                    return false;
                }
                let head = &cache.heads[c];
                // SAFETY: the block is at least 16 bytes, 16-aligned, and no longer in use.
                unsafe { ptr.cast::<*mut u8>().write(head.get()) };
                head.set(ptr);
                cache.bytes.set(bytes);
                true
            })
            .unwrap_or(false);
        if !kept {
            // SAFETY: blocks of class `c` are system allocations of `block_layout(c)`.
            unsafe { System.dealloc(ptr, block_layout(c)) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class_of(layout).is_none() {
            // Large buffers keep calloc's pages that are zero already (no memset pass).
            // SAFETY: forwarded with the caller's layout.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: a small block, then zeroed over the requested size.
        unsafe {
            let p = self.alloc(layout);
            if !p.is_null() {
                p.write_bytes(0, layout.size());
            }
            p
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new)) {
            // SAFETY: both outside the classes: a plain system reallocation.
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            (Some(a), Some(b)) if a == b => ptr,
            _ => {
                // SAFETY: a fresh block, the overlap copied, the old one freed.
                unsafe {
                    let p = self.alloc(new);
                    if !p.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    p
                }
            }
        }
    }
}

#[global_allocator]
static GLOBAL: SmallAlloc = SmallAlloc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_and_realloc_moves_between_classes() {
        let a = SmallAlloc;
        let l24 = Layout::from_size_align(24, 8).unwrap();
        // SAFETY: non-zero layouts; every block is freed with the layout it was allocated with.
        unsafe {
            let p = a.alloc(l24);
            p.write_bytes(7, 24);
            a.dealloc(p, l24);
            // Same class (17..=32 bytes): the block just freed comes back first.
            let l30 = Layout::from_size_align(30, 8).unwrap();
            let q = a.alloc(l30);
            assert_eq!(p, q);
            // Growing past the classes copies into a system block.
            q.write_bytes(3, 30);
            let r = a.realloc(q, l30, 4096);
            assert_eq!(std::slice::from_raw_parts(r, 30), &[3u8; 30]);
            let l4096 = Layout::from_size_align(4096, 8).unwrap();
            let z = a.alloc_zeroed(l24);
            assert_eq!(std::slice::from_raw_parts(z, 24), &[0u8; 24]);
            a.dealloc(z, l24);
            a.dealloc(r, l4096);
            // Over-aligned layouts bypass the cache.
            let big_align = Layout::from_size_align(32, 64).unwrap();
            let b = a.alloc(big_align);
            assert_eq!(b as usize % 64, 0);
            a.dealloc(b, big_align);
        }
    }
}
