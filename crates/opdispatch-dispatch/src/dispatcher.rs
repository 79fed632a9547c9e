//! The process-wide `Dispatcher`: operator registry, backend fallbacks, library namespaces,
//! registration with RAII handles, and the call entry points.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use opdispatch_keys::{
    dispatch_table_index_for_key, runtime_key_for_index, runtime_keys_in_table_order, DispatchKey,
    DispatchKeySet, NUM_RUNTIME_ENTRIES,
};
use opdispatch_schema::{FunctionSchema, OperatorName, OperatorNameParts};
use parking_lot::{Mutex, RwLock};

use crate::error::{DispatchError, Result};
use crate::ivalue::Stack;
use crate::kernel::KernelFunction;
/// Also reachable here, where it used to be defined.
pub use crate::operator::OperatorHandle;
use crate::operator::{
    AnnotatedKernel, DispatchTable, Garbage, ImplRegistration, MasterTable, OpState, OperatorEntry,
};

/// State changed only under the registration lock.
struct Registry {
    /// The operators. Under this lock rather than a lock of their own: registrations change
    /// it and already hold this one, and lookups (not on the call path) are short.
    ops: OpsByName,
    /// Registration ids (plain: only registrations take them).
    next_id: u64,
    libraries: HashMap<String, String>,
    fallbacks: Vec<Option<AnnotatedKernel>>,
    /// A new operator's table (the fallbacks only), kept ready to copy: rebuilt when a
    /// fallback changes, which is rare, instead of for every new operator.
    fresh: MasterTable,
}

impl Registry {
    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The operator slot for `name`, created if missing; `true` when it was created.
    fn find_or_register_name(&mut self, name: OperatorNameParts<'_>) -> (OperatorHandle, bool) {
        let h = name_hash(name);
        if let Some(op) = self.ops.get_hashed(name, h) {
            return (op.clone(), false);
        }
        let op = OperatorHandle(Arc::new(OperatorEntry::new(name.to_name(), h, &self.fresh)));
        self.ops.insert(op.clone());
        (op, true)
    }

    /// Drops the operator slot once no registration keeps it (see
    /// [`OperatorEntry::detach_if_unused`]).
    fn cleanup(&mut self, op: &OperatorHandle, st: &mut OpState, garbage: &mut Garbage) {
        if op.0.detach_if_unused(st, garbage) {
            garbage.ops.extend(self.ops.remove(op));
        }
    }

    fn refresh_template(&mut self, garbage: &mut Garbage) {
        let old = std::mem::replace(&mut self.fresh, MasterTable::fresh(&self.fallbacks));
        garbage.masters.push(Box::new(old));
    }
}

/// Operators by name. The table holds the handles with the hash of their names' parts, so a
/// registration finds its operator from the parts it was given without joining them into a new
/// string, each name is stored once (in its operator), and growing the table reads no names.
///
/// A second table groups the operators by namespace and base name (`ns::op`, all overloads),
/// so `ops.ns.op` finds its overloads without a scan over every operator. Both tables change
/// together, in [`OpsByName::insert`] and [`OpsByName::remove`] (under the registration lock).
#[derive(Default)]
struct OpsByName {
    by_name: hashbrown::HashTable<(u64, OperatorHandle)>,
    by_base: hashbrown::HashTable<(u64, BaseGroup)>,
}

/// The operators sharing one `ns::op` (one per overload name); never empty while in the table.
type BaseGroup = smallvec::SmallVec<[OperatorHandle; 2]>;

/// The hash of `ns::op` in [`OpsByName`]'s base-name table.
fn base_hash(namespace: Option<&str>, base: &str) -> u64 {
    use std::hash::Hasher as _;
    let mut h = rustc_hash::FxHasher::default();
    h.write(namespace.unwrap_or_default().as_bytes());
    h.write_u8(0xff);
    h.write(base.as_bytes());
    h.finish()
}

/// Whether `op` is named `namespace::base` (any overload).
fn has_base(op: &OperatorHandle, namespace: Option<&str>, base: &str) -> bool {
    let p = op.operator_name().parts();
    p.namespace == namespace && p.base == base
}

fn name_hash(p: OperatorNameParts<'_>) -> u64 {
    use std::hash::Hasher as _;
    let mut h = rustc_hash::FxHasher::default();
    h.write(p.namespace.unwrap_or_default().as_bytes());
    h.write_u8(0xff);
    h.write(p.base.as_bytes());
    h.write_u8(0xff);
    h.write(p.overload.as_bytes());
    h.finish()
}

