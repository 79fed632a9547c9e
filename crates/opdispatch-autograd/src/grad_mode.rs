//! Grad mode: a thread-local flag (c10's `GradMode`), read by every Autograd kernel.

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static INFERENCE: Cell<bool> = const { Cell::new(false) };
}

#[inline]
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

pub fn set_grad_enabled(on: bool) {
    GRAD_ENABLED.with(|c| c.set(on));
}

/// Whether an `inference_mode` block is active on this thread.
pub fn is_inference_mode_enabled() -> bool {
    INFERENCE.with(Cell::get)
}

pub fn set_inference_mode(on: bool) {
    INFERENCE.with(|c| c.set(on));
}

/// Sets grad mode for a scope and restores the previous one on drop (`AutoGradMode`).
#[derive(Debug)]
pub struct AutoGradMode {
    prev: bool,
}

impl AutoGradMode {
    pub fn new(enabled: bool) -> Self {
        let prev = is_grad_enabled();
        set_grad_enabled(enabled);
        Self { prev }
    }
}

impl Drop for AutoGradMode {
    fn drop(&mut self) {
        set_grad_enabled(self.prev);
    }
}
