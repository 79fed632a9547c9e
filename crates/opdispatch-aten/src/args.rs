//! Reading boxed arguments: the IValue encodings PyTorch's boxed calling convention uses
//! (Scalar as Int/Double/Bool/Complex, `int[]` as IntList, ScalarType as Int with c10's
//! numbering, Device as a device string, absent optionals as None). `KernelArg` for `Scalar`
//! (so Scalar-taking kernels can be typed) lives with the runtime, in its `dispatch_glue.rs`.

use std::sync::Arc;

use opdispatch_dispatch::{DispatchError, IValue, KernelArg, Result, Stack, TensorRef};

use opdispatch_tensor::{AtenError, Device, Scalar, ScalarType, Tensor, TensorError};

/// PyTorch's `c10::ScalarType` number of a dtype (Byte=0 ... BFloat16=15).
pub fn scalar_type_code(st: ScalarType) -> i64 {
    st.c10_code()
}

/// The dtype with PyTorch's `c10::ScalarType` number `code`, if opdispatch has it.
pub fn scalar_type_from_code(code: i64) -> Option<ScalarType> {
    ScalarType::from_c10_code(code)
}

/// c10's names for the ScalarType numbers opdispatch lacks (for error messages).
fn c10_scalar_type_name(code: i64) -> String {
    match code {
        8 => "ComplexHalf".into(),
        10 => "ComplexDouble".into(),
        12 => "QInt8".into(),
        13 => "QUInt8".into(),
        14 => "QInt32".into(),
        16 => "QUInt4x2".into(),
        17 => "QUInt2x4".into(),
        23 => "Float8_e5m2".into(),
        24 => "Float8_e4m3fn".into(),
        _ => format!("ScalarType({code})"),
    }
}

pub(crate) fn type_error(expected: &str, got: &IValue) -> DispatchError {
    DispatchError::Type(format!(
        "expected a value of type '{expected}' but found '{}'",
        got.type_name()
    ))
}

fn scalar_of(v: IValue) -> Result<Scalar> {
    Scalar::from_ivalue(v)
}

fn tensor_of(v: IValue) -> Result<Tensor> {
    Tensor::from_ivalue(v)
}

/// Downcasts a boxed tensor handle to this crate's [`Tensor`].
pub(crate) fn tensor_of_ref(t: &TensorRef) -> Result<Tensor> {
    t.downcast::<Tensor>()
        .ok_or_else(|| DispatchError::Type("expected an opdispatch Tensor".into()))
}

/// A kernel's arguments, popped off the stack in schema order.
pub(crate) struct Args(smallvec::IntoIter<[IValue; 8]>);

impl Args {
    /// Pops the last `n` values of `stack`.
    pub(crate) fn take(stack: &mut Stack, n: usize) -> Result<Self> {
        if stack.len() < n {
            return Err(DispatchError::Internal(format!(
                "stack underflow: the kernel expects {n} arguments but the stack holds {}",
                stack.len()
            )));
        }
        let start = stack.len() - n;
        Ok(Self(stack.drain(start..).collect::<Stack>().into_iter()))
    }

    fn next(&mut self) -> IValue {
        self.0.next().unwrap_or_default()
    }

    pub(crate) fn tensor(&mut self) -> Result<Tensor> {
        tensor_of(self.next())
    }

    pub(crate) fn scalar(&mut self) -> Result<Scalar> {
        scalar_of(self.next())
    }

    pub(crate) fn int(&mut self) -> Result<i64> {
        match self.next() {
            IValue::Int(i) => Ok(i),
            other => Err(type_error("int", &other)),
        }
    }

    pub(crate) fn opt_int(&mut self) -> Result<Option<i64>> {
        match self.next() {
            IValue::None => Ok(None),
            IValue::Int(i) => Ok(Some(i)),
            other => Err(type_error("int?", &other)),
        }
    }

    pub(crate) fn float(&mut self) -> Result<f64> {
        match self.next() {
            IValue::Double(f) => Ok(f),
            IValue::Int(i) => Ok(i as f64),
            other => Err(type_error("float", &other)),
        }
    }

    /// A `Generator? generator` argument: only the default generator exists here.
    pub(crate) fn no_generator(&mut self) -> Result<()> {
        match self.next() {
            IValue::None => Ok(()),
            _ => Err(DispatchError::NotImplemented(
                "opdispatch: only the default CPU generator is supported (pass generator=None)"
                    .into(),
            )),
        }
    }

    /// `random_.from`'s `int? to`: only an explicit bound is supported.
    pub(crate) fn random_to(&mut self) -> Result<i64> {
        match self.next() {
            IValue::Int(i) => Ok(i),
            IValue::None => Err(DispatchError::NotImplemented(
                "opdispatch: random_(from, to=None) is not supported; pass an upper bound".into(),
            )),
            other => Err(type_error("int?", &other)),
        }
    }

