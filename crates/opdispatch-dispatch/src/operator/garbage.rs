//! What registrations release only after every lock is dropped.

use super::{AnnotatedKernel, MasterTable, OperatorHandle};
use crate::kernel::KernelFunction;

/// Values taken out of the registry while its locks are held. One of them may be the last
/// reference to a Python kernel, and releasing that runs arbitrary Python code (`__del__`,
/// finalizers) that may call back into the dispatcher, so they are dropped only after every
/// lock is released: callers create the `Garbage` before taking the locks.
#[derive(Default)]
pub(crate) struct Garbage {
    pub(crate) annotated: Vec<AnnotatedKernel>,
    /// References a master table listed and no slot uses any more.
    pub(crate) kernels: Vec<KernelFunction>,
    pub(crate) tables: Vec<crate::rcu::Retired>,
    /// Master tables of removed operators, kept boxed as `OpState` held them (no moves).
    #[allow(clippy::vec_box)]
    pub(crate) masters: Vec<Box<MasterTable>>,
    pub(crate) ops: Vec<OperatorHandle>,
}

impl Drop for Garbage {
    fn drop(&mut self) {
        // Unpublished snapshots may still be read by calls in flight.
        crate::rcu::retire_all(std::mem::take(&mut self.tables));
    }
}
