//! Read-mostly publication of dispatch-table snapshots (a small userspace RCU).
//!
//! Every operator call reads its operator's table snapshot; registrations replace it. Readers
//! must pay (nearly) nothing, so a read section is two plain stores to this thread's record and
//! a compiler fence: no atomic read-modify-write, no real fence. The writer side pays instead:
//! after unpublishing a snapshot it issues an asymmetric heavy barrier (Linux
//! `membarrier(PRIVATE_EXPEDITED)`, which makes every running thread of the process execute a
//! full fence) and then looks at every reader's record. A retired snapshot is freed once every
//! reader that was inside a read section at that moment has left it.
//!
//! Without `membarrier` (other OSes, old kernels, sandboxes that filter it) readers issue a real
//! `SeqCst` fence instead, which is correct everywhere and only slower.
//!
//! Retired values are dropped outside every lock here: one of them may own the last reference
//! to a Python kernel, whose release can run arbitrary code that re-enters the dispatcher.

use std::any::Any;
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Once};

use parking_lot::Mutex;

/// One reader thread's published state. Leaked on purpose and reused after its thread exits, so
/// the reclaimer can read it at any time without synchronizing with thread exit.
struct Record {
    /// Odd while the owning thread is inside an (outermost) read section.
    epoch: AtomicU64,
    /// Set by the reclaimer when this reader held up a retired batch: the reader tries to
    /// reclaim when it leaves its section, so the batch is not kept until the next registration.
    blocking: AtomicBool,
    in_use: AtomicBool,
}

/// This thread's reader state. `const`-initialized and without a destructor, so accessing it is
/// a plain thread-pointer-relative load.
struct Local {
    record: Cell<*const Record>,
    depth: Cell<u32>,
}

thread_local! {
    static LOCAL: Local = const {
        Local { record: Cell::new(ptr::null()), depth: Cell::new(0) }
    };
    /// Returns this thread's record to the pool when the thread exits.
    static RELEASE: ReleaseOnExit = const { ReleaseOnExit };
}

struct ReleaseOnExit;

impl Drop for ReleaseOnExit {
    fn drop(&mut self) {
        let _ = LOCAL.try_with(|l| {
            let rec = l.record.replace(ptr::null());
            if !rec.is_null() {
                // SAFETY: records are leaked, hence valid forever.
                unsafe { &*rec }.in_use.store(false, Ordering::Release);
            }
        });
    }
}

static RECORDS: Mutex<Vec<&'static Record>> = Mutex::new(Vec::new());

/// A batch of retired values and the readers that may still see them.
struct Batch {
    items: Vec<Box<dyn Any + Send>>,
    /// (reader, its odd epoch) for every reader inside a section at the heavy barrier.
    waiting_for: Vec<(&'static Record, u64)>,
}

static PENDING: Mutex<Vec<Batch>> = Mutex::new(Vec::new());

// ------------------------------------------------------------------------------- barriers

static BARRIER_INIT: Once = Once::new();
/// Decided once (under `BARRIER_INIT`) before any reader or writer relies on it.
static ASYMMETRIC: AtomicBool = AtomicBool::new(false);

// Miri cannot run the `membarrier` syscall: under Miri the readers take the fence path (the one
// non-Linux systems and OPDISPATCH_NO_MEMBARRIER use), which is exactly what Miri can check.
#[cfg(all(target_os = "linux", not(miri)))]
mod membarrier {
    // Command numbers from linux/membarrier.h.
    const CMD_QUERY: libc::c_int = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    fn call(cmd: libc::c_int) -> libc::c_long {
        // SAFETY: membarrier takes two integer arguments and touches no memory of ours.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_uint,
                0 as libc::c_int,
            )
        }
    }

    /// Registers the process for private expedited barriers; false where unsupported.
    pub(super) fn register() -> bool {
        let supported = call(CMD_QUERY);
        supported >= 0
            && supported & libc::c_long::from(CMD_PRIVATE_EXPEDITED) != 0
            && call(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
    }

    pub(super) fn heavy() -> bool {
        call(CMD_PRIVATE_EXPEDITED) == 0
    }
}

#[cfg(any(not(target_os = "linux"), miri))]
mod membarrier {
    pub(super) fn register() -> bool {
        false
    }
    pub(super) fn heavy() -> bool {
        false
    }
}

fn init_barriers() {
    BARRIER_INIT.call_once(|| {
        if std::env::var_os("OPDISPATCH_NO_MEMBARRIER").is_none() && membarrier::register() {
            ASYMMETRIC.store(true, Ordering::Relaxed);
        }
    });
}