impl OpsByName {
    fn get(&self, p: OperatorNameParts<'_>) -> Option<&OperatorHandle> {
        self.get_hashed(p, name_hash(p))
    }
    /// [`Self::get`] with `h = name_hash(p)` already computed.
    fn get_hashed(&self, p: OperatorNameParts<'_>, h: u64) -> Option<&OperatorHandle> {
        self.by_name
            .find(h, |(oh, o)| *oh == h && p.matches(o.operator_name()))
            .map(|(_, o)| o)
    }
    /// Adds `op`, whose name is not in the table yet and hashes to `h`.
    fn insert(&mut self, op: OperatorHandle) {
        let h = op.0.name_hash();
        debug_assert_eq!(h, name_hash(op.operator_name().parts()));
        let p = op.operator_name().parts();
        let bh = base_hash(p.namespace, p.base);
        match self.by_base.find_mut(bh, |(gh, g)| {
            *gh == bh && has_base(&g[0], p.namespace, p.base)
        }) {
            Some((_, g)) => g.push(op.clone()),
            None => {
                self.by_base
                    .insert_unique(bh, (bh, smallvec::smallvec![op.clone()]), |e| e.0);
            }
        }
        self.by_name.insert_unique(h, (h, op), |e| e.0);
    }
    /// Removes `op` itself (not another operator of the same name).
    fn remove(&mut self, op: &OperatorHandle) -> Option<OperatorHandle> {
        let removed = self
            .by_name
            .find_entry(op.0.name_hash(), |(_, o)| o == op)
            .ok()
            .map(|e| e.remove().0 .1)?;
        let p = op.operator_name().parts();
        let bh = base_hash(p.namespace, p.base);
        if let Ok(mut e) = self.by_base.find_entry(bh, |(_, g)| g.contains(op)) {
            let g = &mut e.get_mut().1;
            g.retain(|o| o != op);
            if g.is_empty() {
                e.remove();
            }
        }
        Some(removed)
    }
    /// The operators named `namespace::base`, any overload, in no particular order.
    fn with_base(&self, namespace: Option<&str>, base: &str) -> &[OperatorHandle] {
        let bh = base_hash(namespace, base);
        self.by_base
            .find(bh, |(gh, g)| *gh == bh && has_base(&g[0], namespace, base))
            .map_or(&[], |(_, g)| g.as_slice())
    }
    fn iter(&self) -> impl Iterator<Item = &OperatorHandle> {
        self.by_name.iter().map(|(_, o)| o)
    }
    fn handles(&self) -> Vec<OperatorHandle> {
        self.iter().cloned().collect()
    }
}

/// Operators a library teardown removes per hold of the registration lock.
const TEARDOWN_BATCH: usize = 256;

/// The dispatcher singleton.
pub struct Dispatcher {
    registry: Mutex<Registry>,
}

/// Undoes one registration when dropped.
#[must_use = "dropping the handle immediately deregisters"]
pub struct RegistrationHandle {
    undo: Option<Undo>,
    /// Not `Dispatcher::singleton()`: handles are dropped while the singleton initializes.
    dispatcher: &'static Dispatcher,
}

/// What a handle undoes. Defs and impls are data rather than closures so that a library's
/// teardown can see which operators it empties (see [`Dispatcher::deregister_all`]).
enum Undo {
    Def(OperatorHandle),
    Impl {
        op: OperatorHandle,
        key: DispatchKey,
        keyed: bool,
        id: u64,
    },
    Other(Box<dyn FnOnce() + Send + Sync>),
}

impl RegistrationHandle {
    fn new(dispatcher: &'static Dispatcher, f: impl FnOnce() + Send + Sync + 'static) -> Self {
        Self {
            undo: Some(Undo::Other(Box::new(f))),
            dispatcher,
        }
    }
    /// Keeps the registration for the rest of the process.
    pub fn leak(mut self) {
        self.undo = None;
    }
    /// The operator whose def or impl this handle undoes.
    fn operator(&self) -> Option<&OperatorHandle> {
        match &self.undo {
            Some(Undo::Def(op) | Undo::Impl { op, .. }) => Some(op),
            _ => None,
        }
    }
}

