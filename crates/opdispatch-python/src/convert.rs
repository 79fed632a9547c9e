//! Schema-driven conversion between Python objects and boxed `IValue`s.

use std::sync::Arc;

use opdispatch_dispatch::{IValue, OpaqueValue, Stack, TensorRef};
use opdispatch_schema::{Argument, DefaultValue, FunctionSchema, Type};
use opdispatch_tensor::Tensor;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyComplex, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::tensor::{unwrap_tensor, wrap_tensor, PyDType, PyDevice};

/// A Python object riding on the stack where the schema type has no native form.
#[derive(Debug)]
pub(crate) struct PyOpaque(pub Py<PyAny>);

impl OpaqueValue for PyOpaque {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn tensor_ref(obj: &Bound<'_, PyAny>) -> PyResult<TensorRef> {
    Ok(TensorRef::new(unwrap_tensor(obj)?))
}

fn mismatch(expected: &Type, obj: &Bound<'_, PyAny>) -> PyErr {
    let got = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into());
    crate::errors::type_error(format!(
        "Expected a value of type '{expected}' but instead found type '{got}'."
    ))
}

/// PyTorch's `should_allow_numbers_as_tensors`: for these aten operators a Python number given
/// for a `Tensor` argument becomes a wrapped-number tensor (`ops.aten.add(t, 1)`,
/// `t.sub_(1)`), as torch's bindings do.
const NUMBERS_AS_TENSORS: &[&str] = &[
    "add",
    "add_",
    "add_out",
    "div",
    "div_",
    "div_out",
    "divide",
    "divide_",
    "divide_out",
    "mul",
    "mul_",
    "mul_out",
    "multiply",
    "multiply_",
    "multiply_out",
    "sub",
    "sub_",
    "sub_out",
    "subtract",
    "subtract_",
    "subtract_out",
    "true_divide",
    "true_divide_",
    "true_divide_out",
    "to",
    "_to_copy",
    "copy_",
    "floor_divide",
    "floor_divide_",
    "floor_divide_out",
    "_conj",
];

fn number_as_tensor(schema: &FunctionSchema, ty: &Type, obj: &Bound<'_, PyAny>) -> Option<IValue> {
    if *ty != Type::Tensor {
        return None;
    }
    let base = schema.name.name.strip_prefix("aten::")?;
    if !NUMBERS_AS_TENSORS.contains(&base) || obj.cast::<crate::tensor::PyTensor>().is_ok() {
        return None;
    }
    let s = crate::tensor::scalar_from_py(obj).ok()?;
    Some(IValue::Tensor(TensorRef::new(
        opdispatch_tensor::Tensor::wrapped_scalar(s),
    )))
}

