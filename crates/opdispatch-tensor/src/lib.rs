//! Tensor runtime of opdispatch: dtypes and promotion ([`dtype`]), devices
//! ([`device`]), intrusive-refcounted [`Storage`] and [`Tensor`] handles whose
//! impls carry a PyObject slot ([`pyobject`]), the operators' meta functions (output
//! geometry and dtype, [`ops::meta`]), the CPU loops ([`ops`]) and the CUDA loops
//! ([`cuda`], kernels generated and launched by the `opdispatch-cuda` crate).
//!
//! Pure Rust: the Python crate couples these handles to Python objects through
//! [`install_pyobject_hooks`]; the `opdispatch-aten` crate registers the kernels built on
//! these loops with the dispatcher, one module per backend.

pub mod cuda;
pub mod device;
mod dispatch_glue;
pub mod dtype;
pub mod element;
pub mod error;
pub mod ops;
pub mod parallel;
pub mod pyobject;
pub mod release;
mod small_buffers;
pub mod storage;
pub mod tensor;

pub use device::Device;
pub use dispatch_glue::AtenError;
pub use dtype::{promote_types, OperandKind, ResultTypeState, Scalar, ScalarType, DEFAULT_DTYPE};
pub use element::Element;
pub use error::{Result, TensorError};
pub use parallel::{get_num_threads, set_num_threads};
pub use pyobject::{
    disarm_pyobject_hooks, install_pyobject_hooks, pyobject_hooks_disarmed,
    pyobject_hooks_installed, AttachError, PyObjectHooks, PyObjectSlot,
};
pub use release::{install_compute_hook, ComputeHook};
pub use storage::{Storage, StorageImpl};
pub use tensor::{
    compute_key_set, contiguous_strides, contiguous_strides_dims, AutogradMetaInterface, Dims,
    Tensor, TensorData, TensorImpl,
};