impl Drop for RegistrationHandle {
    fn drop(&mut self) {
        let d = self.dispatcher;
        match self.undo.take() {
            None => {}
            Some(Undo::Def(op)) => d.deregister_def(&op),
            Some(Undo::Impl { op, key, keyed, id }) => d.deregister_impl(&op, key, keyed, id),
            Some(Undo::Other(f)) => f(),
        }
    }
}

/// See [`Dispatcher::deregister_all`]; takes the dispatcher from the handles, since libraries
/// are dropped while the singleton initializes.
pub(crate) fn deregister_all(handles: Vec<RegistrationHandle>) {
    if let Some(d) = handles.first().map(|h| h.dispatcher) {
        d.deregister_all(handles);
    }
}

impl std::fmt::Debug for RegistrationHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistrationHandle")
    }
}

type WarningHandler = Box<dyn Fn(&str) + Send + Sync>;
static WARNING_HANDLER: RwLock<Option<WarningHandler>> = RwLock::new(None);

/// Routes dispatcher warnings (for example the override warning) to a front end; the default
/// prints to stderr.
pub fn set_warning_handler(h: impl Fn(&str) + Send + Sync + 'static) {
    *WARNING_HANDLER.write() = Some(Box::new(h));
}

fn warn(msg: &str) {
    match &*WARNING_HANDLER.read() {
        Some(h) => h(msg),
        None => eprintln!("Warning: {msg}"),
    }
}