/// `toIValue(obj, type)`.
pub(crate) fn to_ivalue(obj: &Bound<'_, PyAny>, ty: &Type) -> PyResult<IValue> {
    match ty {
        Type::Optional(inner) => {
            if obj.is_none() {
                Ok(IValue::None)
            } else {
                to_ivalue(obj, inner)
            }
        }
        Type::NoneType => {
            if obj.is_none() {
                Ok(IValue::None)
            } else {
                Err(mismatch(ty, obj))
            }
        }
        Type::Tensor => tensor_ref(obj)
            .map(IValue::Tensor)
            .map_err(|_| mismatch(ty, obj)),
        Type::Int | Type::SymInt => {
            if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
                return Err(mismatch(ty, obj));
            }
            Ok(IValue::Int(obj.extract()?))
        }
        Type::Float => {
            if obj.is_instance_of::<PyFloat>()
                || (obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>())
            {
                Ok(IValue::Double(obj.extract()?))
            } else {
                Err(mismatch(ty, obj))
            }
        }
        Type::Bool => {
            if obj.is_instance_of::<PyBool>() {
                Ok(IValue::Bool(obj.extract()?))
            } else {
                Err(mismatch(ty, obj))
            }
        }
        Type::Complex => {
            if let Ok(c) = obj.cast::<PyComplex>() {
                Ok(IValue::Complex(c.real(), c.imag()))
            } else if let Ok(f) = obj.extract::<f64>() {
                Ok(IValue::Complex(f, 0.0))
            } else {
                Err(mismatch(ty, obj))
            }
        }
        Type::Scalar => {
            if obj.is_instance_of::<PyBool>() {
                Ok(IValue::Bool(obj.extract()?))
            } else if obj.is_instance_of::<PyInt>() {
                Ok(IValue::Int(obj.extract()?))
            } else if obj.is_instance_of::<PyFloat>() {
                Ok(IValue::Double(obj.extract()?))
            } else if let Ok(c) = obj.cast::<PyComplex>() {
                Ok(IValue::Complex(c.real(), c.imag()))
            } else {
                Err(mismatch(ty, obj))
            }
        }
        Type::Str => {
            if obj.is_instance_of::<PyString>() {
                Ok(IValue::Str(Arc::from(obj.extract::<String>()?)))
            } else {
                Err(mismatch(ty, obj))
            }
        }
        Type::ScalarType => match obj.extract::<PyDType>() {
            Ok(d) => Ok(IValue::Int(d.st.c10_code())),
            Err(_) => Err(mismatch(ty, obj)),
        },
        Type::Device => {
            if let Ok(d) = obj.extract::<PyDevice>() {
                Ok(IValue::Device(Arc::from(d.d.to_string())))
            } else if let Ok(s) = obj.extract::<String>() {
                Ok(IValue::Device(Arc::from(s)))
            } else {
                Err(mismatch(ty, obj))
            }
        }
        Type::List(elem) => {
            // A bare int stands for a one-element int list (PyTorch accepts `dim=0` for `int[1]`).
            if matches!(elem.as_ref(), Type::Int | Type::SymInt)
                && obj.is_instance_of::<PyInt>()
                && !obj.is_instance_of::<PyBool>()
            {
                return Ok(IValue::IntList(vec![obj.extract()?]));
            }
            let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = obj.cast::<PyList>() {
                l.iter().collect()
            } else if let Ok(t) = obj.cast::<PyTuple>() {
                t.iter().collect()
            } else {
                return Err(mismatch(ty, obj));
            };
            match elem.as_ref() {
                Type::Tensor => Ok(IValue::TensorList(
                    items.iter().map(tensor_ref).collect::<PyResult<_>>()?,
                )),
                Type::Optional(e) if **e == Type::Tensor => Ok(IValue::OptionalTensorList(
                    items
                        .iter()
                        .map(|x| {
                            if x.is_none() {
                                Ok(None)
                            } else {
                                tensor_ref(x).map(Some)
                            }
                        })
                        .collect::<PyResult<_>>()?,
                )),
                Type::Int | Type::SymInt => Ok(IValue::IntList(
                    items
                        .iter()
                        .map(|x| {
                            to_ivalue(x, elem).map(|v| if let IValue::Int(i) = v { i } else { 0 })
                        })
                        .collect::<PyResult<_>>()?,
                )),
                Type::Float => Ok(IValue::DoubleList(
                    items
                        .iter()
                        .map(pyo3::types::PyAnyMethods::extract::<f64>)
                        .collect::<PyResult<_>>()?,
                )),
                Type::Bool => Ok(IValue::BoolList(
                    items
                        .iter()
                        .map(pyo3::types::PyAnyMethods::extract::<bool>)
                        .collect::<PyResult<_>>()?,
                )),
                _ => Ok(IValue::List(
                    items
                        .iter()
                        .map(|x| to_ivalue(x, elem))
                        .collect::<PyResult<_>>()?,
                )),
            }
        }
        Type::Tuple(elems) => {
            let t = obj.cast::<PyTuple>().map_err(|_| mismatch(ty, obj))?;
            if t.len() != elems.len() {
                return Err(mismatch(ty, obj));
            }
            Ok(IValue::Tuple(
                t.iter()
                    .zip(elems)
                    .map(|(x, e)| to_ivalue(&x, e))
                    .collect::<PyResult<_>>()?,
            ))
        }
        _ => Ok(IValue::Opaque(Arc::new(PyOpaque(obj.clone().unbind())))),
    }
}