    pub(crate) fn bool(&mut self) -> Result<bool> {
        match self.next() {
            IValue::Bool(b) => Ok(b),
            other => Err(type_error("bool", &other)),
        }
    }

    pub(crate) fn opt_bool(&mut self) -> Result<Option<bool>> {
        match self.next() {
            IValue::None => Ok(None),
            IValue::Bool(b) => Ok(Some(b)),
            other => Err(type_error("bool?", &other)),
        }
    }

    fn int_list_of(v: IValue) -> Result<Vec<i64>> {
        match v {
            IValue::IntList(v) => Ok(v),
            // `int[1]` accepts a single int.
            IValue::Int(i) => Ok(vec![i]),
            IValue::List(vs) => vs
                .into_iter()
                .map(|v| match v {
                    IValue::Int(i) => Ok(i),
                    other => Err(type_error("int", &other)),
                })
                .collect(),
            other => Err(type_error("int[]", &other)),
        }
    }

    pub(crate) fn int_list(&mut self) -> Result<Vec<i64>> {
        Self::int_list_of(self.next())
    }

    pub(crate) fn opt_int_list(&mut self) -> Result<Option<Vec<i64>>> {
        match self.next() {
            IValue::None => Ok(None),
            v => Self::int_list_of(v).map(Some),
        }
    }

    pub(crate) fn dtype(&mut self) -> Result<ScalarType> {
        match self.next() {
            IValue::Int(code) => scalar_type_from_code(code).ok_or_else(|| {
                DispatchError::External(Arc::new(AtenError(TensorError::DType(format!(
                    "opdispatch does not support the dtype {}",
                    c10_scalar_type_name(code)
                )))))
            }),
            other => Err(type_error("ScalarType", &other)),
        }
    }

    pub(crate) fn opt_dtype(&mut self) -> Result<Option<ScalarType>> {
        match self.0.as_slice().first() {
            Some(IValue::None) => {
                self.next();
                Ok(None)
            }
            _ => self.dtype().map(Some),
        }
    }

    /// `Layout?`: only strided (0) exists here.
    pub(crate) fn opt_layout(&mut self) -> Result<()> {
        match self.next() {
            IValue::None | IValue::Int(0) => Ok(()),
            IValue::Int(l) => Err(TensorError::other(format!(
                "opdispatch only supports the strided layout (got layout {l})"
            ))
            .into()),
            other => Err(type_error("Layout?", &other)),
        }
    }

    pub(crate) fn opt_device(&mut self) -> Result<Option<Device>> {
        match self.next() {
            IValue::None => Ok(None),
            IValue::Device(s) | IValue::Str(s) => Ok(Some(s.parse::<Device>()?)),
            other => Err(type_error("Device?", &other)),
        }
    }

    /// `MemoryFormat` / `MemoryFormat?`: every tensor here is strided, so contiguous (0) and
    /// preserve (1) are accepted; channels-last formats are refused.
    pub(crate) fn memory_format(&mut self) -> Result<()> {
        match self.next() {
            IValue::None | IValue::Int(0) | IValue::Int(1) => Ok(()),
            IValue::Int(m) => Err(TensorError::other(format!(
                "opdispatch does not support memory format {}",
                match m {
                    2 => "torch.channels_last",
                    3 => "torch.channels_last_3d",
                    _ => "unknown",
                }
            ))
            .into()),
            other => Err(type_error("MemoryFormat", &other)),
        }
    }

    /// `Scalar?`.
    pub(crate) fn opt_scalar(&mut self) -> Result<Option<Scalar>> {
        match self.next() {
            IValue::None => Ok(None),
            v => scalar_of(v).map(Some),
        }
    }

    /// `float?`.
    pub(crate) fn opt_float(&mut self) -> Result<Option<f64>> {
        match self.next() {
            IValue::None => Ok(None),
            IValue::Double(f) => Ok(Some(f)),
            IValue::Int(i) => Ok(Some(i as f64)),
            other => Err(type_error("float?", &other)),
        }
    }

    /// `Tensor?`.
    pub(crate) fn opt_tensor(&mut self) -> Result<Option<Tensor>> {
        match self.next() {
            IValue::None => Ok(None),
            v => tensor_of(v).map(Some),
        }
    }

    /// The common tail `ScalarType? dtype, Layout? layout, Device? device, bool? pin_memory`.
    pub(crate) fn tensor_options(&mut self) -> Result<(Option<ScalarType>, Option<Device>)> {
        let dtype = self.opt_dtype()?;
        self.opt_layout()?;
        let device = self.opt_device()?;
        if self.opt_bool()? == Some(true) {
            return Err(TensorError::other(
                "opdispatch cannot pin memory: it has no accelerator to pin for",
            )
            .into());
        }
        Ok((dtype, device))
    }
}