impl Dispatcher {
    /// The process-wide dispatcher, with PyTorch's default backend fallbacks registered.
    pub fn singleton() -> &'static Dispatcher {
        static D: OnceLock<Dispatcher> = OnceLock::new();
        static INIT: std::sync::Once = std::sync::Once::new();
        let d = D.get_or_init(|| Dispatcher {
            registry: Mutex::new(Registry {
                ops: OpsByName::default(),
                next_id: 0,
                libraries: HashMap::new(),
                fallbacks: vec![None; NUM_RUNTIME_ENTRIES],
                fresh: MasterTable::fresh(&[]),
            }),
        });
        INIT.call_once(|| crate::fallbacks::register_default_fallbacks(d));
        d
    }

    // ---------------------------------------------------------------- lookup

    /// `findOp`: the operator slot, with or without a schema.
    pub fn find_op(&self, name: &OperatorName) -> Option<OperatorHandle> {
        self.registry.lock().ops.get(name.parts()).cloned()
    }

    /// `findSchema`: the operator, if it has a schema.
    pub fn find_schema(&self, name: &OperatorName) -> Option<OperatorHandle> {
        self.find_op(name).filter(OperatorHandle::has_schema)
    }

    /// `findSchemaOrThrow`.
    pub fn find_schema_or_throw(&self, name: &str, overload: &str) -> Result<OperatorHandle> {
        let on = OperatorName::new(name, overload);
        match self.find_op(&on) {
            Some(op) if op.has_schema() => Ok(op),
            Some(_) => Err(DispatchError::Runtime(format!(
                "Could not find schema for {name}.{overload} but we found an implementation; did you forget to def() the operator?"
            ))),
            None => Err(DispatchError::Runtime(format!("Could not find schema for {name}.{overload}"))),
        }
    }

    /// The overload names ("" for the default overload) of the operators named `qualified`
    /// (`"ns::op"`) that have a schema, sorted (so "" comes first). Costs a hash lookup, not a
    /// scan: the registry keeps its operators grouped by `ns::op`.
    pub fn overload_names(&self, qualified: &str) -> Vec<String> {
        let (namespace, base) = match qualified.find("::") {
            Some(p) => (Some(&qualified[..p]), &qualified[p + 2..]),
            None => (None, qualified),
        };
        let reg = self.registry.lock();
        let mut v: Vec<String> = reg
            .ops
            .with_base(namespace, base)
            .iter()
            .filter(|o| o.has_schema())
            .map(|o| o.operator_name().overload_name.clone())
            .collect();
        drop(reg);
        v.sort_unstable();
        v
    }

    /// Every operator name ("ns::op" or "ns::op.overload").
    pub fn all_op_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .registry
            .lock()
            .ops
            .iter()
            .map(|o| o.operator_name().to_string())
            .collect();
        v.sort();
        v
    }

    /// Operators without a schema (impls whose def never came), as their dump states.
    pub fn find_dangling_impls(&self) -> Vec<String> {
        let ops = self.registry.lock().ops.handles();
        ops.iter()
            .filter(|o| !o.has_schema())
            .map(OperatorHandle::dump_state)
            .collect()
    }

    /// Names of operators with a direct kernel for `k` (all operators when `k` is `None`).
    pub fn registrations_for_dispatch_key(&self, k: Option<DispatchKey>) -> Vec<String> {
        let ops = self.registry.lock().ops.handles();
        let mut v: Vec<String> = ops
            .iter()
            .filter(|o| k.is_none_or(|k| o.has_kernel_for_dispatch_key(k)))
            .map(|o| o.operator_name().to_string())
            .collect();
        v.sort();
        v
    }

    /// Whether a backend fallback is registered for `k`.
    pub fn has_backend_fallback_for_dispatch_key(&self, k: DispatchKey) -> bool {
        if k.is_alias() {
            return false;
        }
        self.registry.lock().fallbacks[dispatch_table_index_for_key(k)].is_some()
    }

    /// `checkInvariants` for every operator.
    pub fn check_all_invariants(&self) -> Result<()> {
        let ops = self.registry.lock().ops.handles();
        ops.iter().try_for_each(OperatorHandle::check_invariants)
    }

    // ---------------------------------------------------------- registration

    /// `registerLibrary`: claims a namespace for a DEF library.
    pub fn register_library(&'static self, ns: &str, debug: String) -> Result<RegistrationHandle> {
        let mut reg = self.registry.lock();
        if let Some(prev) = reg.libraries.get(ns) {
            return Err(DispatchError::Runtime(format!(
                "Only a single TORCH_LIBRARY can be used to register the namespace {ns}; please put all of your definitions in a single TORCH_LIBRARY block.  If you were trying to specify implementations, consider using TORCH_LIBRARY_IMPL (which can be duplicated).  If you really intended to define operators for a single namespace in a distributed way, you can use TORCH_LIBRARY_FRAGMENT to explicitly indicate this.  Previous registration of TORCH_LIBRARY was {prev}; latest registration was {debug}"
            )));
        }
        reg.libraries.insert(ns.to_owned(), debug);
        let ns = ns.to_owned();
        Ok(RegistrationHandle::new(self, move || {
            self.registry.lock().libraries.remove(&ns);
        }))
    }

    /// `registerDef`: gives an operator its schema.
    pub fn register_def(
        &'static self,
        schema: FunctionSchema,
        debug: Arc<str>,
        tags: Vec<crate::Tag>,
    ) -> Result<RegistrationHandle> {
        let mut guard = self.registry.lock();
        let reg = &mut *guard;
        let (op, created) = reg.find_or_register_name(schema.name.parts());
        let mut st = op.0.lock();
        let mut garbage = Garbage::default();
        if let Err(e) =
            op.0.add_def(&mut st, schema, debug, tags, &reg.fallbacks, &mut garbage)
        {
            if created {
                // A slot created just now holds nothing that needs deferred release.
                reg.cleanup(&op, &mut st, &mut garbage);
            }
            return Err(e);
        }
        drop(st);
        drop(guard);
        drop(garbage);
        Ok(RegistrationHandle {
            undo: Some(Undo::Def(op)),
            dispatcher: self,
        })
    }

    fn deregister_def(&self, op: &OperatorHandle) {
        let mut garbage = Garbage::default();
        let mut guard = self.registry.lock();
        let reg = &mut *guard;
        let mut st = op.0.lock();
        op.0.remove_def(&mut st, &reg.fallbacks, &mut garbage);
        reg.cleanup(op, &mut st, &mut garbage);
        drop(st);
        drop(guard);
        drop(garbage);
    }

    /// `registerImpl`: adds a kernel for `dispatch_key` (`None` = catch-all, which means
    /// CompositeImplicitAutograd).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register_impl(
        &'static self,
        name: OperatorNameParts<'_>,
        dispatch_key: Option<DispatchKey>,
        kernel: KernelFunction,
        cpp_signature: Option<(std::any::TypeId, &'static str)>,
        inferred_schema: Option<Arc<FunctionSchema>>,
        debug: Arc<str>,
    ) -> Result<RegistrationHandle> {
        let mut guard = self.registry.lock();
        let reg = &mut *guard;
        let (op, created) = reg.find_or_register_name(name);
        let mut st = op.0.lock();
        let r = ImplRegistration {
            dispatch_key,
            kernel,
            cpp_signature,
            inferred_schema,
            debug,
        };
        if let Err(e) = op.0.check_impl(&st, name, &r) {
            if created {
                // A slot created just now holds nothing that needs deferred release.
                let mut g = Garbage::default();
                reg.cleanup(&op, &mut st, &mut g);
                drop(g);
            }
            return Err(e);
        }
        let k = r.key();
        let id = reg.fresh_id();
        let mut garbage = Garbage::default();
        let pending_warning =
            op.0.add_impl(&mut st, name, r, id, &reg.fallbacks, &mut garbage);
        drop(st);
        drop(guard);
        drop(garbage);
        // Warn only after releasing the locks: a front end's handler may run arbitrary code.
        if let Some(w) = pending_warning {
            warn(&w);
        }
        Ok(RegistrationHandle {
            undo: Some(Undo::Impl {
                op,
                key: k,
                keyed: dispatch_key.is_some(),
                id,
            }),
            dispatcher: self,
        })
    }

    fn deregister_impl(&self, op: &OperatorHandle, k: DispatchKey, keyed: bool, id: u64) {
        let mut garbage = Garbage::default();
        let mut guard = self.registry.lock();
        let reg = &mut *guard;
        let mut st = op.0.lock();
        op.0.remove_impl(&mut st, k, keyed, id, &reg.fallbacks, &mut garbage);
        reg.cleanup(op, &mut st, &mut garbage);
        drop(st);
        drop(guard);
        drop(garbage);
    }

    /// Undoes `handles` newest first. An operator all of whose registrations are in the batch
    /// is removed outright: its table would only be updated, entry by entry, back to the empty
    /// state it is about to be discarded in. Everything else is undone one handle at a time,
    /// as PyTorch does (incremental table updates are order-sensitive).
    fn deregister_all(&'static self, mut handles: Vec<RegistrationHandle>) {
        // Operators in registration order, with how many of `handles` touch each. They are
        // torn down in reverse registration order (as the handles are): that walks memory
        // roughly in allocation order, where hash order was a random walk over the tens of
        // megabytes a library of thousands of operators occupies (a cache and TLB miss per
        // step), and the allocator hands the freed memory back in ascending order next time.
        let mut index: rustc_hash::FxHashMap<*const OperatorEntry, usize> = Default::default();
        let mut per_op: Vec<(OperatorHandle, usize, bool)> = Vec::new();
        let mut op_of_handle: Vec<usize> = Vec::with_capacity(handles.len());
        let mut last: Option<(*const OperatorEntry, usize)> = None;
        for h in &handles {
            let i = match h.operator() {
                // A def and its impls usually come one after another: no lookup for those.
                Some(op) if last.is_some_and(|(p, _)| p == Arc::as_ptr(&op.0)) => {
                    last.map_or(usize::MAX, |(_, i)| i)
                }
                Some(op) => {
                    let i = *index.entry(Arc::as_ptr(&op.0)).or_insert_with(|| {
                        per_op.push((op.clone(), 0, false));
                        per_op.len() - 1
                    });
                    last = Some((Arc::as_ptr(&op.0), i));
                    i
                }
                None => usize::MAX,
            };
            if let Some(e) = per_op.get_mut(i) {
                e.1 += 1;
            }
            op_of_handle.push(i);
        }
        drop(index);
        let mut garbage = Garbage::default();
        // In batches: the locks are released and the garbage dropped after each, so the
        // garbage never grows into large vectors (freeing those makes the allocator
        // consolidate every small block freed so far, a walk over cold memory).
        for batch in per_op.rchunks_mut(TEARDOWN_BATCH) {
            let mut reg = self.registry.lock();
            for (op, n, removed) in batch.iter_mut().rev() {
                let mut st = op.0.lock();
                if OperatorEntry::registrations(&st) != *n {
                    continue;
                }
                OperatorEntry::clear_registrations(&mut st, &mut garbage);
                reg.cleanup(op, &mut st, &mut garbage);
                drop(st);
                *removed = true;
            }
            drop(reg);
            drop(std::mem::take(&mut garbage));
        }
        while let Some(mut h) = handles.pop() {
            let i = op_of_handle.pop().unwrap_or(usize::MAX);
            if per_op.get(i).is_some_and(|e| e.2) {
                h.undo = None;
            }
            drop(h);
        }
    }

    /// `registerName`: reserves an operator slot without a schema or kernel.
    pub fn register_name(&'static self, name: &OperatorName) -> RegistrationHandle {
        let mut reg = self.registry.lock();
        let (op, _) = reg.find_or_register_name(name.parts());
        OperatorEntry::add_name(&mut op.0.lock());
        drop(reg);
        RegistrationHandle::new(self, move || {
            let mut garbage = Garbage::default();
            let mut reg = self.registry.lock();
            let mut st = op.0.lock();
            OperatorEntry::remove_name(&mut st);
            reg.cleanup(&op, &mut st, &mut garbage);
            drop(st);
            drop(reg);
            drop(garbage);
        })
    }

    /// `registerFallback`: a kernel for runtime key `k` that every operator without its own
    /// kernel for `k` uses.
    pub fn register_fallback(
        &'static self,
        k: DispatchKey,
        kernel: KernelFunction,
        debug: String,
    ) -> Result<RegistrationHandle> {
        let idx = dispatch_table_index_for_key(k);
        // A fallback is stored, and its table slots are updated, by runtime key: for any other
        // key the two would disagree, and a removed fallback could stay in a slot.
        if runtime_key_for_index(idx) != k || k == DispatchKey::Undefined {
            return Err(DispatchError::Runtime(format!(
                "registerFallback: {} is not a runtime dispatch key; register a fallback for each of its runtime keys (Library::fallback does)",
                k.name()
            )));
        }
        let mut reg = self.registry.lock();
        if let Some(prev) = &reg.fallbacks[idx] {
            return Err(DispatchError::Runtime(format!(
                "Tried to register multiple backend fallbacks for the same dispatch key {}; previous registration {}, new registration {debug}",
                k.name(),
                prev.debug
            )));
        }
        let id = reg.fresh_id();
        reg.fallbacks[idx] = Some(AnnotatedKernel {
            kernel,
            inferred_schema: None,
            debug: Arc::from(debug),
            id,
        });
        let mut garbage = Garbage::default();
        reg.refresh_template(&mut garbage);
        self.update_fallback_everywhere(&reg, k, &mut garbage);
        drop(reg);
        drop(garbage);
        Ok(RegistrationHandle::new(self, move || {
            let mut garbage = Garbage::default();
            let mut reg = self.registry.lock();
            if reg.fallbacks[idx].as_ref().is_some_and(|f| f.id == id) {
                garbage.annotated.extend(reg.fallbacks[idx].take());
                reg.refresh_template(&mut garbage);
                self.update_fallback_everywhere(&reg, k, &mut garbage);
            }
            drop(reg);
            drop(garbage);
        }))
    }

    /// `updateFallback(k)` on every operator.
    fn update_fallback_everywhere(&self, reg: &Registry, k: DispatchKey, garbage: &mut Garbage) {
        let ops = reg.ops.handles();
        for op in &ops {
            op.0.update_fallback(&mut op.0.lock(), k, &reg.fallbacks, garbage);
        }
        garbage.ops.extend(ops);
    }

    #[cold]
    #[inline(never)]
    fn rebuild_table(&self, op: &OperatorHandle) -> Arc<DispatchTable> {
        // The registration lock orders this against registrations (which take it first).
        let reg = self.registry.lock();
        let st = op.0.lock();
        op.0.snapshot_for_calls(&st, &reg.fresh)
    }

    // ---------------------------------------------------------------- calls

    /// `callBoxed`: extracts keys from the stack, applies TLS and fallthrough masks, and runs
    /// the kernel of the highest key. Arguments are popped, returns pushed.
    pub fn call_boxed(&self, op: &OperatorHandle, stack: &mut Stack) -> Result<()> {
        op.with_table(|table| self.run_boxed(op, table, table.key_set_boxed(stack), false, stack))
    }

    /// `redispatchBoxed`: runs the kernel for `ks` exactly as given (no TLS, no masks).
    pub fn redispatch_boxed(
        &self,
        op: &OperatorHandle,
        ks: DispatchKeySet,
        stack: &mut Stack,
    ) -> Result<()> {
        op.with_table(|table| self.run_boxed(op, table, skip_fallthroughs(table, ks), true, stack))
    }

    /// Looks up and runs the kernel for `ks` in `table`. Pure redispatch kernels (the autograd
    /// fallback) are applied here, in the same snapshot, instead of through a nested call.
    #[inline]
    fn run_boxed(
        &self,
        op: &OperatorHandle,
        table: &DispatchTable,
        ks: DispatchKeySet,
        redispatch: bool,
        stack: &mut Stack,
    ) -> Result<()> {
        let (ks, kernel) = pass_redispatch_slots(table, ks);
        let mut run = move || {
            if !kernel.is_valid() {
                return Err(self.report_error(op, ks.highest_priority_type_id()));
            }
            kernel.call_boxed(op, ks, stack)
        };
        if crate::trace::maybe_active() {
            let key = ks.highest_priority_type_id();
            return crate::trace::record(op, key, kernel.kind(), redispatch, run);
        }
        run()
    }

    /// `callBoxedForDispatchKey`: runs the direct kernel for `k` (or the backend fallback),
    /// with no table or alias resolution.
    pub fn call_boxed_for_dispatch_key(
        &self,
        op: &OperatorHandle,
        k: DispatchKey,
        stack: &mut Stack,
    ) -> Result<()> {
        let ks = op.with_table(|t| t.key_set_boxed(stack));
        let kernel = match op.0.direct_kernel(k) {
            Some(kernel) => kernel,
            None => {
                let reg = self.registry.lock();
                let fb = if k.is_alias() {
                    None
                } else {
                    reg.fallbacks[dispatch_table_index_for_key(k)].as_ref()
                };
                match fb {
                    Some(f) => f.kernel.clone(),
                    None => {
                        return Err(DispatchError::Runtime(format!(
                            "no kernel for {} on {}",
                            k.name(),
                            op.operator_name()
                        )))
                    }
                }
            }
        };
        if crate::trace::maybe_active() {
            let kind = kernel.kind();
            return crate::trace::record(op, k, kind, false, || kernel.call_boxed(op, ks, stack));
        }
        kernel.call_boxed(op, ks, stack)
    }

    /// PyTorch's `reportError`: the NotImplementedError for a missing kernel, plus a hint.
    pub(crate) fn report_error(&self, op: &OperatorHandle, k: DispatchKey) -> DispatchError {
        let name = op.operator_name();
        let keys = op.with_table(OperatorEntry::list_all_dispatch_keys);
        let table = self.dump_computed_table(op);
        if k == DispatchKey::Undefined {
            DispatchError::NotImplemented(format!(
                "There were no tensor arguments to this function (e.g., you passed an empty list of Tensors), but no fallback function is registered for schema {name}.  This usually means that this function requires a non-empty list of Tensors, or that you (the operator writer) forgot to register a fallback function.  Available functions are {keys}.\n\n{table}\nTo fix: an operator without tensor arguments dispatches on the Undefined key; register a CompositeExplicitAutograd (or CompositeImplicitAutograd) kernel for {name}, which also fills that slot."
            ))
        } else {
            DispatchError::NotImplemented(format!(
                "Could not run '{name}' with arguments from the '{k}' backend. This could be because the operator doesn't exist for this backend, or was omitted during the selective/custom build process (if using custom build). If you are a Facebook employee using PyTorch on mobile, please visit https://fburl.com/ptmfixes for possible resolutions. '{name}' is only available for these backends: {keys}.\n\n{table}\nTo fix: register a kernel for {name} at the '{k}' key (or a CompositeExplicitAutograd kernel, which covers every backend)."
            ))
        }
    }

    /// Runs `f` on the backend fallbacks under the registration lock (the read-only views:
    /// `explain`, the table rows).
    pub(crate) fn with_fallbacks<R>(&self, f: impl FnOnce(&crate::operator::Fallbacks) -> R) -> R {
        f(&self.registry.lock().fallbacks)
    }

    /// PyTorch's `dumpComputedTable()`.
    pub fn dump_computed_table(&self, op: &OperatorHandle) -> String {
        op.0.dump_computed_table(&self.registry.lock().fallbacks)
    }

    /// Whether the stored table entry for runtime key `k` is valid.
    pub fn has_computed_kernel_for_dispatch_key(
        &self,
        op: &OperatorHandle,
        k: DispatchKey,
    ) -> Result<bool> {
        if k.is_alias() {
            return Err(DispatchError::Runtime(
                "Alias keys do not have runtime kernel registrations.".into(),
            ));
        }
        Ok(op.with_table(|t| t.entries[dispatch_table_index_for_key(k)].is_valid()))
    }

    /// The computed entry for a runtime key with its debug string and provenance.
    pub fn computed_kernel_for_dispatch_key(
        &self,
        op: &OperatorHandle,
        k: DispatchKey,
    ) -> (KernelFunction, String, &'static str) {
        op.0.computed_entry(&self.registry.lock().fallbacks, k)
    }

    pub(crate) fn check_invariants_of(&self, op: &OperatorHandle) -> Result<()> {
        op.0.check_invariants(&self.registry.lock().fallbacks)
    }

    /// Runtime keys (in table order) whose stored entry is the fallthrough kernel.
    pub fn fallthrough_keys(&self, op: &OperatorHandle) -> Vec<DispatchKey> {
        op.with_table(|t| {
            runtime_keys_in_table_order()
                .iter()
                .copied()
                .filter(|&k| t.entries[dispatch_table_index_for_key(k)].is_fallthrough())
                .collect()
        })
    }
}