/// `toPyObject(value)`, with dtype objects for ScalarType-typed values.
pub(crate) fn to_py(py: Python<'_>, v: IValue, ty: Option<&Type>) -> PyResult<Py<PyAny>> {
    // Tensors, the common case, need nothing from the type.
    let v = match v {
        IValue::Tensor(t) => return tensor_to_py(py, t),
        v => v,
    };
    let real = ty.map(|t| match t {
        Type::Optional(i) => i.as_ref(),
        t => t,
    });
    Ok(match v {
        IValue::None => py.None(),
        IValue::Bool(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        IValue::Int(i) => {
            if matches!(real, Some(Type::ScalarType)) {
                if let Some(st) = opdispatch_tensor::ScalarType::from_c10_code(i) {
                    return Ok(Py::new(py, PyDType { st })?.into_any());
                }
            }
            i.into_pyobject(py)?.into_any().unbind()
        }
        IValue::Double(f) => f.into_pyobject(py)?.into_any().unbind(),
        IValue::Complex(r, i) => PyComplex::from_doubles(py, r, i).into_any().unbind(),
        IValue::Str(s) => PyString::new(py, &s).into_any().unbind(),
        IValue::Tensor(t) => tensor_to_py(py, t)?,
        IValue::TensorList(ts) => {
            let items = ts
                .into_iter()
                .map(|t| tensor_to_py(py, t))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        IValue::OptionalTensorList(ts) => {
            let items = ts
                .into_iter()
                .map(|t| t.map_or_else(|| Ok(py.None()), |t| tensor_to_py(py, t)))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        IValue::IntList(v) => PyList::new(py, v)?.into_any().unbind(),
        IValue::DoubleList(v) => PyList::new(py, v)?.into_any().unbind(),
        IValue::BoolList(v) => PyList::new(py, v)?.into_any().unbind(),
        IValue::List(v) => {
            let elem = match real {
                Some(Type::List(e)) => Some(e.as_ref()),
                _ => None,
            };
            let items = v
                .into_iter()
                .map(|x| to_py(py, x, elem))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        IValue::Tuple(v) => {
            let items = v
                .into_iter()
                .map(|x| to_py(py, x, None))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)?.into_any().unbind()
        }
        IValue::Device(s) => Py::new(
            py,
            PyDevice {
                d: s.parse()
                    .map_err(|_| crate::errors::runtime_error(format!("bad device {s}")))?,
            },
        )?
        .into_any(),
        IValue::Opaque(o) => match o.as_any().downcast_ref::<PyOpaque>() {
            Some(p) => p.0.clone_ref(py),
            None => crate::errors::runtime_error("an opaque value from another front end")
                .into_value(py)
                .into_any(),
        },
    })
}

fn tensor_to_py(py: Python<'_>, t: TensorRef) -> PyResult<Py<PyAny>> {
    match t.into_inner::<Tensor>() {
        Ok(t) => wrap_tensor(py, t),
        Err(_) => Err(crate::errors::runtime_error(
            "a tensor of a type Python cannot wrap",
        )),
    }
}

/// Whether a boxed value equals an argument's schema default (IValue `==`).
pub(crate) fn equals_default(v: &IValue, d: &DefaultValue) -> bool {
    match (v, d) {
        (IValue::None, DefaultValue::None) => true,
        (IValue::Bool(a), DefaultValue::Bool(b)) => a == b,
        (IValue::Int(a), DefaultValue::Int(b)) => a == b,
        (IValue::Double(a), DefaultValue::Float(b)) => a == b,
        (IValue::Double(a), DefaultValue::Int(b)) => *a == *b as f64,
        (IValue::Complex(a, b), DefaultValue::Complex(c, e)) => a == c && b == e,
        (IValue::Str(a), DefaultValue::Str(b)) => **a == **b,
        (IValue::IntList(a), DefaultValue::IntList(b)) => a == b,
        (IValue::DoubleList(a), DefaultValue::FloatList(b)) => a == b,
        (IValue::BoolList(a), DefaultValue::BoolList(b)) => a == b,
        (IValue::Device(a), DefaultValue::Device(b)) => **a == **b,
        _ => false,
    }
}

/// Positional arguments for a Python call; kernels rarely take more than a handful.
pub(crate) type PyArgs = smallvec::SmallVec<[Py<PyAny>; 6]>;
/// Positional arguments and (optional) keyword arguments for a Python call.
pub(crate) type PyCallArgs<'py> = (PyArgs, Option<Bound<'py, PyDict>>);

/// `parseIValuesToPyArgsKwargs`: positional arguments up to the first kwarg-only one (minus
/// trailing ones equal to their defaults), kwarg-only ones that differ from their defaults as
/// keyword arguments. Takes the arguments at `stack[start..]` off the stack, also on errors
/// (the drain removes what was not converted).
pub(crate) fn args_to_py<'py>(
    py: Python<'py>,
    schema: &FunctionSchema,
    stack: &mut Stack,
    start: usize,
) -> PyResult<PyCallArgs<'py>> {
    let args = &stack[start..];
    let n = schema.arguments.len();
    let kwarg_only_start = schema
        .arguments
        .iter()
        .position(|a| a.kwarg_only)
        .unwrap_or(n);
    let mut positional_end = kwarg_only_start;
    while positional_end > 0 {
        let a: &Argument = &schema.arguments[positional_end - 1];
        match &a.default {
            Some(d) if equals_default(&args[positional_end - 1], d) => positional_end -= 1,
            _ => break,
        }
    }
    let mut pos = PyArgs::with_capacity(positional_end);
    // Most operators have no kwarg-only arguments: build the dict only when one is passed.
    let mut kwargs: Option<Bound<'py, PyDict>> = None;
    for (i, (v, a)) in stack.drain(start..).zip(&schema.arguments).enumerate() {
        if i < positional_end {
            pos.push(to_py(py, v, Some(&a.ty))?);
        } else if i >= kwarg_only_start {
            if a.default.as_ref().is_some_and(|d| equals_default(&v, d)) {
                continue;
            }
            kwargs
                .get_or_insert_with(|| PyDict::new(py))
                .set_item(&a.name, to_py(py, v, Some(&a.ty))?)?;
        }
    }
    Ok((pos, kwargs))
}

