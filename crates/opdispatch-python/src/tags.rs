//! `opdispatch._C.Tag`: PyTorch's `torch.Tag`, built from the dispatcher's list of tags.

use std::sync::OnceLock;

use opdispatch_dispatch::Tag;
use opdispatch_schema::{Argument, FunctionSchema, Type};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

static TAG_ENUM: OnceLock<Py<PyAny>> = OnceLock::new();

/// The `Tag` enum: members by PyTorch's names with PyTorch's values, behaving as pybind11's
/// `torch.Tag` does: `<Tag.pointwise: 16>`, `str` `Tag.pointwise`, `int()` and `hash()` give
/// the value, but a tag is not an int (it never equals one, and is always true).
pub(crate) fn make_tag_enum(py: Python<'_>, module_name: &str) -> PyResult<Py<PyAny>> {
    let entries = PyList::empty(py);
    for t in Tag::ALL {
        entries.append((t.name(), t.value()))?;
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("module", module_name)?;
    let cls = py
        .import("enum")?
        .getattr("Enum")?
        .call(("Tag", entries), Some(&kwargs))?;
    let value = py.eval(c"lambda self: self.value", None, None)?;
    let hash_value = py.eval(c"lambda self: hash(self.value)", None, None)?;
    cls.setattr("__int__", &value)?;
    cls.setattr("__index__", &value)?;
    cls.setattr("__hash__", hash_value)?;
    let members = Tag::ALL
        .iter()
        .map(|t| Ok((cls.getattr(t.name())?.unbind(), *t)))
        .collect::<PyResult<Vec<_>>>()?;
    let _ = TAG_MEMBERS.set(members);
    let cls = cls.unbind();
    let _ = TAG_ENUM.set(cls.clone_ref(py));
    Ok(cls)
}

/// The enum's members with their tags: extracting a member is a pointer comparison (reading
/// an Enum member's `value` runs Python code).
static TAG_MEMBERS: OnceLock<Vec<(Py<PyAny>, Tag)>> = OnceLock::new();

fn tag_enum(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    TAG_ENUM
        .get()
        .map(|c| c.bind(py))
        .ok_or_else(|| crate::errors::runtime_error("Tag enum not initialised"))
}

/// The tags of `define(..., tags)`: `None`, one `Tag`, or a sequence of them. Anything else is
/// a `TypeError`, as pybind's argument check gives.
pub(crate) fn extract_tags(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Tag>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let py = obj.py();
    let cls = tag_enum(py)?;
    let not_a_tag = |o: &Bound<'_, PyAny>| -> PyResult<PyErr> {
        Ok(crate::errors::type_error(format!(
            "define(): tags must be opdispatch.Tag members, got {}",
            o.repr()?
        )))
    };
    let one = |o: &Bound<'_, PyAny>| -> PyResult<Tag> {
        if let Some((_, t)) = TAG_MEMBERS
            .get()
            .and_then(|ms| ms.iter().find(|(m, _)| o.is(m)))
        {
            return Ok(*t);
        }
        if !o.is_instance(cls)? {
            return Err(not_a_tag(o)?);
        }
        let v: usize = o.getattr("value")?.extract()?;
        Tag::from_value(v)
            .ok_or_else(|| crate::errors::runtime_error(format!("unknown tag value {v}")))
    };
    // Exact tuples and lists first, and members by identity: `isinstance` against the enum
    // class goes through its metaclass's `__instancecheck__`, a visible part of each define.
    if let Ok(t) = obj.cast_exact::<pyo3::types::PyTuple>() {
        return t.iter().map(|o| one(&o)).collect();
    }
    if let Ok(l) = obj.cast_exact::<PyList>() {
        return l.iter().map(|o| one(&o)).collect();
    }
    if obj.is_instance(cls)? {
        return Ok(vec![one(obj)?]);
    }
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(not_a_tag(obj)?);
    }
    obj.try_iter()?.map(|o| one(&o?)).collect()
}

/// `tags` as a list of `Tag` members.
pub(crate) fn tags_to_py<'py>(py: Python<'py>, tags: &[Tag]) -> PyResult<Bound<'py, PyList>> {
    let cls = tag_enum(py)?;
    let out = PyList::empty(py);
    for t in tags {
        out.append(cls.call1((t.value(),))?)?;
    }
    Ok(out)
}

/// `torch.library`'s checks of a schema tagged `Tag.out` or `Tag.inplace`
/// (`_validate_out_schema`, `_validate_inplace_schema`), with their messages. Other tags need
/// no check; `tags` is taken as `define` takes it.
#[pyfunction]
#[pyo3(signature = (schema, tags=None))]
pub(crate) fn _validate_tagged_schema(
    schema: &str,
    tags: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let tags = extract_tags(tags)?;
    let (out, inplace) = (tags.contains(&Tag::Out), tags.contains(&Tag::Inplace));
    if !out && !inplace {
        return Ok(());
    }
    let s = opdispatch_schema::parse_schema(schema)
        .map_err(|e| crate::errors::runtime_error(e.to_string()))?;
    let check = |ok: bool, msg: String| {
        if ok {
            Ok(())
        } else {
            Err(crate::errors::value_error(format!("{msg} Got: {s}")))
        }
    };
    if out {
        validate_out(&s, check)?;
    }
    if inplace {
        validate_inplace(&s, check)?;
    }
    Ok(())
}

type Check<'a> = &'a dyn Fn(bool, String) -> PyResult<()>;

fn is_write(a: &Argument) -> bool {
    a.alias_info.as_ref().is_some_and(|i| i.is_write)
}

