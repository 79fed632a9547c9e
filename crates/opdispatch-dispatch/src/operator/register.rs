//! What a def, an impl, a name reservation or a library teardown changes in one operator,
//! with PyTorch's registration checks (`checkSchema`, the C++-signature check) and their
//! messages. The dispatcher calls these under its registration lock and the operator's lock,
//! passing the guard of the latter (`OperatorEntry::lock`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use opdispatch_keys::DispatchKey;
use opdispatch_schema::{find_schema_differences, FunctionSchema, OperatorName, OperatorNameParts};

use super::compute::dispatch_arg_bitset;
use super::update::update_master;
use super::{
    AnnotatedKernel, AnnotatedSchema, CppSignatureWithDebug, Fallbacks, Garbage, OpState,
    OperatorEntry,
};
use crate::error::{DispatchError, Result};
use crate::kernel::KernelFunction;

/// The override warning is issued once per process, for all operators.
static OVERRIDE_WARNED: AtomicBool = AtomicBool::new(false);

/// One `registerImpl` call's kernel and what came with it.
pub(crate) struct ImplRegistration {
    /// `None` = catch-all, which means CompositeImplicitAutograd.
    pub(crate) dispatch_key: Option<DispatchKey>,
    pub(crate) kernel: KernelFunction,
    pub(crate) cpp_signature: Option<(std::any::TypeId, &'static str)>,
    pub(crate) inferred_schema: Option<Arc<FunctionSchema>>,
    pub(crate) debug: Arc<str>,
}

impl ImplRegistration {
    /// The key the kernel is stored under.
    pub(crate) fn key(&self) -> DispatchKey {
        self.dispatch_key
            .unwrap_or(DispatchKey::CompositeImplicitAutograd)
    }
}

impl OperatorEntry {
    /// `registerDef`'s checks and change: gives the operator `schema`.
    pub(crate) fn add_def(
        &self,
        st: &mut OpState,
        schema: FunctionSchema,
        debug: Arc<str>,
        tags: Vec<crate::Tag>,
        fallbacks: &Fallbacks,
        garbage: &mut Garbage,
    ) -> Result<()> {
        if st.def_count != 0 {
            return Err(DispatchError::Runtime(format!(
                "Tried to register an operator ({schema}) with the same name and overload name multiple times. Each overload's schema should only be registered with a single call to def(). Duplicate registration: {debug}. Original registration: {}",
                st.schema.as_ref().map_or("", |s| &*s.debug)
            )));
        }
        // PyTorch walks its kernel hash map here and reports the first mismatch in that map's
        // order (replayed from its history only for an operator that has had kernels).
        let first_mismatch = st
            .key_order
            .keys()
            .into_iter()
            .filter_map(DispatchKey::from_u16)
            .flat_map(|key| st.kernels.list(key))
            .find_map(|k| {
                let inf = k.inferred_schema.as_ref()?;
                check_schema(&self.name, &schema, &debug, inf, &k.debug).err()
            });
        if let Some(e) = first_mismatch {
            return Err(e);
        }
        let bits = dispatch_arg_bitset(&schema)?;
        let schema = Arc::new(schema);
        st.schema = Some(AnnotatedSchema {
            schema: schema.clone(),
            debug,
        });
        st.tags = tags;
        update_master(self, st, fallbacks, garbage, |u| {
            u.table.meta.dispatch_arg_indices_reverse = bits;
            u.table.meta.schema = Some(schema);
        });
        st.def_count += 1;
        st.def_and_impl_count += 1;
        Ok(())
    }

    /// Undoes one [`Self::add_def`].
    pub(crate) fn remove_def(
        &self,
        st: &mut OpState,
        fallbacks: &Fallbacks,
        garbage: &mut Garbage,
    ) {
        debug_assert!(st.def_count > 0 && st.def_and_impl_count > 0);
        st.def_count -= 1;
        st.def_and_impl_count -= 1;
        if st.def_count == 0 {
            st.schema = None;
            st.tags = Vec::new();
            // The C++-signature record goes with the schema, as in PyTorch.
            st.cpp_signature = None;
            update_master(self, st, fallbacks, garbage, |u| {
                u.table.meta.dispatch_arg_indices_reverse = 0;
                u.table.meta.schema = None;
            });
        }
    }

