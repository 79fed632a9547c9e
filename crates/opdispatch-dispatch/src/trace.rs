//! `trace`: a per-thread record of every dispatcher entry (calls, redispatches, and the calls
//! kernels make), with the runtime key that ran, the kind of kernel in its slot, the nesting
//! depth and the time spent.
//!
//! While no thread records, the call path pays one relaxed load of a process-wide counter and
//! a predicted branch; everything else lives on the cold, out-of-line path below. Recorders
//! nest: an inner trace sees its own region, and when it ends its events also go to the trace
//! around it, so the outer trace stays complete.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use opdispatch_keys::DispatchKey;

use crate::error::Result;
use crate::operator::OperatorHandle;

/// Threads with at least one active recorder.
static RECORDING_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Whether any thread records: the call path's only check. A thread that is not recording
/// itself finds that out on the cold path.
#[inline(always)]
pub(crate) fn maybe_active() -> bool {
    RECORDING_THREADS.load(Ordering::Relaxed) != 0
}

/// One dispatcher entry.
#[derive(Debug, Clone)]
pub struct TraceEvent {
    pub op: OperatorHandle,
    /// The runtime key whose slot ran (after redispatch-only slots such as the autograd
    /// fallback were passed), `Undefined` for a call without dispatch keys.
    pub key: DispatchKey,
    /// The slot's kernel, by label (see [`crate::KernelFunction::kind`]); `missing` when the
    /// call failed for want of a kernel.
    pub kernel_kind: &'static str,
    /// Entered through `redispatch` (a kernel passing the call below its own key).
    pub redispatch: bool,
    /// Dispatcher nesting below the trace's start (0 = called from outside any kernel).
    pub depth: u32,
    /// Nanoseconds from the trace's start to the entry.
    pub start_ns: u64,
    /// Nanoseconds spent in the entry, nested entries included.
    pub duration_ns: u64,
    /// Whether the entry returned an error (or unwound).
    pub failed: bool,
}

/// The events of one finished trace, in entry order (a pre-order walk of the call tree).
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub events: Vec<TraceEvent>,
    /// Nanoseconds from start to finish.
    pub duration_ns: u64,
}

struct Recorder {
    id: u64,
    origin: Instant,
    /// The thread's dispatcher depth when the recorder started.
    base_depth: u32,
    events: Vec<TraceEvent>,
}

#[derive(Default)]
struct ThreadTrace {
    depth: u32,
    next_id: u64,
    recorders: Vec<Recorder>,
}

impl Drop for ThreadTrace {
    fn drop(&mut self) {
        // A thread that exits while recording stops counting as a recording thread.
        if !self.recorders.is_empty() {
            RECORDING_THREADS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    static THREAD: RefCell<ThreadTrace> = RefCell::new(ThreadTrace::default());
}

/// Starts recording on this thread; returns the recorder's id for [`end`].
pub fn begin() -> u64 {
    THREAD.with(|t| {
        let mut t = t.borrow_mut();
        if t.recorders.is_empty() {
            RECORDING_THREADS.fetch_add(1, Ordering::Relaxed);
        }
        t.next_id += 1;
        let id = t.next_id;
        let base_depth = t.depth;
        t.recorders.push(Recorder {
            id,
            origin: Instant::now(),
            base_depth,
            events: Vec::new(),
        });
        id
    })
}

/// Stops the recorder `id` (begun on this thread) and returns its events; `None` if there is
/// no such recorder. Its events are also handed to the recorder below it, if any.
pub fn end(id: u64) -> Option<Trace> {
    THREAD.with(|t| {
        let mut t = t.borrow_mut();
        let pos = t.recorders.iter().position(|r| r.id == id)?;
        let r = t.recorders.remove(pos);
        let duration_ns = nanos(r.origin.elapsed());
        if pos > 0 {
            let outer = &mut t.recorders[pos - 1];
            let shift = nanos(r.origin.saturating_duration_since(outer.origin));
            let down = r.base_depth.saturating_sub(outer.base_depth);
            outer.events.extend(r.events.iter().map(|e| TraceEvent {
                start_ns: e.start_ns + shift,
                depth: e.depth + down,
                ..e.clone()
            }));
        }
        if t.recorders.is_empty() {
            RECORDING_THREADS.fetch_sub(1, Ordering::Relaxed);
        }
        Some(Trace {
            events: r.events,
            duration_ns,
        })
    })
}

/// An active recorder for Rust callers: [`TraceGuard::finish`] returns the trace; dropping it
/// unfinished discards it. Bound to its thread, as the recording is.
pub struct TraceGuard {
    id: Option<u64>,
    _thread_bound: PhantomData<*const ()>,
}

/// Starts recording every dispatcher entry on this thread until the guard is finished.
pub fn start() -> TraceGuard {
    TraceGuard {
        id: Some(begin()),
        _thread_bound: PhantomData,
    }
}

impl TraceGuard {
    pub fn finish(mut self) -> Trace {
        self.id.take().and_then(end).unwrap_or_default()
    }
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            end(id);
        }
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Fills in the entry's duration and outcome when the kernel returns or unwinds.
struct Open {
    recorder: u64,
    index: usize,
    failed: bool,
}

impl Drop for Open {
    fn drop(&mut self) {
        let failed = self.failed || std::thread::panicking();
        // `try_with`: a kernel may run while the thread's locals are being torn down.
        let _ = THREAD.try_with(|t| {
            let mut t = t.borrow_mut();
            t.depth = t.depth.saturating_sub(1);
            // The recorder may have been ended inside the kernel; then there is nothing to fill.
            if let Some(r) = t.recorders.last_mut().filter(|r| r.id == self.recorder) {
                let now = nanos(r.origin.elapsed());
                if let Some(e) = r.events.get_mut(self.index) {
                    e.duration_ns = now.saturating_sub(e.start_ns);
                    e.failed = failed;
                }
            }
        });
    }
}

/// Runs `f` (one dispatcher entry) and records it if this thread records.
#[cold]
#[inline(never)]
pub(crate) fn record<R>(
    op: &OperatorHandle,
    key: DispatchKey,
    kernel_kind: &'static str,
    redispatch: bool,
    f: impl FnOnce() -> Result<R>,
) -> Result<R> {
    let open = THREAD.try_with(|t| {
        let mut t = t.borrow_mut();
        let depth = t.depth;
        let r = t.recorders.last_mut()?;
        let event = TraceEvent {
            op: op.clone(),
            key,
            kernel_kind,
            redispatch,
            depth: depth.saturating_sub(r.base_depth),
            start_ns: nanos(r.origin.elapsed()),
            duration_ns: 0,
            failed: false,
        };
        r.events.push(event);
        let open = Open {
            recorder: r.id,
            index: r.events.len() - 1,
            failed: false,
        };
        t.depth += 1;
        Some(open)
    });
    match open {
        Ok(Some(mut open)) => {
            let out = f();
            open.failed = out.is_err();
            drop(open);
            out
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_recorders_hand_events_outward() {
        let outer = begin();
        let inner = begin();
        assert!(maybe_active());
        let t = end(inner).expect("inner recorder");
        assert!(t.events.is_empty());
        assert!(end(inner).is_none(), "a recorder ends once");
        let t = end(outer).expect("outer recorder");
        assert!(t.events.is_empty());
    }

    #[test]
    fn dropped_guard_stops_recording() {
        let g = start();
        drop(g);
        THREAD.with(|t| assert!(t.borrow().recorders.is_empty()));
    }
}
