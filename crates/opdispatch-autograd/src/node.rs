//! Graph nodes (PyTorch's `Node`): a node takes the gradients of a forward call's outputs and
//! returns the gradients of its inputs, which flow along its next edges.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opdispatch_dispatch::Result;
use opdispatch_tensor::{Device, Dims, ScalarType, Tensor};

use crate::grad_mode::is_grad_enabled;
use crate::meta;

/// Where a gradient goes: input `input_nr` of `function`, or nowhere (`None`: the input did not
/// require grad).
#[derive(Clone, Default)]
pub struct Edge {
    pub function: Option<Arc<dyn Node>>,
    pub input_nr: u32,
}

impl Edge {
    pub fn new(function: Arc<dyn Node>, input_nr: u32) -> Self {
        Self {
            function: Some(function),
            input_nr,
        }
    }
    pub fn is_valid(&self) -> bool {
        self.function.is_some()
    }
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.function {
            Some(n) => write!(f, "Edge({}, {})", n.name(), self.input_nr),
            None => f.write_str("Edge(None)"),
        }
    }
}

/// The shape, dtype and device a gradient flowing into a node input must have (PyTorch's
/// `InputMetadata`): the engine reduces broadcast gradients to it and casts dtypes.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorMeta {
    pub sizes: Dims,
    pub dtype: ScalarType,
    pub device: Device,
}

impl TensorMeta {
    pub fn of(t: &Tensor) -> Self {
        Self {
            // One copy of the slice (`into()` extends element by element).
            sizes: Dims::from_slice(t.sizes()),
            dtype: t.dtype(),
            device: t.device(),
        }
    }
}

/// What every node has: its creation order, where its outputs go, and what its inputs must
/// look like.
pub struct NodeCore {
    /// Order of creation: the engine runs ready nodes newest first, as PyTorch does.
    pub seq: u64,
    pub next: Vec<Edge>,
    /// One entry per gradient the node receives (the forward call's outputs).
    pub inputs: Vec<TensorMeta>,
}

impl NodeCore {
    /// A core with the next sequence number.
    pub fn new(next: Vec<Edge>, inputs: Vec<TensorMeta>) -> Self {
        Self {
            seq: next_sequence_nr(),
            next,
            inputs,
        }
    }
}

/// A node of the backward graph.
pub trait Node: Send + Sync + 'static {
    /// PyTorch's class name of the node (`MulBackward0`, `AccumulateGrad`, `SqBackward`).
    fn name(&self) -> String;
    fn core(&self) -> &NodeCore;
    fn next_edges(&self) -> &[Edge] {
        &self.core().next
    }
    /// One entry per gradient this node receives (the forward call's outputs).
    fn input_metadata(&self) -> &[TensorMeta] {
        &self.core().inputs
    }
    fn sequence_nr(&self) -> u64 {
        self.core().seq
    }
    /// Gradients of the forward inputs (one per next edge) from those of the outputs.
    fn apply(&self, grads: Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>>;
    /// Frees saved tensors (after a backward without `retain_graph`).
    fn release_variables(&self) {}
    fn as_any(&self) -> &dyn Any;
}

static SEQUENCE_NR: AtomicU64 = AtomicU64::new(0);

pub fn next_sequence_nr() -> u64 {
    SEQUENCE_NR.fetch_add(1, Ordering::Relaxed)
}

/// The node that adds the gradient of a leaf into its `.grad`.
pub struct AccumulateGrad {
    variable: Tensor,
    core: NodeCore,
}

impl AccumulateGrad {
    pub fn new(variable: Tensor) -> Self {
        let core = NodeCore {
            // PyTorch gives AccumulateGrad the highest priority: a leaf's gradient is ready as
            // soon as every path into it is done.
            seq: u64::MAX,
            next: Vec::new(),
            inputs: vec![TensorMeta::of(&variable)],
        };
        Self { variable, core }
    }
    pub fn variable(&self) -> &Tensor {
        &self.variable
    }
}

impl Node for AccumulateGrad {
    fn name(&self) -> String {
        "AccumulateGrad".into()
    }
    fn core(&self) -> &NodeCore {
        &self.core
    }
    fn apply(&self, mut grads: Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = grads.pop().flatten() else {
            return Ok(Vec::new());
        };
        meta::accumulate_grad(&self.variable, g, is_grad_enabled())?;
        Ok(Vec::new())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
