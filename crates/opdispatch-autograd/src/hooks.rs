//! Tensor gradient hooks (`t.register_hook(fn)`) and `retain_grad`.
//!
//! A leaf keeps its hooks in its `AutogradMeta`; they run on the gradient reaching its
//! `AccumulateGrad`. A non-leaf's hooks are keyed by its `grad_fn` and output number in a
//! registry beside the graph (PyTorch keeps them on the node; our nodes are the formulas' own
//! structs), holding the node weakly, so an entry dies with its graph and is dropped at the
//! next registration.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use opdispatch_dispatch::Result;
use opdispatch_tensor::Tensor;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::node::{AccumulateGrad, Node};
use crate::{calls, meta, runtime};

/// A hook: sees the gradient, may replace it.
pub type GradHook = Arc<dyn Fn(&Tensor) -> Result<Option<Tensor>> + Send + Sync>;

struct Entry {
    node: Weak<dyn Node>,
    output_nr: u32,
    id: u64,
    hook: GradHook,
    /// The `retain_grad` hook: runs after the tensor's other hooks and follows the tensor to
    /// a new `grad_fn` (PyTorch's `retains_grad_hooks`).
    retains: bool,
}

static REGISTRY: Mutex<Option<FxHashMap<usize, Vec<Entry>>>> = Mutex::new(None);
/// Lets the engine skip the registry's lock while no non-leaf hook exists.
static ANY: AtomicBool = AtomicBool::new(false);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn addr(n: &Arc<dyn Node>) -> usize {
    Arc::as_ptr(n).cast::<()>().addr()
}

/// Registers `hook` on `t`'s gradient; returns an id for [`remove_hook`].
pub fn register_hook(t: &Tensor, hook: GradHook) -> Result<u64> {
    register(t, hook, false)
}

fn register(t: &Tensor, hook: GradHook, retains: bool) -> Result<u64> {
    if !t.requires_grad() {
        return Err(runtime(
            "cannot register a hook on a tensor that doesn't require gradient",
        ));
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    match meta::grad_fn(t) {
        None => meta::get_or_init(t).inner.lock().hooks.push((id, hook)),
        Some(node) => insert(&node, meta::output_nr(t), id, hook, retains),
    }
    Ok(id)
}

fn insert(node: &Arc<dyn Node>, output_nr: u32, id: u64, hook: GradHook, retains: bool) {
    let mut reg = REGISTRY.lock();
    let map = reg.get_or_insert_with(FxHashMap::default);
    map.retain(|_, v| {
        v.retain(|e| e.node.strong_count() > 0);
        !v.is_empty()
    });
    map.entry(addr(node)).or_default().push(Entry {
        node: Arc::downgrade(node),
        output_nr,
        id,
        hook,
        retains,
    });
    ANY.store(true, Ordering::Release);
}

/// A tensor's history moved from `old` to `new` (an in-place write, a regenerated view): its
/// `retain_grad` hook moves with it; other hooks stay on the old node, as in PyTorch's
/// `update_tensor_hooks_on_new_gradfn`.
pub(crate) fn move_retains_grad(old: Option<&Arc<dyn Node>>, new: &Arc<dyn Node>, output_nr: u32) {
    let Some(old) = old else { return };
    if !ANY.load(Ordering::Acquire) || Arc::ptr_eq(old, new) {
        return;
    }
    let moved = {
        let mut reg = REGISTRY.lock();
        let Some(v) = reg.as_mut().and_then(|m| m.get_mut(&addr(old))) else {
            return;
        };
        let mut moved = Vec::new();
        v.retain(|e| {
            let take = e.retains && std::ptr::addr_eq(e.node.as_ptr(), Arc::as_ptr(old));
            if take {
                moved.push((e.id, e.hook.clone()));
            }
            !take
        });
        moved
    };
    for (id, hook) in moved {
        insert(new, output_nr, id, hook, true);
    }
}

/// Removes a hook registered on `t` (the `RemovableHandle.remove()` of Python).
pub fn remove_hook(t: &Tensor, id: u64) {
    if let Some(m) = meta::get(t) {
        m.inner.lock().hooks.retain(|(i, _)| *i != id);
    }
    if let Some(map) = REGISTRY.lock().as_mut() {
        for v in map.values_mut() {
            v.retain(|e| e.id != id);
        }
    }
}

/// `t.retain_grad()` on a non-leaf: a hook that stores (then accumulates) the gradient in
/// `t.grad`. The hook holds `t`, so `t` lives as long as its graph does.
pub(crate) fn retain_grad_hook(t: &Tensor) -> Result<()> {
    let target = t.clone();
    let hook: GradHook = Arc::new(move |g: &Tensor| {
        let m = meta::get_or_init(&target);
        let old = m.inner.lock().grad.clone();
        let new = match old {
            None => calls::clone(g)?,
            Some(old) => calls::add(&old, g)?,
        };
        m.inner.lock().grad = Some(new);
        Ok(None)
    });
    register(t, hook, true).map(|_| ())
}

/// Runs the hooks registered for the gradients flowing into `node`.
pub(crate) fn run_pre_hooks(node: &Arc<dyn Node>, grads: &mut [Option<Tensor>]) -> Result<()> {
    if let Some(acc) = node.as_any().downcast_ref::<AccumulateGrad>() {
        let hooks: Vec<GradHook> = match meta::get(acc.variable()) {
            Some(m) => m
                .inner
                .lock()
                .hooks
                .iter()
                .map(|(_, h)| h.clone())
                .collect(),
            None => Vec::new(),
        };
        if let Some(slot) = grads.first_mut() {
            apply(&hooks, slot)?;
        }
        return Ok(());
    }
    if !ANY.load(Ordering::Acquire) {
        return Ok(());
    }
    let mut entries: Vec<(bool, u32, GradHook)> = {
        let reg = REGISTRY.lock();
        match reg.as_ref().and_then(|m| m.get(&addr(node))) {
            Some(v) => v
                .iter()
                .filter(|e| std::ptr::addr_eq(e.node.as_ptr(), Arc::as_ptr(node)))
                .map(|e| (e.retains, e.output_nr, e.hook.clone()))
                .collect(),
            None => return Ok(()),
        }
    };
    // The tensor hooks in registration order, then the retain_grad hooks (a stable sort).
    entries.sort_by_key(|(retains, _, _)| *retains);
    let entries = entries.into_iter().map(|(_, nr, h)| (nr, h));
    for (nr, hook) in entries {
        if let Some(slot) = grads.get_mut(nr as usize) {
            apply(std::slice::from_ref(&hook), slot)?;
        }
    }
    Ok(())
}

fn apply(hooks: &[GradHook], slot: &mut Option<Tensor>) -> Result<()> {
    for h in hooks {
        if let Some(g) = slot.as_ref() {
            if let Some(new) = h(g)? {
                *slot = Some(new);
            }
        }
    }
    Ok(())
}
