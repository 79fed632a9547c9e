//! Long computations let a front end release its interpreter lock.
//!
//! PyTorch releases the GIL around every operator it runs for Python. Here the kernels that
//! loop over tensor data ask the installed [`ComputeHook`] to run that loop, and only when the
//! work is large enough to pay for the two lock hand-offs: small operators (most calls) keep
//! the lock and stay cheap, long ones let other Python threads run.

use std::sync::OnceLock;

/// What a front end provides (the Python crate: release the GIL if this thread holds it).
pub trait ComputeHook: Sync {
    /// Runs `f` to completion, with the front end's lock released meanwhile if this thread
    /// holds it.
    fn run_released(&self, f: &mut (dyn FnMut() + Send));
}

static HOOK: OnceLock<&'static dyn ComputeHook> = OnceLock::new();

/// Installs the hook (once per process; later calls are ignored and return false).
pub fn install_compute_hook(h: &'static dyn ComputeHook) -> bool {
    HOOK.set(h).is_ok()
}

/// Elements of work from which a computation is run through the hook: far more than the cost
/// of releasing and re-taking a lock (a fraction of a microsecond).
pub const RELEASE_THRESHOLD: usize = 1 << 15;

/// Runs `f`, through the hook when `work` (elements touched, roughly) reaches
/// [`RELEASE_THRESHOLD`].
pub(crate) fn released<R: Send>(work: usize, f: impl FnOnce() -> R + Send) -> R {
    match HOOK.get() {
        Some(h) if work >= RELEASE_THRESHOLD => {
            let mut f = Some(f);
            let mut out = None;
            h.run_released(&mut || out = f.take().map(|f| f()));
            out.expect("a compute hook runs the computation it is given")
        }
        _ => f(),
    }
}