/// Drops keys whose entry is a fallthrough from a redispatch key set. A call's key set was
/// masked against the table it started with; if a registration made one of its keys a
/// fallthrough before the kernel redispatches, the redispatch must skip that key rather than
/// run the fallthrough marker.
#[inline]
pub(crate) fn skip_fallthroughs(table: &DispatchTable, ks: DispatchKeySet) -> DispatchKeySet {
    skip_fallthrough_slots(ks, |i| table.entries[i].is_fallthrough())
}

/// Applies the masks of pure redispatch slots (the autograd fallback) from `ks` on, in the
/// same snapshot: the key set and slot of the kernel that actually runs.
#[inline]
pub(crate) fn pass_redispatch_slots(
    table: &DispatchTable,
    mut ks: DispatchKeySet,
) -> (DispatchKeySet, &crate::kernel::KernelRef) {
    let mut kernel = &table.entries[ks.dispatch_table_index()];
    while let Some(mask) = kernel.redispatch_mask() {
        ks = skip_fallthroughs(table, ks & mask);
        kernel = &table.entries[ks.dispatch_table_index()];
    }
    (ks, kernel)
}

/// [`skip_fallthroughs`] over any table, given which slot indices hold a fallthrough (the
/// master table's view, `explain`, uses it too).
#[inline]
pub(crate) fn skip_fallthrough_slots(
    mut ks: DispatchKeySet,
    is_fallthrough: impl Fn(usize) -> bool,
) -> DispatchKeySet {
    while is_fallthrough(ks.dispatch_table_index()) {
        let next = ks.remove(ks.highest_priority_type_id());
        if next == ks {
            break;
        }
        ks = next;
    }
    ks
}

