//! `SavedVariable`: a tensor a node keeps for its backward formula.
//!
//! A saved input keeps the tensor itself. A saved output keeps only a detached alias of its data
//! and a weak reference to the node (the node is the output's `grad_fn`, so a strong one would
//! make a cycle). Both remember the storage version at save time: an in-place write afterwards
//! makes the backward fail with PyTorch's error.

use std::sync::{Arc, Weak};

use opdispatch_dispatch::Result;
use opdispatch_tensor::Tensor;

use crate::grad_mode::is_grad_enabled;
use crate::meta;
use crate::node::Node;
use crate::runtime;

pub const FREED_MESSAGE: &str = "Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Saved intermediate values of the graph are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or if you need to access saved tensors after calling backward.";

pub struct SavedVariable {
    data: Option<Tensor>,
    saved_version: u64,
    output_nr: u32,
    /// Set for a saved output: the node it is an output of.
    output_of: Option<Weak<dyn Node>>,
}

impl SavedVariable {
    /// Saves an input (or any tensor that is not an output of the node saving it).
    pub fn input(t: &Tensor) -> Self {
        Self {
            data: Some(t.clone()),
            saved_version: t.version(),
            output_nr: meta::output_nr(t),
            output_of: None,
        }
    }

    /// Saves output `output_nr` of `node`.
    pub fn output(t: &Tensor, node: &Arc<dyn Node>, output_nr: u32) -> Self {
        Self {
            data: Some(t.shallow_alias()),
            saved_version: t.version(),
            output_nr,
            output_of: Some(Arc::downgrade(node)),
        }
    }

    pub fn is_released(&self) -> bool {
        self.data.is_none()
    }

    pub fn release(&mut self) {
        self.data = None;
    }

    /// The saved tensor, checked against in-place writes since it was saved. A saved output
    /// gets its history back when a higher-order graph is being built.
    pub fn unpack(&self) -> Result<Tensor> {
        let data = self.data.as_ref().ok_or_else(|| runtime(FREED_MESSAGE))?;
        let grad_fn = match &self.output_of {
            Some(w) => w.upgrade(),
            None => meta::grad_fn(data),
        };
        let current = data.version();
        if current != self.saved_version {
            let mut msg = format!(
                "one of the variables needed for gradient computation has been modified by an inplace operation: [{} {:?}]",
                legacy_type_name(data),
                data.sizes()
            );
            if let Some(f) = &grad_fn {
                msg.push_str(&format!(
                    ", which is output {} of {},",
                    self.output_nr,
                    forward_op_name(&f.name())
                ));
            }
            msg.push_str(&format!(
                " is at version {current}; expected version {} instead. Hint: enable anomaly detection to find the operation that failed to compute its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).",
                self.saved_version
            ));
            return Err(runtime(msg));
        }
        match (&self.output_of, grad_fn) {
            (Some(_), Some(node)) if is_grad_enabled() => {
                let t = data.shallow_alias();
                meta::set_history(&t, node, self.output_nr);
                Ok(t)
            }
            _ => Ok(data.clone()),
        }
    }
}

/// "AddBackward0" -> "Add" (the name PyTorch's messages give the forward op).
pub fn forward_op_name(node_name: &str) -> &str {
    match node_name.rfind("Backward") {
        Some(i)
            if node_name[i + "Backward".len()..]
                .bytes()
                .all(|b| b.is_ascii_digit()) =>
        {
            &node_name[..i]
        }
        _ => node_name,
    }
}

/// `torch.FloatTensor`-style names, as `Tensor.type()` and PyTorch's messages print them.
pub fn legacy_type_name(t: &Tensor) -> String {
    use opdispatch_tensor::ScalarType as S;
    let base = match t.dtype() {
        S::Float32 => "FloatTensor",
        S::Float64 => "DoubleTensor",
        S::Float16 => "HalfTensor",
        S::BFloat16 => "BFloat16Tensor",
        S::ComplexFloat => "ComplexFloatTensor",
        S::Int64 => "LongTensor",
        S::Int32 => "IntTensor",
        S::Int16 => "ShortTensor",
        S::Int8 => "CharTensor",
        S::UInt8 => "ByteTensor",
        S::Bool => "BoolTensor",
    };
    if t.is_meta() {
        format!("torch.meta.{base}")
    } else {
        format!("torch.{base}")
    }
}

/// A node's saved tensors, each under a key the node chooses (an argument index, say), freed
/// together after a backward that does not retain the graph.
#[derive(Default)]
pub struct SavedVariables {
    vars: parking_lot::Mutex<(Vec<(usize, SavedVariable)>, bool)>,
}

impl SavedVariables {
    pub fn push(&self, key: usize, v: SavedVariable) {
        self.vars.lock().0.push((key, v));
    }
    /// Every saved tensor, unpacked; PyTorch's error if they were freed.
    pub fn unpack_all(&self) -> Result<smallvec::SmallVec<[(usize, Tensor); 2]>> {
        let st = self.vars.lock();
        if st.1 && !st.0.is_empty() {
            return Err(runtime(FREED_MESSAGE));
        }
        // A plain loop: collecting `Result`s into a `SmallVec` went through the generic
        // `try_process` adapter, a few hundred instructions per node.
        let mut out = smallvec::SmallVec::new();
        for (k, v) in &st.0 {
            out.push((*k, v.unpack()?));
        }
        Ok(out)
    }
    pub fn release_all(&self) {
        let mut st = self.vars.lock();
        st.1 = true;
        for (_, v) in &mut st.0 {
            v.release();
        }
    }
}