/// A call's keyword arguments: a dict (`tp_call`), or vectorcall's names tuple with the values
/// that follow the positional ones.
#[derive(Clone, Copy)]
pub(crate) enum Kwargs<'a, 'py> {
    None,
    Dict(&'a Bound<'py, PyDict>),
    Names {
        names: &'a Bound<'py, PyTuple>,
        values: &'a [Bound<'py, PyAny>],
    },
}

impl<'a, 'py> Kwargs<'a, 'py> {
    /// From `tp_call`'s optional dict.
    pub(crate) fn from_dict(d: Option<&'a Bound<'py, PyDict>>) -> Self {
        d.map_or(Self::None, Self::Dict)
    }

    fn len(&self) -> usize {
        match self {
            Self::None => 0,
            Self::Dict(d) => d.len(),
            Self::Names { values, .. } => values.len(),
        }
    }

    fn get(&self, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self {
            Self::None => Ok(None),
            Self::Dict(d) => d.get_item(name),
            Self::Names { names, values } => {
                for (k, v) in names.as_slice().iter().zip(values.iter()) {
                    if k.cast::<PyString>()?.to_str()? == name {
                        return Ok(Some(v.clone()));
                    }
                }
                Ok(None)
            }
        }
    }

    fn keys(&self) -> PyResult<Vec<String>> {
        match self {
            Self::None => Ok(Vec::new()),
            Self::Dict(d) => d.keys().iter().map(|k| k.extract()).collect(),
            Self::Names { names, .. } => names
                .as_slice()
                .iter()
                .map(pyo3::types::PyAnyMethods::extract)
                .collect(),
        }
    }
}

