//! Vectorcall plumbing shared by the natively callable classes (operator handles, packets,
//! `_AtenMethod`, `_CustomOpCall`): each instance stores its entry point in a field, module init
//! points the type's `tp_vectorcall_offset` at that field, and the entry runs a body inside
//! pyo3's fastcall trampoline.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

use crate::convert::Kwargs;

/// Defines `$entry`, a vectorcall function running `$body` (a pyo3 fastcall body: GIL token,
/// callable, argument array, signed `nargsf`, kwnames) inside pyo3's fastcall trampoline, which
/// counts the attachment and turns panics and errors into Python exceptions. The trampoline's
/// signature is vectorcall's except that `nargsf` is signed; the flag bit it may carry is the
/// body's to mask off.
macro_rules! vectorcall_entry {
    ($vis:vis $entry:ident => $body:path) => {
        $vis unsafe extern "C" fn $entry(
            callable: *mut pyo3::ffi::PyObject,
            args: *const *mut pyo3::ffi::PyObject,
            nargsf: usize,
            kwnames: *mut pyo3::ffi::PyObject,
        ) -> *mut pyo3::ffi::PyObject {
            struct Def;
            impl
                pyo3::impl_::trampoline::MethodDef<
                    pyo3::impl_::trampoline::fastcall_cfunction_with_keywords::Func,
                > for Def
            {
                const METH: pyo3::impl_::trampoline::fastcall_cfunction_with_keywords::Func =
                    $body;
            }
            // SAFETY: CPython calls this with the GIL held and the vectorcall contract's
            // arguments, which the trampoline hands to the body unchanged.
            unsafe {
                pyo3::impl_::trampoline::fastcall_cfunction_with_keywords::<Def>(
                    callable,
                    args,
                    nargsf as pyo3::ffi::Py_ssize_t,
                    kwnames,
                )
            }
        }
    };
}
pub(crate) use vectorcall_entry;

/// Points `ty`'s vectorcall slot at the field `field` of the instance `probe` (every instance
/// stores its entry point at the same offset) and adds `extra_flags`. Module init only, before
/// any instance is called.
pub(crate) fn install_vectorcall_slot<T>(
    ty: &Bound<'_, PyType>,
    probe: &Bound<'_, PyAny>,
    field: &T,
    extra_flags: std::ffi::c_ulong,
) {
    let offset = std::ptr::from_ref(field) as usize - probe.as_ptr() as usize;
    // SAFETY: the type object is alive (borrowed); module init runs once (under the import
    // lock) and no instance has been called yet; `probe` is an instance of `ty`, so every instance has the field at
    // `offset`.
    unsafe {
        let t = ty.as_type_ptr();
        (*t).tp_vectorcall_offset = offset as ffi::Py_ssize_t;
        let flags = ffi::Py_TPFLAGS_HAVE_VECTORCALL | extra_flags;
        #[cfg(not(Py_GIL_DISABLED))]
        {
            (*t).tp_flags |= flags;
        }
        // The free-threaded layout makes the flags an atomic word (the type is new and not yet
        // shared, so any ordering does).
        #[cfg(Py_GIL_DISABLED)]
        (*t).tp_flags
            .fetch_or(flags, std::sync::atomic::Ordering::Relaxed);
        ffi::PyType_Modified(t);
    }
}

/// Gives `t`, a heap subtype of a type with the vectorcall slot that inherits its `tp_call`
/// and offset, the flag CPython before 3.12 does not pass on; returns whether `t` has it.
///
/// # Safety
/// `t` is a live type object and the caller holds the GIL.
#[cfg(not(Py_GIL_DISABLED))]
pub(crate) unsafe fn inherit_vectorcall_flag(t: *mut ffi::PyTypeObject) -> bool {
    // SAFETY: see the contract; with the GIL held no other thread reads the flags meanwhile.
    unsafe { (*t).tp_flags |= ffi::Py_TPFLAGS_HAVE_VECTORCALL };
    true
}

/// Free-threaded builds (3.14+) inherit the flag with `tp_call` and the offset themselves, and
/// there writing the flags of a type other threads may be reading would be a data race, so
/// this only reports whether the flag is set.
///
/// # Safety
/// `t` is a live type object.
#[cfg(Py_GIL_DISABLED)]
pub(crate) unsafe fn inherit_vectorcall_flag(t: *mut ffi::PyTypeObject) -> bool {
    // SAFETY: `PyType_GetFlags` reads a live type's flags (CPython changes them only with the
    // world stopped).
    unsafe { ffi::PyType_GetFlags(t) & ffi::Py_TPFLAGS_HAVE_VECTORCALL != 0 }
}

/// A vectorcall's positional arguments and keywords, as slices of the caller's array.
///
/// # Safety
/// Vectorcall's contract: `args` holds `nargs` positional arguments followed by one value per
/// name in `kwnames` (a tuple of str, or NULL), all borrowed for the call. `names` holds the
/// names tuple the returned `Kwargs` borrows.
pub(crate) unsafe fn split_args<'a, 'py>(
    py: Python<'py>,
    args: *const *mut ffi::PyObject,
    nargs: usize,
    kwnames: *mut ffi::PyObject,
    names: &'a mut Option<Bound<'py, PyTuple>>,
) -> (&'a [Bound<'py, PyAny>], Kwargs<'a, 'py>) {
    // SAFETY: see the contract; `Bound<PyAny>` has the layout of an object pointer (as in
    // pyo3's `PyTuple::as_slice`), and the slices only borrow the caller's array.
    unsafe {
        let nkw = if kwnames.is_null() {
            0
        } else {
            ffi::PyTuple_GET_SIZE(kwnames) as usize
        };
        let all: &'a [Bound<'py, PyAny>] = if nargs + nkw == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(args.cast(), nargs + nkw)
        };
        let (pos, values) = all.split_at(nargs);
        if kwnames.is_null() {
            return (pos, Kwargs::None);
        }
        let names: &'a Bound<'py, PyTuple> = names.insert(
            pyo3::Borrowed::from_ptr(py, kwnames)
                .cast_unchecked::<PyTuple>()
                .to_owned(),
        );
        (pos, Kwargs::Names { names, values })
    }
}
