//! A per-thread cache of small data buffers (up to [`MAX_WORDS`] 8-byte words).
//!
//! Autograd on small tensors creates and drops dozens of tiny buffers per backward, and frees
//! them in bursts when a graph goes away; the C allocator's per-thread cache overflows on such
//! bursts and falls back to its slow path (a quarter of a small backward was malloc/free).
//! Buffers are kept by exact capacity, a bounded number per size, so the cache stays a few KiB.

use std::cell::RefCell;

/// The largest buffer kept, in words (64 bytes: sixteen float32s).
pub(crate) const MAX_WORDS: usize = 8;
/// Buffers kept per size.
const PER_SIZE: usize = 64;

thread_local! {
    static CACHE: RefCell<[Vec<Vec<u64>>; MAX_WORDS]> =
        const { RefCell::new([const { Vec::new() }; MAX_WORDS]) };
}

/// An empty buffer with capacity exactly `words` (1..=MAX_WORDS) from the cache, if it has one.
pub(crate) fn take(words: usize) -> Option<Vec<u64>> {
    if words == 0 || words > MAX_WORDS {
        return None;
    }
    CACHE
        .try_with(|c| c.try_borrow_mut().ok()?[words - 1].pop())
        .ok()
        .flatten()
}

/// Gives a buffer back; large ones, and any beyond the bound, go to the allocator.
pub(crate) fn give(mut v: Vec<u64>) {
    let cap = v.capacity();
    if cap == 0 || cap > MAX_WORDS {
        return;
    }
    v.clear();
    // During thread teardown the cache may be gone: then the buffer is simply freed.
    let _ = CACHE.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            let list = &mut c[cap - 1];
            if list.len() < PER_SIZE {
                list.push(v);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_by_capacity_and_bounds_the_cache() {
        assert!(take(0).is_none() && take(MAX_WORDS + 1).is_none());
        let mut v = Vec::with_capacity(3);
        v.extend([1u64, 2, 3]);
        let p = v.as_ptr();
        give(v);
        let w = take(3).expect("cached");
        assert_eq!((w.as_ptr(), w.len(), w.capacity()), (p, 0, 3));
        for _ in 0..PER_SIZE + 10 {
            give(Vec::with_capacity(2));
        }
        let mut n = 0;
        while take(2).is_some() {
            n += 1;
        }
        assert_eq!(n, PER_SIZE);
        give(Vec::with_capacity(MAX_WORDS + 1));
        assert!(take(MAX_WORDS + 1).is_none());
    }
}