/// The reader's half of the barrier pair.
#[inline(always)]
fn light_barrier() {
    if ASYMMETRIC.load(Ordering::Relaxed) {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The writer's half: afterwards every reader either is visibly inside its section or will load
/// the pointers as they are now. False if that cannot be guaranteed (the barrier failed after
/// registration, so readers only fence the compiler).
fn heavy_barrier() -> bool {
    init_barriers();
    if ASYMMETRIC.load(Ordering::Relaxed) {
        membarrier::heavy()
    } else {
        fence(Ordering::SeqCst);
        true
    }
}

// ---------------------------------------------------------------------------------- readers

/// Proof of being inside a read section; values loaded through it stay alive while it lives.
pub(crate) struct ReadGuard {
    /// This thread's `LOCAL` (the guard is not `Send`, so it is dropped on this thread while
    /// the thread-local lives): exit needs no second thread-local lookup.
    local: *const Local,
}

/// Enters a read section (nesting is allowed).
#[inline(always)]
pub(crate) fn read() -> ReadGuard {
    let local = LOCAL.with(|l| {
        let d = l.depth.get();
        l.depth.set(d + 1);
        if d == 0 {
            let mut rec = l.record.get();
            if rec.is_null() {
                rec = register_thread(l);
            }
            // SAFETY: records are leaked, hence valid forever; only this thread writes `epoch`.
            let rec = unsafe { &*rec };
            let e = rec.epoch.load(Ordering::Relaxed);
            rec.epoch.store(e + 1, Ordering::Relaxed);
            light_barrier();
        }
        std::ptr::from_ref(l)
    });
    ReadGuard { local }
}

impl Drop for ReadGuard {
    #[inline(always)]
    fn drop(&mut self) {
        let help = {
            // SAFETY: `local` is this thread's `LOCAL` (see the field), alive while the thread
            // runs, and only this thread touches it.
            let l = unsafe { &*self.local };
            let d = l.depth.get() - 1;
            l.depth.set(d);
            if d != 0 {
                return;
            }
            // SAFETY: set by `read` for this thread; records are never freed.
            let rec = unsafe { &*l.record.get() };
            let e = rec.epoch.load(Ordering::Relaxed);
            // Release: everything this section read happens-before a reclaimer's Acquire of it.
            rec.epoch.store(e + 1, Ordering::Release);
            // Pairs with the reclaimer's second heavy barrier: either it sees this exit, or
            // this thread sees its `blocking` flag and reclaims (no batch is left stranded).
            light_barrier();
            rec.blocking.load(Ordering::Relaxed)
        };
        if help {
            leave_blocking();
        }
    }
}

#[cold]
#[inline(never)]
fn leave_blocking() {
    LOCAL.with(|l| {
        // SAFETY: as in `ReadGuard::drop`.
        unsafe { &*l.record.get() }
            .blocking
            .store(false, Ordering::Relaxed);
    });
    // Blocking, not try_lock: a reclaimer holding the lock may have read this thread's epoch
    // before the exit, and would then leave the batch behind. The lock guards only the epoch
    // checks (values are dropped after it is released), so waiting here cannot deadlock.
    reclaim();
}

#[cold]
#[inline(never)]
fn register_thread(l: &Local) -> *const Record {
    init_barriers();
    let mut records = RECORDS.lock();
    let rec: &'static Record = match records.iter().find(|r| {
        r.in_use
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }) {
        Some(r) => r,
        None => {
            let r: &'static Record = Box::leak(Box::new(Record {
                epoch: AtomicU64::new(0),
                blocking: AtomicBool::new(false),
                in_use: AtomicBool::new(true),
            }));
            records.push(r);
            r
        }
    };
    drop(records);
    l.record.set(rec);
    // Arm the exit hook; during thread teardown it may be gone already, which only means this
    // record is not reused.
    let _ = RELEASE.try_with(|_| ());
    rec
}

// ---------------------------------------------------------------------------- publication

/// An atomically replaceable `Option<Arc<T>>` whose readers use [`read`] sections.
pub(crate) struct RcuCell<T> {
    ptr: AtomicPtr<T>,
}

