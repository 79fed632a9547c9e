//! Intra-op parallelism, as ATen's `at::parallel_for` / `at::get_num_threads`.
//!
//! One process-wide rayon pool; the calling thread runs the first chunk of a loop itself and
//! the workers the others, so `n` threads work on a kernel, as torch's OpenMP team does. Work below
//! [`GRAIN_SIZE`] elements never reaches the pool (no atomic, no lock): small tensors, the
//! dispatcher's common case, stay on the calling thread. A kernel already running on a worker
//! runs nested loops inline.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Elements below which a loop runs on one thread (ATen's `at::internal::GRAIN_SIZE`).
pub const GRAIN_SIZE: usize = 32768;

/// Threads set by [`set_num_threads`]; 0 until set (then the default applies).
static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);

/// The pool and the thread count it was built for.
static POOL: Mutex<Option<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(None);

/// Threads a kernel uses by default: the machine's cores, as torch's default.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Threads kernels use (`torch.get_num_threads()`).
pub fn get_num_threads() -> usize {
    match NUM_THREADS.load(Ordering::Relaxed) {
        0 => {
            let d = default_threads();
            // Fixed at first use, so later readers agree (torch also fixes it at init).
            match NUM_THREADS.compare_exchange(0, d, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => d,
                Err(now) => now,
            }
        }
        n => n,
    }
}

/// Sets the threads kernels use (`torch.set_num_threads`); `n` must be positive (the Python
/// binding checks it with torch's message). The pool is rebuilt lazily at its next use.
pub fn set_num_threads(n: usize) {
    NUM_THREADS.store(n.max(1), Ordering::Relaxed);
}

fn pool(threads: usize) -> Option<Arc<rayon::ThreadPool>> {
    let mut g = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((t, p)) = g.as_ref() {
        if *t == threads {
            return Some(p.clone());
        }
    }
    // `threads` workers: a loop's caller runs one chunk itself (so one worker idles then), and
    // the GEMM, run inside the pool, gets all of them. A failed spawn leaves the work serial.
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("opdispatch-intraop-{i}"))
        .build()
        .ok()
        .map(Arc::new)?;
    *g = Some((threads, p.clone()));
    Some(p)
}

/// Chunks `0..n` is cut into for `grain`: none when the loop should run serially.
fn plan(n: usize, grain: usize) -> Option<(usize, Arc<rayon::ThreadPool>)> {
    if n <= grain.max(1) || rayon::current_thread_index().is_some() {
        return None;
    }
    let threads = get_num_threads();
    if threads <= 1 {
        return None;
    }
    let tasks = threads.min(n.div_ceil(grain.max(1)));
    Some((n.div_ceil(tasks), pool(threads)?))
}

/// Runs `f` over `0..n`, in contiguous chunks of at least `grain` on the pool when `n` exceeds
/// `grain`, else once over the whole range on this thread.
pub fn parallel_for(n: usize, grain: usize, f: impl Fn(Range<usize>) + Sync) {
    let Some((chunk, pool)) = plan(n, grain) else {
        if n > 0 {
            f(0..n);
        }
        return;
    };
    let f = &f;
    pool.in_place_scope(|s| {
        let mut start = chunk;
        while start < n {
            let r = start..(start + chunk).min(n);
            s.spawn(move |_| f(r));
            start += chunk;
        }
        f(0..chunk.min(n));
    });
}

/// Reduces `0..n`: `f` maps each chunk to a partial result, `combine` folds the partials in
/// chunk order (so the result depends only on the thread count, not on scheduling).
pub fn parallel_reduce<T: Send>(
    n: usize,
    grain: usize,
    f: impl Fn(Range<usize>) -> T + Sync,
    combine: impl Fn(T, T) -> T,
) -> T {
    let Some((chunk, pool)) = plan(n, grain) else {
        return f(0..n);
    };
    let parts: Vec<Mutex<Option<T>>> = (0..n.div_ceil(chunk)).map(|_| Mutex::new(None)).collect();
    let f = &f;
    pool.in_place_scope(|s| {
        for (i, slot) in parts.iter().enumerate().skip(1) {
            s.spawn(move |_| {
                let r = f(i * chunk..((i + 1) * chunk).min(n));
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
            });
        }
        *parts[0].lock().unwrap_or_else(PoisonError::into_inner) = Some(f(0..chunk.min(n)));
    });
    parts
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .expect("every chunk ran")
        })
        .reduce(combine)
        .expect("at least one chunk")
}

/// `std::ptr::copy_nonoverlapping(src, dst, n)` in chunks over the pool when `n` exceeds
/// `grain` bytes (a large memory copy is bound by one core's load/store rate, as torch's
/// `copy_` and `clone`, which split it over the intra-op threads).
///
/// # Safety
/// As `copy_nonoverlapping`: `src` readable and `dst` writable for `n` bytes, not overlapping,
/// neither used elsewhere during the call.
pub(crate) unsafe fn copy_bytes(src: *const u8, dst: *mut u8, n: usize, grain: usize) {
    let (s, d) = (src as usize, dst as usize);
    parallel_for(n, grain, |r| {
        // SAFETY: the caller's contract, for the disjoint byte range `r` each chunk owns.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (s as *const u8).add(r.start),
                (d as *mut u8).add(r.start),
                r.len(),
            );
        }
    });
}

/// Runs `f` inside the pool (for libraries that spread work over the current rayon pool: the
/// GEMM), passing the threads it may use; `threads <= 1` (or a nested call) runs it here with 1.
pub(crate) fn with_pool<R: Send>(threads: usize, f: impl FnOnce(usize) -> R + Send) -> R {
    if threads <= 1 || rayon::current_thread_index().is_some() {
        return f(1);
    }
    match pool(threads) {
        Some(p) => p.install(|| f(threads)),
        None => f(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn covers_every_index_once() {
        for n in [0, 1, GRAIN_SIZE, GRAIN_SIZE + 1, 5 * GRAIN_SIZE + 7] {
            let seen: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
            parallel_for(n, GRAIN_SIZE, |r| {
                for i in r {
                    seen[i].fetch_add(1, Ordering::Relaxed);
                }
            });
            assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
            let s = parallel_reduce(
                n,
                GRAIN_SIZE,
                |r| r.map(|i| i as u64).sum::<u64>(),
                |a, b| a + b,
            );
            assert_eq!(s, (n as u64) * (n as u64).saturating_sub(1) / 2);
        }
    }
}
