//! In-place operations on views (PyTorch's `CopySlices`) and the history of views whose base
//! changed in place (`AsStridedBackward0`).
//!
//! After `view.op_()`, the base's history becomes a `CopySlices` node that runs the op's
//! backward on the view's region of the base's gradient and passes the rest through. Every view
//! of that base whose version is now stale (the view written to included) gets, the next time
//! its history is read, an `AsStridedBackward0` node into the base's new history (see
//! `meta::refresh_view`). Both nodes lay the base's gradient out with the base's own strides, so
//! bases of any geometry work.

use std::any::Any;
use std::sync::Arc;

use opdispatch_dispatch::{DispatchError, Result};
use opdispatch_tensor::{ops, Dims, Tensor};

use crate::meta;
use crate::node::{Node, NodeCore, TensorMeta};

/// A tensor's geometry in its storage.
#[derive(Clone)]
pub(crate) struct Geometry {
    sizes: Dims,
    strides: Dims,
    offset: usize,
}

impl Geometry {
    pub(crate) fn of(t: &Tensor) -> Self {
        Self {
            sizes: Dims::from_slice(t.sizes()),
            strides: Dims::from_slice(t.strides()),
            offset: t.storage_offset(),
        }
    }

    /// Elements of storage the geometry spans from its offset.
    fn extent(&self) -> usize {
        if self.sizes.contains(&0) {
            return 0;
        }
        1 + self
            .sizes
            .iter()
            .zip(&self.strides)
            .map(|(s, st)| (s - 1) * st)
            .sum::<usize>()
    }
}

/// A zero-filled tensor laid out like `base` (PyTorch's `new_zeros_strided` /
/// `new_empty_strided` with the base's sizes and strides), and the region `view` occupies in it.
fn base_and_region(
    base: &Geometry,
    view: &Geometry,
    like: &TensorMeta,
) -> Result<(Tensor, Tensor)> {
    let rel = view
        .offset
        .checked_sub(base.offset)
        .ok_or_else(|| DispatchError::Internal("a view starts before its base".into()))?;
    let n = base.extent().max(rel + view.extent());
    let flat = Tensor::zeros(&[n], like.dtype, like.device)?;
    let full = ops::as_strided(&flat, &base.sizes, &base.strides, Some(0))?;
    let region = ops::as_strided(&flat, &view.sizes, &view.strides, Some(rel))?;
    Ok((full, region))
}

struct CopySlices {
    base: Geometry,
    view: Geometry,
    base_meta: TensorMeta,
    op: Arc<dyn Node>,
    core: NodeCore,
}

impl Node for CopySlices {
    fn name(&self) -> String {
        "CopySlices".into()
    }
    fn core(&self) -> &NodeCore {
        &self.core
    }
    fn apply(&self, grads: Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = grads.into_iter().next().flatten() else {
            return Ok(vec![None; self.core.next.len()]);
        };
        let (result, region) = base_and_region(&self.base, &self.view, &self.base_meta)?;
        ops::copy_(&result, &g)?;
        let mut res = self.op.apply(vec![Some(ops::clone(&region)?)])?;
        match res.first_mut().and_then(Option::take) {
            Some(gs) => ops::copy_(&region, &gs)?,
            None => ops::zero_(&region)?,
        }
        let mut out = Vec::with_capacity(self.core.next.len());
        out.push(Some(result));
        out.extend(res.into_iter().skip(1));
        out.resize(self.core.next.len(), None);
        Ok(out)
    }
    fn release_variables(&self) {
        self.op.release_variables();
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The history of a view after its base changed in place: its gradient, placed in zeros laid
/// out like the base (PyTorch's `as_strided_backward` for a view without overlap).
pub(crate) struct AsStridedBackward {
    base: Geometry,
    view: Geometry,
    base_meta: TensorMeta,
    core: NodeCore,
}

impl Node for AsStridedBackward {
    fn name(&self) -> String {
        "AsStridedBackward0".into()
    }
    fn core(&self) -> &NodeCore {
        &self.core
    }
    fn apply(&self, grads: Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = grads.into_iter().next().flatten() else {
            return Ok(vec![None]);
        };
        let (full, region) = base_and_region(&self.base, &self.view, &self.base_meta)?;
        ops::copy_(&region, &g)?;
        Ok(vec![Some(full)])
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The node a stale view's history becomes: into `base`'s current history.
pub(crate) fn view_of_base(base: &Tensor, view: &Tensor) -> Arc<dyn Node> {
    let base_meta = TensorMeta::of(base);
    // The gradient arriving has the view's sizes and the base's dtype and device.
    let mut input = base_meta.clone();
    input.sizes = Dims::from_slice(view.sizes());
    Arc::new(AsStridedBackward {
        base: Geometry::of(base),
        view: Geometry::of(view),
        base_meta,
        core: NodeCore::new(vec![meta::gradient_edge(base)], vec![input]),
    })
}

/// Whether an in-place write to `view` can be rebased onto `base`.
pub(crate) fn check(base: &Tensor, view: &Tensor) -> Result<()> {
    if view.storage_offset() < base.storage_offset() {
        return Err(DispatchError::Internal(
            "a view starts before its base in storage".into(),
        ));
    }
    Ok(())
}

/// After the in-place `op` wrote into `view`: gives `base` a `CopySlices` history (PyTorch's
/// `rebase_history` for a view); the view's own history is regenerated from it, since its
/// version moved.
pub(crate) fn rebase(base: &Tensor, view: &Tensor, op: Arc<dyn Node>) {
    let mut next = vec![meta::gradient_edge(base)];
    next.extend(op.next_edges().iter().skip(1).cloned());
    let base_meta = TensorMeta::of(base);
    let cs: Arc<dyn Node> = Arc::new(CopySlices {
        base: Geometry::of(base),
        view: Geometry::of(view),
        base_meta: base_meta.clone(),
        op,
        core: NodeCore::new(next, vec![base_meta]),
    });
    meta::set_history(base, cs, 0);
    meta::refresh_view_now(view);
}