impl<T: Send + Sync + 'static> RcuCell<T> {
    pub(crate) const fn empty() -> Self {
        Self {
            ptr: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The published value, valid for as long as the read section.
    #[inline(always)]
    pub(crate) fn load<'g>(&self, _guard: &'g ReadGuard) -> Option<&'g T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: a non-null pointer came from `Arc::into_raw` and is freed only through
        // `retire`, after every read section that could have loaded it has ended.
        unsafe { p.as_ref() }
    }

    /// Publishes `value` if nothing is published; returns the published value either way.
    /// Callers serialize publication with the registry locks.
    pub(crate) fn publish(&self, value: Arc<T>) {
        let raw = Arc::into_raw(value) as *mut T;
        let old = self.ptr.swap(raw, Ordering::AcqRel);
        debug_assert!(old.is_null(), "publish over a published snapshot");
        if !old.is_null() {
            // SAFETY: `old` came from `Arc::into_raw`; readers may still hold it, so retire it.
            retire(vec![Box::new(unsafe { Arc::from_raw(old) })]);
        }
    }

    /// A new strong reference to the published value (for callers outside a read section).
    pub(crate) fn load_full(&self) -> Option<Arc<T>> {
        let g = read();
        let p = self.ptr.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` is alive for the read section; we add a strong reference for the caller.
        unsafe {
            Arc::increment_strong_count(p);
            let a = Arc::from_raw(p);
            drop(g);
            Some(a)
        }
    }

    /// Unpublishes the value. The returned value must go through [`retire`]: readers may still
    /// be using it. Callers serialize this with publication (the registry locks), so an empty
    /// cell is seen as such without an atomic exchange, which a registration pays for otherwise.
    #[must_use = "an unpublished snapshot must be retired, not dropped"]
    pub(crate) fn take(&self) -> Option<Retired> {
        if self.ptr.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let old = self.ptr.swap(ptr::null_mut(), Ordering::AcqRel);
        if old.is_null() {
            None
        } else {
            // SAFETY: `old` came from `Arc::into_raw`; ownership moves to the retired box.
            Some(Retired(Box::new(unsafe { Arc::from_raw(old) })))
        }
    }
}

impl<T> Drop for RcuCell<T> {
    fn drop(&mut self) {
        let p = *self.ptr.get_mut();
        if !p.is_null() {
            // SAFETY: dropping the cell means nobody can reach it, so no reader holds `p`.
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}

/// A value unpublished from an [`RcuCell`], waiting for its readers.
pub(crate) struct Retired(Box<dyn Any + Send>);

// ---------------------------------------------------------------------------- reclamation

/// Hands unpublished values to the reclaimer and frees whatever no reader can still see. Must
/// be called without holding registry locks (values are dropped here).
pub(crate) fn retire_all(items: Vec<Retired>) {
    if items.is_empty() {
        return;
    }
    retire(items.into_iter().map(|r| r.0).collect());
}

fn retire(items: Vec<Box<dyn Any + Send>>) {
    // The barrier orders the unpublishing stores (already done) before our reading of the
    // reader records.
    if !heavy_barrier() {
        // Nothing can be proven about the readers: leak rather than risk a use-after-free.
        std::mem::forget(items);
        return;
    }
    let waiting_for = {
        let records = RECORDS.lock();
        records
            .iter()
            .filter_map(|r| {
                let e = r.epoch.load(Ordering::Acquire);
                (e & 1 == 1).then(|| {
                    r.blocking.store(true, Ordering::Relaxed);
                    (*r, e)
                })
            })
            .collect::<Vec<_>>()
    };
    if !waiting_for.is_empty() && !heavy_barrier() {
        // As above: cannot order the `blocking` flags against the readers' exits.
        std::mem::forget(items);
        return;
    }
    PENDING.lock().push(Batch { items, waiting_for });
    reclaim();
}

/// Frees every batch whose readers have all left the sections they were in.
fn reclaim() {
    let mut free = Vec::new();
    {
        let mut pending = PENDING.lock();
        pending.retain_mut(|b| {
            b.waiting_for
                .retain(|(r, e)| r.epoch.load(Ordering::Acquire) == *e);
            if b.waiting_for.is_empty() {
                free.append(&mut b.items);
                false
            } else {
                true
            }
        });
    }
    drop(free);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Other tests of this process may be inside read sections at any moment, which legitimately
    /// holds batches back; wait for them instead of expecting an immediate free.
    fn freed_eventually(drops: &AtomicUsize) -> bool {
        for _ in 0..5000 {
            if drops.load(Ordering::SeqCst) == 1 {
                return true;
            }
            reclaim();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn retired_value_waits_for_the_reader_then_frees() {
        let drops = Arc::new(AtomicUsize::new(0));
        let cell = RcuCell::empty();
        cell.publish(Arc::new(Counted(drops.clone())));
        let g = read();
        let v = cell.load(&g).expect("published");
        retire_all(cell.take().into_iter().collect());
        // Still inside the section that loaded it: not freed.
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        assert_eq!(v.0.load(Ordering::SeqCst), 0);
        drop(g);
        assert!(freed_eventually(&drops));
    }

    #[test]
    fn retire_outside_sections_frees() {
        let drops = Arc::new(AtomicUsize::new(0));
        let cell = RcuCell::empty();
        cell.publish(Arc::new(Counted(drops.clone())));
        {
            let g = read();
            assert!(cell.load(&g).is_some());
        }
        retire_all(cell.take().into_iter().collect());
        assert!(freed_eventually(&drops));
        assert!(cell.load(&read()).is_none());
    }

    #[test]
    fn readers_on_other_threads_hold_back_reclamation() {
        let drops = Arc::new(AtomicUsize::new(0));
        let cell = Arc::new(RcuCell::empty());
        cell.publish(Arc::new(Counted(drops.clone())));
        let (tx_in, rx_in) = std::sync::mpsc::channel();
        let (tx_out, rx_out) = std::sync::mpsc::channel::<()>();
        let c2 = cell.clone();
        let h = std::thread::spawn(move || {
            let g = read();
            let v = c2.load(&g).expect("published");
            tx_in.send(()).unwrap();
            rx_out.recv().unwrap();
            // The value must still be alive here.
            assert_eq!(v.0.load(Ordering::SeqCst), 0);
        });
        rx_in.recv().unwrap();
        retire_all(cell.take().into_iter().collect());
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        tx_out.send(()).unwrap();
        h.join().unwrap();
        // The reader left its section; its exit (or a later reclaim) frees the batch.
        assert!(freed_eventually(&drops));
    }
}