/// Names quoted as Python's `repr` shows them, comma-separated.
fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = names.map(|n| format!("'{n}'")).collect();
    v.join(", ")
}

/// Python's `repr` of a list of names.
fn names_repr<'a>(names: impl Iterator<Item = &'a str>) -> String {
    format!("[{}]", quoted(names))
}

/// Python's `repr` of an alias set (`{'a'}`).
fn set_repr(a: &Argument) -> String {
    let sets = a
        .alias_info
        .as_ref()
        .map(|i| i.before_sets.as_slice())
        .unwrap_or_default();
    if sets.is_empty() {
        return "set()".into();
    }
    format!("{{{}}}", quoted(sets.iter().map(String::as_str)))
}

fn same_sets(a: &Argument, b: &Argument) -> bool {
    let sets = |x: &Argument| {
        let mut v = x
            .alias_info
            .as_ref()
            .map(|i| i.before_sets.clone())
            .unwrap_or_default();
        v.sort();
        v.dedup();
        v
    };
    sets(a) == sets(b)
}

fn validate_out(s: &FunctionSchema, check: impl Fn(bool, String) -> PyResult<()>) -> PyResult<()> {
    let check: Check<'_> = &check;
    let mutable: Vec<&Argument> = s.arguments.iter().filter(|a| is_write(a)).collect();
    check(
        !mutable.is_empty(),
        "Schema tagged with torch.Tag.out must have at least one mutable argument.".into(),
    )?;
    let positional: Vec<&str> = mutable
        .iter()
        .filter(|a| !a.kwarg_only)
        .map(|a| a.name.as_str())
        .collect();
    check(
        positional.is_empty(),
        format!(
            "Schema tagged with torch.Tag.out requires all mutable arguments to be keyword-only (after the *). Found mutable positional args: {}.",
            names_repr(positional.iter().copied())
        ),
    )?;
    let unsupported: Vec<&str> = mutable
        .iter()
        .filter(|a| a.ty != Type::Tensor)
        .map(|a| a.name.as_str())
        .collect();
    check(
        unsupported.is_empty(),
        format!(
            "Schema tagged with torch.Tag.out only supports Tensor mutable arguments. Found unsupported mutable args: {}.",
            names_repr(unsupported.iter().copied())
        ),
    )?;
    check(
        s.returns.len() == mutable.len(),
        format!(
            "Schema tagged with torch.Tag.out must return all mutable arguments (got {} mutable args but {} returns).",
            mutable.len(),
            s.returns.len()
        ),
    )?;
    for (i, (ret, arg)) in s.returns.iter().zip(&mutable).enumerate() {
        let name = &arg.name;
        check(
            ret.alias_info.is_some(),
            format!(
                "Return {i} of schema tagged with torch.Tag.out must alias mutable arg '{name}'."
            ),
        )?;
        check(
            is_write(ret),
            format!("Return {i} of schema tagged with torch.Tag.out must be a mutable alias (e.g., Tensor(a!), not Tensor(a)) of arg '{name}'."),
        )?;
        check(
            same_sets(ret, arg),
            format!(
                "Return {i} of schema tagged with torch.Tag.out must alias mutable arg '{name}' (return aliases {} but arg aliases {}).",
                set_repr(ret),
                set_repr(arg)
            ),
        )?;
    }
    Ok(())
}

fn validate_inplace(
    s: &FunctionSchema,
    check: impl Fn(bool, String) -> PyResult<()>,
) -> PyResult<()> {
    let check: Check<'_> = &check;
    let first = s.arguments.first().filter(|a| !a.kwarg_only);
    let Some(first) = first else {
        return check(
            false,
            "Schema tagged with torch.Tag.inplace must have at least one positional argument."
                .into(),
        );
    };
    check(
        is_write(first),
        "Schema tagged with torch.Tag.inplace requires the first positional argument to be mutable (e.g., Tensor(a!)).".into(),
    )?;
    check(
        first.ty == Type::Tensor,
        format!(
            "Schema tagged with torch.Tag.inplace requires the first positional argument to be a Tensor. Got type '{}' for arg '{}'.",
            first.ty, first.name
        ),
    )?;
    check(
        s.returns.len() == 1,
        format!(
            "Schema tagged with torch.Tag.inplace must return exactly one value (the first argument). Got {} returns.",
            s.returns.len()
        ),
    )?;
    let ret = &s.returns[0];
    check(
        ret.ty == Type::Tensor,
        format!(
            "Schema tagged with torch.Tag.inplace must return the first mutable argument (return must be a Tensor, got type '{}').",
            ret.ty
        ),
    )?;
    check(
        ret.alias_info.is_some(),
        "Schema tagged with torch.Tag.inplace must return the first mutable argument (return must alias the first argument).".into(),
    )?;
    check(
        is_write(ret),
        "Schema tagged with torch.Tag.inplace must return the first mutable argument (return must be a mutable alias, e.g., Tensor(a!)).".into(),
    )?;
    check(
        same_sets(ret, first),
        format!(
            "Schema tagged with torch.Tag.inplace must return the first mutable argument (return aliases {} but first arg aliases {}).",
            set_repr(ret),
            set_repr(first)
        ),
    )?;
    let others: Vec<&str> = s.arguments[1..]
        .iter()
        .filter(|a| is_write(a))
        .map(|a| a.name.as_str())
        .collect();
    check(
        others.is_empty(),
        format!(
            "Schema tagged with torch.Tag.inplace must only mutate the first positional argument. Found additional mutable args: {}.",
            names_repr(others.iter().copied())
        ),
    )
}