impl OperatorHandle {
    /// Runs `f` on the current table snapshot; only a snapshot dropped by a registration sends
    /// the caller to the (locked) rebuild path.
    #[inline]
    pub(crate) fn with_table<R>(&self, f: impl FnOnce(&DispatchTable) -> R) -> R {
        let g = crate::rcu::read();
        if let Some(t) = self.0.published_table(&g) {
            return f(t);
        }
        f(&Dispatcher::singleton().rebuild_table(self))
    }

    /// The schema, if the operator has been def()'d.
    pub fn schema(&self) -> Option<Arc<FunctionSchema>> {
        self.with_table(|t| t.meta.schema.clone())
    }
    /// Runs `f` on the current schema without taking a reference to it (the call path's
    /// version of [`OperatorHandle::schema`]).
    pub fn with_schema<R>(&self, f: impl FnOnce(Option<&FunctionSchema>) -> R) -> R {
        self.with_table(|t| f(t.meta.schema.as_deref()))
    }
    pub fn dump_computed_table(&self) -> String {
        Dispatcher::singleton().dump_computed_table(self)
    }
    pub fn check_invariants(&self) -> Result<()> {
        Dispatcher::singleton().check_invariants_of(self)
    }
    /// The key set a boxed call with this stack would dispatch on (TLS and masks applied).
    pub fn key_set_for_boxed_call(&self, stack: &[crate::IValue]) -> DispatchKeySet {
        self.with_table(|t| t.key_set_boxed(stack))
    }
    /// `callBoxed`.
    pub fn call_boxed(&self, stack: &mut Stack) -> Result<()> {
        Dispatcher::singleton().call_boxed(self, stack)
    }
    /// `redispatchBoxed`.
    pub fn redispatch_boxed(&self, ks: DispatchKeySet, stack: &mut Stack) -> Result<()> {
        Dispatcher::singleton().redispatch_boxed(self, ks, stack)
    }
    /// Number of schema arguments (0 when there is no schema).
    pub fn num_arguments(&self) -> usize {
        self.with_table(|t| t.meta.schema.as_ref().map_or(0, |s| s.arguments.len()))
    }
}
