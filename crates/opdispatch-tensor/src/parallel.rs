//! Intra-op parallelism, as ATen's `at::parallel_for` / `at::get_num_threads`.
//!
//! One process-wide rayon pool; the calling thread and the workers claim a loop's chunks by
//! index ([`Claims`]), so `n` threads work on a kernel, as torch's OpenMP team does, and a
//! worker that is slow to wake never holds the caller up. Work below
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

/// Chunks of one parallel loop, claimed by index by whichever thread gets there first: the
/// caller and the pool's workers. The caller keeps claiming until none is left, so a worker
/// that wakes late finds the work done instead of being waited for (rayon's scopes wait for
/// every spawned job to run; a sleeping worker's wake-up cost 15-20 us per call on a loaded
/// machine, more than a 250k-element kernel takes). Chunk boundaries depend only on `n` and
/// the thread count, so results do not depend on who ran which chunk.
struct Claims {
    next: AtomicUsize,
    done: AtomicUsize,
    total: usize,
    /// Runs chunk `i`. Only dereferenced after a successful claim (`i < total`), and the
    /// caller returns only once every claimed chunk is done, so it never outlives its borrow.
    body: *const (dyn Fn(usize) + Sync),
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

// SAFETY: `body` points to a `Sync` closure and is only called while the caller keeps it alive
// (see the field's comment); the other fields are thread-safe.
unsafe impl Send for Claims {}
// SAFETY: as above.
unsafe impl Sync for Claims {}

impl Claims {
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.total {
                return;
            }
            // SAFETY: `i < total` was claimed, so the caller is still waiting in `run_claimed`
            // and the closure behind `body` is alive.
            let body = unsafe { &*self.body };
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(i))) {
                self.panic
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(p);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// Runs `body(i)` for every chunk `i < total`, on this thread and up to `total - 1` workers.
fn run_claimed(total: usize, pool: &rayon::ThreadPool, body: &(dyn Fn(usize) + Sync)) {
    // SAFETY: only the lifetime is erased; `Claims::body` says why it is never used past it.
    let body: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(body) };
    let claims = Arc::new(Claims {
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        total,
        body,
        panic: Mutex::new(None),
    });
    for _ in 1..total.min(pool.current_num_threads() + 1) {
        let c = claims.clone();
        pool.spawn(move || c.work());
    }
    claims.work();
    // Only chunks a worker claimed and is still running remain: wait for those.
    let mut spins = 0u32;
    while claims.done.load(Ordering::Acquire) < total {
        if spins < 1000 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
    let panic = claims
        .panic
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(p) = panic {
        std::panic::resume_unwind(p);
    }
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
    run_claimed(n.div_ceil(chunk), &pool, &|i| {
        f(i * chunk..((i + 1) * chunk).min(n));
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
    run_claimed(parts.len(), &pool, &|i| {
        let r = f(i * chunk..((i + 1) * chunk).min(n));
        *parts[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn a_panicking_chunk_reaches_the_caller_after_the_others_finish() {
        set_num_threads(2);
        let r = std::panic::catch_unwind(|| {
            parallel_for(4 * GRAIN_SIZE, GRAIN_SIZE, |r| {
                if r.start > 0 {
                    panic!("chunk at {}", r.start);
                }
            });
        });
        assert!(r.is_err());
        // The pool still works afterwards.
        let s = parallel_reduce(4 * GRAIN_SIZE, GRAIN_SIZE, |r| r.len(), |a, b| a + b);
        assert_eq!(s, 4 * GRAIN_SIZE);
    }

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
