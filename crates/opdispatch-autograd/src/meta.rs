//! Per-tensor autograd state (PyTorch's `AutogradMeta`), kept on the `TensorImpl`.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use opdispatch_dispatch::Result;
use opdispatch_tensor::{AutogradMetaInterface, Tensor};
use parking_lot::Mutex;

use crate::calls;
use crate::node::{AccumulateGrad, Edge, Node};
use crate::runtime;

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) grad: Option<Tensor>,
    pub(crate) grad_fn: Option<Arc<dyn Node>>,
    pub(crate) output_nr: u32,
    pub(crate) grad_accumulator: Option<Weak<AccumulateGrad>>,
    /// For a view of a floating-point or complex tensor: the base at the root of its views.
    pub(crate) base: Option<Tensor>,
    /// The storage version when this view's history was last set (PyTorch's `attr_version`):
    /// once the base or another view of it is written in place, the history is regenerated.
    pub(crate) attr_version: u64,
    /// The view was made with grad mode off (PyTorch's `CreationMeta::NO_GRAD_MODE`).
    pub(crate) no_grad_view: bool,
    pub(crate) retains_grad: bool,
    /// A leaf's gradient hooks (non-leaf hooks live in `hooks.rs`'s registry).
    pub(crate) hooks: Vec<(u64, crate::hooks::GradHook)>,
}

/// The autograd state of one tensor.
#[derive(Default)]
pub struct AutogradMeta {
    leaf_requires_grad: AtomicBool,
    has_grad_fn: AtomicBool,
    /// A view tracked for autograd (`inner.base` is set); it requires grad when its base does.
    is_view: AtomicBool,
    pub(crate) inner: Mutex<Inner>,
}

impl std::fmt::Debug for AutogradMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutogradMeta")
            .field("requires_grad", &self.requires_grad())
            .finish_non_exhaustive()
    }
}