    /// `registerImpl`'s checks: the C++ signature agrees with the recorded one and the
    /// inferred schema with the def. `name` is the name the registration was given.
    pub(crate) fn check_impl(
        &self,
        st: &OpState,
        name: OperatorNameParts<'_>,
        r: &ImplRegistration,
    ) -> Result<()> {
        if let (Some((sig, sig_name)), Some(prev)) = (r.cpp_signature, &st.cpp_signature) {
            if prev.sig != sig {
                let (schema_str, schema_dbg) = schema_and_debug(st, name);
                return Err(DispatchError::Runtime(format!(
                    "\nMismatch in kernel C++ signatures\n  operator: {schema_str}\n    {schema_dbg}\n  kernel 1: {}\n    dispatch key: {}\n    {}\n  kernel 2: {sig_name}\n    dispatch key: {}\n    {}\n",
                    prev.sig_name,
                    prev.dispatch_key.map_or("(catch all)", |k| k.name()),
                    prev.debug,
                    r.dispatch_key.map_or("(catch all)", |k| k.name()),
                    r.debug,
                )));
            }
        }
        if let (Some(a), Some(inf)) = (&st.schema, &r.inferred_schema) {
            check_schema(&self.name, &a.schema, &a.debug, inf, &r.debug)?;
        }
        Ok(())
    }

    /// `registerImpl`'s change, after [`Self::check_impl`] passed: stores the kernel under
    /// registration id `id` and updates the table. Returns the override warning to issue once
    /// no lock is held, if this registration is the process's first override.
    pub(crate) fn add_impl(
        &self,
        st: &mut OpState,
        name: OperatorNameParts<'_>,
        r: ImplRegistration,
        id: u64,
        fallbacks: &Fallbacks,
        garbage: &mut Garbage,
    ) -> Option<String> {
        let k = r.key();
        if let Some((sig, sig_name)) = r.cpp_signature {
            if st.cpp_signature.is_none() {
                st.cpp_signature = Some(CppSignatureWithDebug {
                    sig,
                    sig_name,
                    debug: r.debug.clone(),
                    dispatch_key: r.dispatch_key,
                });
            }
        }
        let mut pending_warning = None;
        if st.kernels.contains(k)
            && !matches!(r.dispatch_key, Some(DispatchKey::Meta | DispatchKey::MTIA))
            && !OVERRIDE_WARNED.swap(true, Ordering::Relaxed)
        {
            let (schema_str, schema_dbg) = schema_and_debug(st, name);
            pending_warning = Some(format!(
                "Warning only once for all operators,  other operators may also be overridden.\n  Overriding a previously registered kernel for the same operator and the same dispatch key\n  operator: {schema_str}\n    {schema_dbg}\n  dispatch key: {}\n  previous kernel: {}\n       new kernel: {}",
                r.dispatch_key.map_or("(catch all)", |k| k.name()),
                st.cpp_signature.as_ref().map_or("no debug info", |c| &*c.debug),
                r.debug,
            ));
        }
        st.key_order.insert(k.as_u16());
        st.note_key_added(k);
        let keyed = r.dispatch_key.is_some();
        st.kernels.push_front(
            k,
            AnnotatedKernel {
                kernel: r.kernel,
                inferred_schema: r.inferred_schema,
                debug: r.debug,
                id,
            },
        );
        update_master(self, st, fallbacks, garbage, |u| {
            if keyed {
                u.update(k);
            } else {
                u.update_full();
            }
        });
        st.def_and_impl_count += 1;
        pending_warning
    }

    /// Undoes the [`Self::add_impl`] of registration `id` for key `k` (`keyed`: it named a
    /// key rather than being a catch-all).
    pub(crate) fn remove_impl(
        &self,
        st: &mut OpState,
        k: DispatchKey,
        keyed: bool,
        id: u64,
        fallbacks: &Fallbacks,
        garbage: &mut Garbage,
    ) {
        if let Some((kernel, emptied)) = st.kernels.remove(k, id) {
            garbage.annotated.push(kernel);
            if emptied {
                st.note_key_removed(k);
                st.key_order.erase(k.as_u16());
            }
        }
        update_master(self, st, fallbacks, garbage, |u| {
            if keyed {
                u.update(k);
            } else {
                u.update_full();
            }
        });
        st.def_and_impl_count -= 1;
    }

