//! In-place operations on views (PyTorch's `CopySlices`): after `view.op_()`, the base's
//! history becomes a `CopySlices` node that runs the op's backward on the view's region of the
//! base's gradient and passes the rest through; the view becomes a view of that new history.

use std::any::Any;
use std::sync::Arc;

use opdispatch_dispatch::{DispatchError, Result};
use opdispatch_tensor::{ops, Dims, Tensor};

use crate::meta;
use crate::node::{Edge, Node, NodeCore, TensorMeta};

/// Where a view sits in a contiguous tensor of its base's shape.
#[derive(Clone)]
struct Geometry {
    sizes: Dims,
    strides: Dims,
    offset: usize,
}

impl Geometry {
    fn region(&self, t: &Tensor) -> Result<Tensor> {
        let r = ops::as_strided(t, &self.sizes, &self.strides, Some(self.offset))?;
        Ok(r)
    }
}

struct CopySlices {
    view: Geometry,
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
        let result = ops::clone(&g)?;
        let region = self.view.region(&result)?;
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

/// The view's history after the rebase: its gradient, placed in zeros of the base's shape.
struct ViewOfBase {
    base: TensorMeta,
    view: Geometry,
    core: NodeCore,
}

impl Node for ViewOfBase {
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
        let z = Tensor::zeros(&self.base.sizes, self.base.dtype, self.base.device)?;
        ops::copy_(&self.view.region(&z)?, &g)?;
        Ok(vec![Some(z)])
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Whether an in-place write to `view` (whose base requires grad) can be rebased here.
pub(crate) fn check(base: &Tensor, view: &Tensor) -> Result<()> {
    if !base.is_contiguous() || view.storage_offset() < base.storage_offset() {
        return Err(DispatchError::NotImplemented(
            "opdispatch: an in-place operation on a view of a non-contiguous tensor that requires grad is not supported yet".into(),
        ));
    }
    Ok(())
}

/// After the in-place `op` (already the view's `grad_fn`) wrote into `view`: gives `base` a
/// `CopySlices` history and makes `view` a view of it.
pub(crate) fn rebase(base: &Tensor, view: &Tensor, op: Arc<dyn Node>) {
    let geometry = Geometry {
        sizes: view.sizes().into(),
        strides: view.strides().into(),
        offset: view.storage_offset() - base.storage_offset(),
    };
    let mut next = vec![meta::gradient_edge(base)];
    next.extend(op.next_edges().iter().skip(1).cloned());
    let base_meta = TensorMeta::of(base);
    let cs: Arc<dyn Node> = Arc::new(CopySlices {
        view: geometry.clone(),
        op,
        core: NodeCore::new(next, vec![base_meta.clone()]),
    });
    meta::set_history(base, cs.clone(), 0);
    let v: Arc<dyn Node> = Arc::new(ViewOfBase {
        base: base_meta,
        view: geometry,
        core: NodeCore::new(vec![Edge::new(cs, 0)], vec![TensorMeta::of(view)]),
    });
    meta::set_history(view, v, 0);
}
