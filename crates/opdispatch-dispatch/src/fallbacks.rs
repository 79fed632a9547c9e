//! The backend fallbacks PyTorch 2.15 registers at start-up, registered here too so computed
//! tables and calls agree with PyTorch for the keys opdispatch models.
//!
//! - BackendSelect, ADInplaceOrView, the autocast keys and the vmap-mode keys fall through.
//! - The autograd keys get PyTorch's basic autograd fallback: nothing requires grad here, so it
//!   redispatches below autograd.
//! - Meta raises PyTorch's "no fake impl or Meta kernel" error.
//! - PreDispatch and PythonTLSSnapshot redispatch to the next key.

use opdispatch_keys::{DispatchKey, DispatchKeySet, AFTER_AUTOGRAD_KEYSET};

use crate::dispatcher::Dispatcher;
use crate::error::{DispatchError, Result};
use crate::ivalue::Stack;
use crate::kernel::KernelFunction;
use crate::operator::OperatorHandle;

fn debug_at(line: u32) -> String {
    format!("registered at {}:{line}", file!())
}

fn meta_fallback(op: &OperatorHandle, _ks: DispatchKeySet, _stack: &mut Stack) -> Result<()> {
    Err(DispatchError::NotImplemented(format!(
        "{}: attempted to run this operator with Meta tensors, but there was no fake impl or Meta kernel registered. You may have run into this message while using an operator with PT2 compilation APIs (torch.compile/torch.export); in order to use this operator with those APIs you'll need to add a fake impl. Please see the following for next steps:  https://pytorch.org/tutorials/advanced/custom_ops_landing_page.html",
        op.operator_name()
    )))
}

pub(crate) fn register_default_fallbacks(d: &'static Dispatcher) {
    use DispatchKey as K;
    let reg = |k: DispatchKey, kernel: KernelFunction, line: u32| {
        d.register_fallback(k, kernel, debug_at(line))
            .expect("default fallbacks are registered once, on distinct keys")
            .leak();
    };
    reg(K::Meta, KernelFunction::from_boxed(meta_fallback), line!());
    reg(K::BackendSelect, KernelFunction::fallthrough(), line!());
    reg(K::ADInplaceOrView, KernelFunction::fallthrough(), line!());
    // One kernel object for all autograd keys: tables then hold it once, not twelve times.
    let autograd = KernelFunction::redispatch_masked(AFTER_AUTOGRAD_KEYSET);
    for k in [
        K::AutogradOther,
        K::AutogradCPU,
        K::AutogradCUDA,
        K::AutogradXLA,
        K::AutogradMPS,
        K::AutogradXPU,
        K::AutogradHPU,
        K::AutogradLazy,
        K::AutogradMTIA,
        K::AutogradMAIA,
        K::AutogradPrivateUse1,
        K::AutogradMeta,
    ] {
        reg(k, autograd.clone(), line!());
    }
    for k in [
        K::AutocastCPU,
        K::AutocastMTIA,
        K::AutocastMAIA,
        K::AutocastXPU,
        K::AutocastMPS,
        K::AutocastCUDA,
    ] {
        reg(k, KernelFunction::fallthrough(), line!());
    }
    reg(K::FuncTorchVmapMode, KernelFunction::fallthrough(), line!());
    reg(K::VmapMode, KernelFunction::fallthrough(), line!());
    reg(
        K::PythonTLSSnapshot,
        KernelFunction::redispatch_masked(DispatchKeySet::full_after(K::PythonTLSSnapshot)),
        line!(),
    );
    reg(
        K::PreDispatch,
        KernelFunction::redispatch_masked(DispatchKeySet::full_after(K::PreDispatch)),
        line!(),
    );
}