    /// `registerName`: one more registration keeps the operator in the registry.
    pub(crate) fn add_name(st: &mut OpState) {
        st.def_and_impl_count += 1;
    }

    /// Undoes [`Self::add_name`].
    pub(crate) fn remove_name(st: &mut OpState) {
        st.def_and_impl_count -= 1;
    }

    /// `updateFallback(k)`: the backend fallback for runtime key `k` changed.
    pub(crate) fn update_fallback(
        &self,
        st: &mut OpState,
        k: DispatchKey,
        fallbacks: &Fallbacks,
        garbage: &mut Garbage,
    ) {
        update_master(self, st, fallbacks, garbage, |u| u.update(k));
    }

    /// How many registrations (defs, impls, names) keep the operator in the registry.
    pub(crate) fn registrations(st: &OpState) -> usize {
        st.def_and_impl_count
    }

    /// A library teardown that holds every registration of the operator: clears them all at
    /// once, without updating the table (the operator is about to be detached).
    pub(crate) fn clear_registrations(st: &mut OpState, garbage: &mut Garbage) {
        garbage.annotated.extend(st.kernels.take_all());
        st.schema = None;
        st.tags = Vec::new();
        st.cpp_signature = None;
        st.def_count = 0;
        st.def_and_impl_count = 0;
        st.key_order = Default::default();
        st.kernel_keys = [0; 3];
    }

    /// Once no registration is left, drops the operator's tables into `garbage` and returns
    /// `true`: the registry then removes it. A handle kept elsewhere still sees a valid, empty
    /// operator (no registration updates a detached master, so it has none), and its next call
    /// builds a snapshot of the backend fallbacks of that moment.
    pub(crate) fn detach_if_unused(&self, st: &mut OpState, garbage: &mut Garbage) -> bool {
        if st.def_and_impl_count != 0 {
            return false;
        }
        garbage.masters.extend(st.master.take());
        garbage.tables.extend(self.table.take());
        true
    }
}

/// The schema and its debug string for messages, or the registration's name.
fn schema_and_debug(st: &OpState, name: OperatorNameParts<'_>) -> (String, String) {
    match &st.schema {
        Some(a) => (a.schema.to_string(), a.debug.to_string()),
        None => (name.to_string(), "no debug info".to_owned()),
    }
}

/// A cheap sufficient condition for "no difference": identical argument and return types with
/// no SymInt anywhere (SymInt compares differently depending on the kernel, see
/// `find_schema_differences_with_symint`). Registration checks every typed kernel, so the
/// common case must not allocate.
fn same_types_without_symint(a: &FunctionSchema, b: &FunctionSchema) -> bool {
    fn symint(t: &opdispatch_schema::Type) -> bool {
        use opdispatch_schema::Type as T;
        match t {
            T::SymInt => true,
            T::Optional(i) | T::List(i) | T::Future(i) | T::Await(i) | T::RRef(i) => symint(i),
            T::Tuple(v) | T::Union(v) => v.iter().any(symint),
            T::Dict(k, v) => symint(k) || symint(v),
            _ => false,
        }
    }
    let same = |x: &[opdispatch_schema::Argument], y: &[opdispatch_schema::Argument]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.ty == q.ty && !symint(&p.ty))
    };
    same(&a.arguments, &b.arguments) && same(&a.returns, &b.returns)
}

/// `checkSchema`: a kernel's inferred schema must match the def (spec 2.4).
fn check_schema(
    name: &OperatorName,
    from_def: &FunctionSchema,
    def_debug: &str,
    inferred: &FunctionSchema,
    kernel_debug: &str,
) -> Result<()> {
    if same_types_without_symint(inferred, from_def) {
        return Ok(());
    }
    match find_schema_differences(inferred, from_def) {
        None => Ok(()),
        Some(reason) => Err(DispatchError::Runtime(format!(
            "Inferred operator schema for a C++ kernel function doesn't match the expected function schema.\n  operator: {name}\n  expected schema: {from_def}\n    {def_debug}\n  inferred schema: {inferred}\n    {kernel_debug}\n  reason: {reason}"
        ))),
    }
}