impl AutogradMetaInterface for AutogradMeta {
    #[inline]
    fn requires_grad(&self) -> bool {
        self.leaf_requires_grad.load(Ordering::Relaxed)
            || self.has_grad_fn.load(Ordering::Relaxed)
            || (self.is_view.load(Ordering::Relaxed) && self.view_base_requires_grad())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl AutogradMeta {
    /// Whether the base of this view requires grad (PyTorch's `DifferentiableViewMeta`
    /// rule; views made with grad mode off follow it too, though they stay leaves).
    #[cold]
    fn view_base_requires_grad(&self) -> bool {
        let base = self.inner.lock().base.clone();
        base.is_some_and(|b| b.requires_grad())
    }
}

/// The tensor's autograd state, if it has any.
pub fn get(t: &Tensor) -> Option<&AutogradMeta> {
    t.autograd_meta()
        .and_then(|m| m.as_any().downcast_ref::<AutogradMeta>())
}

/// The tensor's autograd state, created empty if absent.
pub fn get_or_init(t: &Tensor) -> &AutogradMeta {
    t.autograd_meta_or_init(|| Box::<AutogradMeta>::default())
        .as_any()
        .downcast_ref::<AutogradMeta>()
        .expect("only opdispatch-autograd stores autograd metadata")
}

pub fn grad_fn(t: &Tensor) -> Option<Arc<dyn Node>> {
    let m = get(t)?;
    refresh_view(t, m);
    m.inner.lock().grad_fn.clone()
}

/// PyTorch's view + in-place rule: a view whose base (or another view of the base) was written
/// in place since its history was set gets a new history, an `AsStridedBackward0` into the
/// base's current one (`VariableHooks::grad_fn`).
fn refresh_view(t: &Tensor, m: &AutogradMeta) {
    if !m.is_view.load(Ordering::Relaxed) {
        return;
    }
    let base = {
        let inner = m.inner.lock();
        if inner.no_grad_view || inner.attr_version == t.version() {
            return;
        }
        inner.base.clone()
    };
    let Some(base) = base else { return };
    if !m.has_grad_fn.load(Ordering::Relaxed) && !base.requires_grad() {
        return;
    }
    regenerate(t, m, &base);
}

fn regenerate(t: &Tensor, m: &AutogradMeta, base: &Tensor) {
    let node = crate::copy_slices::view_of_base(base, t);
    let old = {
        let mut inner = m.inner.lock();
        inner.output_nr = 0;
        inner.attr_version = t.version();
        inner.grad_fn.replace(node.clone())
    };
    m.has_grad_fn.store(true, Ordering::Relaxed);
    crate::hooks::move_retains_grad(old.as_ref(), &node, 0);
}

/// Regenerates `view`'s history now (after an in-place write through it rebased its base).
pub(crate) fn refresh_view_now(view: &Tensor) {
    let Some(m) = get(view) else { return };
    let Some(base) = m.inner.lock().base.clone() else {
        return;
    };
    regenerate(view, m, &base);
}

pub fn output_nr(t: &Tensor) -> u32 {
    get(t).map_or(0, |m| m.inner.lock().output_nr)
}

pub fn is_leaf(t: &Tensor) -> bool {
    get(t).is_none_or(|m| {
        refresh_view(t, m);
        !m.has_grad_fn.load(Ordering::Relaxed)
    })
}

/// Whether `dtype` can require gradients (floating point and complex).
pub fn is_differentiable(t: &Tensor) -> bool {
    t.is_floating_point() || t.is_complex()
}

/// torch's texts for an integral tensor asked to require grad: factories' `requires_grad=`
/// (and this crate's own callers), the `requires_grad` setter, and `requires_grad_()`.
pub const FACTORY_DTYPE_ERROR: &str =
    "Only Tensors of floating point and complex dtype can require gradients";
pub const SETTER_DTYPE_ERROR: &str =
    "only Tensors of floating point and complex dtype can require gradients";
pub const METHOD_DTYPE_ERROR: &str = "only Tensors of floating point dtype can require gradients";

/// `requires_grad=` on a factory: only leaves, and only floating point or complex ones.
pub fn set_requires_grad(t: &Tensor, on: bool) -> Result<()> {
    set_requires_grad_with(t, on, FACTORY_DTYPE_ERROR)
}

/// [`set_requires_grad`] with the caller's text for a dtype that cannot require grad.
pub fn set_requires_grad_with(t: &Tensor, on: bool, dtype_error: &str) -> Result<()> {
    if !is_leaf(t) {
        return Err(runtime(if on {
            "you can only change requires_grad flags of leaf variables."
        } else {
            "you can only change requires_grad flags of leaf variables. If you want to use a computed variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
        }));
    }
    if on && !is_differentiable(t) {
        return Err(runtime(dtype_error));
    }
    if !on && get(t).is_none() {
        return Ok(());
    }
    get_or_init(t)
        .leaf_requires_grad
        .store(on, Ordering::Relaxed);
    Ok(())
}

pub fn grad(t: &Tensor) -> Option<Tensor> {
    get(t).and_then(|m| m.inner.lock().grad.clone())
}

pub fn set_grad(t: &Tensor, g: Option<Tensor>) -> Result<()> {
    if let Some(g) = &g {
        if g.sizes() != t.sizes() {
            return Err(runtime("assigned grad has data of a different size"));
        }
        if g.dtype() != t.dtype() {
            return Err(runtime("assigned grad has data of a different type"));
        }
    }
    if g.is_none() && get(t).is_none() {
        return Ok(());
    }
    get_or_init(t).inner.lock().grad = g;
    Ok(())
}

pub fn retains_grad(t: &Tensor) -> bool {
    get(t).is_some_and(|m| m.inner.lock().retains_grad)
}

/// `t.retain_grad()`: a non-leaf keeps the gradient that reaches it.
pub fn retain_grad(t: &Tensor) -> Result<()> {
    if !t.requires_grad() {
        return Err(runtime(
            "can't retain_grad on Tensor that has requires_grad=False",
        ));
    }
    if is_leaf(t) {
        return Ok(());
    }
    if retains_grad(t) {
        return Ok(());
    }
    crate::hooks::retain_grad_hook(t)?;
    get_or_init(t).inner.lock().retains_grad = true;
    Ok(())
}

/// Makes `t` output `output_nr` of `node` (`set_history`; for an in-place op,
/// `rebase_history`).
pub fn set_history(t: &Tensor, node: Arc<dyn Node>, output_nr: u32) {
    let m = get_or_init(t);
    let old = {
        let mut inner = m.inner.lock();
        inner.output_nr = output_nr;
        inner.attr_version = t.version();
        inner.grad_fn.replace(node.clone())
    };
    m.has_grad_fn.store(true, Ordering::Relaxed);
    if old.is_some() {
        crate::hooks::move_retains_grad(old.as_ref(), &node, output_nr);
    }
}

/// Makes `t` a view of `base` (the root of its views), as of `t`'s current version;
/// `grad_mode` is whether grad mode was on when the view was made.
pub fn set_base(t: &Tensor, base: Tensor, grad_mode: bool) {
    let m = get_or_init(t);
    {
        let mut inner = m.inner.lock();
        inner.base = Some(base);
        inner.attr_version = t.version();
        inner.no_grad_view = !grad_mode;
    }
    m.is_view.store(true, Ordering::Relaxed);
}

pub fn base(t: &Tensor) -> Option<Tensor> {
    get(t).and_then(|m| m.inner.lock().base.clone())
}

/// Whether `t` is a view made with grad mode off.
pub(crate) fn is_no_grad_view(t: &Tensor) -> bool {
    get(t).is_some_and(|m| m.inner.lock().no_grad_view)
}

/// The leaf's gradient accumulator, shared by every graph that uses the leaf.
pub fn grad_accumulator(t: &Tensor) -> Arc<AccumulateGrad> {
    let m = get_or_init(t);
    let mut inner = m.inner.lock();
    if let Some(acc) = inner.grad_accumulator.as_ref().and_then(Weak::upgrade) {
        return acc;
    }
    let acc = Arc::new(AccumulateGrad::new(t.clone()));
    inner.grad_accumulator = Some(Arc::downgrade(&acc));
    acc
}

/// Where the gradient of `t` goes (PyTorch's `gradient_edge`).
pub fn gradient_edge(t: &Tensor) -> Edge {
    let Some(m) = get(t) else {
        return Edge::default();
    };
    refresh_view(t, m);
    {
        let inner = m.inner.lock();
        if let Some(f) = &inner.grad_fn {
            return Edge::new(f.clone(), inner.output_nr);
        }
    }
    if m.leaf_requires_grad.load(Ordering::Relaxed) {
        let acc: Arc<dyn Node> = grad_accumulator(t);
        return Edge::new(acc, 0);
    }
    Edge::default()
}

/// Adds `g` into `t.grad`, by AccumulateGrad's rule: the first gradient is stored as a
/// `detach` of itself when nothing else can reach it and it has `t`'s layout (torch steals
/// the buffer), else as a copy in `t`'s layout; later ones are added in place, or out of place
/// when building a higher-order graph.
pub(crate) fn accumulate_grad(t: &Tensor, g: Tensor, create_graph: bool) -> Result<()> {
    let m = get_or_init(t);
    let current = m.inner.lock().grad.clone();
    let new = match current {
        None if !create_graph && g.is_sole_reference() && obeys_layout_contract(&g, t) => {
            calls::detach(&g)?
        }
        None => clone_obey_contract(&g, t)?,
        Some(old) if create_graph => calls::add(&old, &g)?,
        Some(old) => {
            // Nothing to record here (`.grad` does not require grad): straight to
            // ADInplaceOrView, which bumps the version, then the backend.
            let _below = opdispatch_dispatch::ExcludeDispatchKeyGuard::new(
                opdispatch_keys::AUTOGRAD_DISPATCH_KEYSET,
            );
            calls::add_inplace(&old, &g)?;
            old
        }
    };
    m.inner.lock().grad = Some(new);
    Ok(())
}

/// Whether `g` may become `t.grad` as it is: the strides of `t` (if `t` is dense) in every
/// dimension longer than one, else contiguous (torch's `obeys_layout_contract`).
fn obeys_layout_contract(g: &Tensor, t: &Tensor) -> bool {
    if t.is_non_overlapping_and_dense() {
        g.sizes()
            .iter()
            .zip(g.strides().iter().zip(t.strides()))
            .all(|(&n, (gs, ts))| n == 1 || gs == ts)
    } else {
        g.is_contiguous()
    }
}

/// A copy of `g` in `t`'s layout (torch's `clone_obey_contract`): `new_empty_strided` with
/// `t`'s geometry then `copy_`, so a graph being built records `CopyBackwards`.
fn clone_obey_contract(g: &Tensor, t: &Tensor) -> Result<Tensor> {
    if t.is_non_overlapping_and_dense() {
        let out = calls::new_empty_strided(g, t.sizes(), t.strides())?;
        calls::copy_(&out, g)
    } else {
        calls::clone(g)
    }
}

/// `t.detach_()`: drops the history; `t` becomes a leaf that does not require grad.
pub fn detach_inplace(t: &Tensor) {
    if let Some(m) = get(t) {
        let mut inner = m.inner.lock();
        inner.grad_fn = None;
        inner.output_nr = 0;
        inner.base = None;
        m.is_view.store(false, Ordering::Relaxed);
        m.has_grad_fn.store(false, Ordering::Relaxed);
        m.leaf_requires_grad.store(false, Ordering::Relaxed);
    }
}