/// `createStackForSchema`: binds Python positional and keyword arguments to the schema's
/// arguments, pushing them onto `stack` (filled in place: an inline stack is not moved).
pub(crate) fn bind_args(
    schema: &FunctionSchema,
    args: &[Bound<'_, PyAny>],
    kwargs: Kwargs<'_, '_>,
    stack: &mut Stack,
) -> PyResult<()> {
    // Only error messages need the name as a string.
    let name = &schema.name;
    let n = schema
        .arguments
        .iter()
        .take_while(|a| !a.kwarg_only)
        .count();
    if args.len() > n {
        // torch's two texts: more arguments than the schema has at all, or more positional
        // ones than it takes before its keyword-only arguments.
        let total = schema.arguments.len();
        return Err(crate::errors::runtime_error(if args.len() > total {
            format!(
                "{name}() expected at most {total} argument(s) but received {} argument(s). Declaration: {schema}",
                args.len()
            )
        } else {
            format!(
                "{name}() takes {n} positional argument(s) but {} was/were given.  Declaration: {schema}",
                args.len()
            )
        }));
    }
    let has_kwargs = kwargs.len() > 0;
    let mut used = 0usize;
    for (i, a) in schema.arguments.iter().enumerate() {
        let looked_up;
        let v = if i < args.len() && !a.kwarg_only {
            if has_kwargs && kwargs.get(&a.name)?.is_some() {
                return Err(crate::errors::runtime_error(format!(
                    "Argument '{}' specified both as positional and keyword argument. Schema: {schema}",
                    a.name
                )));
            }
            Some(&args[i])
        } else if has_kwargs {
            looked_up = kwargs.get(&a.name)?;
            if looked_up.is_some() {
                used += 1;
            }
            looked_up.as_ref()
        } else {
            None
        };
        let iv = match v {
            Some(obj) => to_ivalue(obj, &a.ty)
                .or_else(|e| number_as_tensor(schema, &a.ty, obj).ok_or(e))
                .map_err(|e| {
                crate::errors::runtime_error(format!(
                    "{name}() Expected a value of type '{}' for argument '{}' but instead found type '{}'.\nPosition: {i}\nDeclaration: {schema}\nCast error details: {e}",
                    // PyTorch names an argument's type by its fake type (SymInt -> int).
                    a.ty.fake(),
                    a.name,
                    obj.get_type().name().map(|s| s.to_string()).unwrap_or_default()
                ))
            })?,
            None => match &a.default {
                Some(d) => default_to_ivalue(d, &a.ty),
                None => {
                    if matches!(a.ty, Type::Optional(_)) {
                        IValue::None
                    } else {
                        return Err(crate::errors::runtime_error(format!(
                            "{name}() is missing value for argument '{}'. Declaration: {schema}",
                            a.name
                        )));
                    }
                }
            },
        };
        stack.push(iv);
    }
    if kwargs.len() > used {
        for k in kwargs.keys()? {
            if !schema.arguments.iter().any(|a| a.name == k) {
                return Err(crate::errors::runtime_error(format!(
                    "Unknown keyword argument '{k}' for operator '{name}'. Schema: {schema}"
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn default_to_ivalue(d: &DefaultValue, ty: &Type) -> IValue {
    match d {
        DefaultValue::None => IValue::None,
        DefaultValue::Bool(b) => IValue::Bool(*b),
        DefaultValue::Int(i) => {
            if matches!(ty, Type::Float) {
                IValue::Double(*i as f64)
            } else {
                IValue::Int(*i)
            }
        }
        DefaultValue::Float(f) => IValue::Double(*f),
        DefaultValue::Complex(r, i) => IValue::Complex(*r, *i),
        DefaultValue::Str(s) => IValue::Str(Arc::from(s.as_str())),
        DefaultValue::Bytes(b) => IValue::Str(Arc::from(String::from_utf8_lossy(b).as_ref())),
        DefaultValue::IntList(v) => IValue::IntList(v.clone()),
        DefaultValue::FloatList(v) => IValue::DoubleList(v.clone()),
        DefaultValue::BoolList(v) => IValue::BoolList(v.clone()),
        DefaultValue::ComplexList(v) => {
            IValue::List(v.iter().map(|(r, i)| IValue::Complex(*r, *i)).collect())
        }
        DefaultValue::Device(s) => IValue::Device(Arc::from(s.as_str())),
    }
}

/// Converts a kernel's returns into one Python value (None, the value, or a tuple).
pub(crate) fn returns_to_py(
    py: Python<'_>,
    schema: &FunctionSchema,
    rets: &mut Stack,
) -> PyResult<Py<PyAny>> {
    match rets.len() {
        0 => Ok(py.None()),
        1 => to_py(
            py,
            rets.pop().unwrap_or_default(),
            schema.returns.first().map(|r| &r.ty),
        ),
        _ => {
            let items = rets
                .drain(..)
                .enumerate()
                .map(|(i, v)| to_py(py, v, schema.returns.get(i).map(|r| &r.ty)))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyTuple::new(py, items)?.into_any().unbind())
        }
    }
}
