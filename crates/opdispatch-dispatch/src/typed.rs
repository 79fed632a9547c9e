//! Typed (unboxed) kernels and calls for Rust users.
//!
//! A kernel is a plain `fn(A1, A2, ..) -> R`. Registering it records three things: the `fn`
//! pointer (called directly by typed calls, no boxing), a boxed wrapper (for boxed callers such as
//! Python), and a schema inferred from the Rust signature, which the dispatcher checks against
//! the def. `OperatorHandle::typed::<fn(..) -> R>()` checks the signature against the schema
//! once; its `call` then costs a key-set extraction, a table load and an indirect call.

use std::marker::PhantomData;
use std::sync::Arc;

use opdispatch_keys::DispatchKeySet;
use opdispatch_schema::{find_schema_differences, Argument, FunctionSchema, OperatorName, Type};

use crate::dispatcher::Dispatcher;
use crate::error::{DispatchError, Result};
use crate::ivalue::{IValue, Stack, TensorRef};
use crate::kernel::KernelFunction;
use crate::library::CppFunction;
use crate::operator::OperatorHandle;

/// A Rust type that can be a kernel argument.
pub trait KernelArg: Sized + 'static {
    /// Its schema type (used to infer a kernel's schema).
    fn schema_type() -> Type;
    /// Keys this argument contributes to dispatch.
    #[inline]
    fn arg_key_set(&self) -> DispatchKeySet {
        DispatchKeySet::EMPTY
    }
    /// Unboxes from a stack value.
    fn from_ivalue(v: IValue) -> Result<Self>;
    /// Boxes into a stack value.
    fn into_ivalue(self) -> IValue;
}

fn type_error(expected: &str, got: &IValue) -> DispatchError {
    DispatchError::Type(format!(
        "expected a value of type '{expected}' but found '{}'",
        got.type_name()
    ))
}

macro_rules! scalar_arg {
    ($t:ty, $ty:expr, $var:ident, $name:literal) => {
        impl KernelArg for $t {
            fn schema_type() -> Type {
                $ty
            }
            fn from_ivalue(v: IValue) -> Result<Self> {
                match v {
                    IValue::$var(x) => Ok(x.into()),
                    other => Err(type_error($name, &other)),
                }
            }
            fn into_ivalue(self) -> IValue {
                IValue::$var(self.into())
            }
        }
    };
}
scalar_arg!(i64, Type::Int, Int, "int");
scalar_arg!(f64, Type::Float, Double, "float");
scalar_arg!(bool, Type::Bool, Bool, "bool");
scalar_arg!(Vec<i64>, Type::List(Box::new(Type::Int)), IntList, "int[]");
scalar_arg!(
    Vec<f64>,
    Type::List(Box::new(Type::Float)),
    DoubleList,
    "float[]"
);

impl KernelArg for String {
    fn schema_type() -> Type {
        Type::Str
    }
    fn from_ivalue(v: IValue) -> Result<Self> {
        match v {
            IValue::Str(s) => Ok(s.to_string()),
            other => Err(type_error("str", &other)),
        }
    }
    fn into_ivalue(self) -> IValue {
        IValue::Str(Arc::from(self))
    }
}

impl KernelArg for TensorRef {
    fn schema_type() -> Type {
        Type::Tensor
    }
    #[inline]
    fn arg_key_set(&self) -> DispatchKeySet {
        self.key_set()
    }
    fn from_ivalue(v: IValue) -> Result<Self> {
        match v {
            IValue::Tensor(t) => Ok(t),
            other => Err(type_error("Tensor", &other)),
        }
    }
    fn into_ivalue(self) -> IValue {
        IValue::Tensor(self)
    }
}

impl KernelArg for Option<TensorRef> {
    fn schema_type() -> Type {
        Type::Optional(Box::new(Type::Tensor))
    }
    fn arg_key_set(&self) -> DispatchKeySet {
        self.as_ref()
            .map_or(DispatchKeySet::EMPTY, TensorRef::key_set)
    }
    fn from_ivalue(v: IValue) -> Result<Self> {
        match v {
            IValue::None => Ok(None),
            IValue::Tensor(t) => Ok(Some(t)),
            other => Err(type_error("Tensor?", &other)),
        }
    }
    fn into_ivalue(self) -> IValue {
        self.map_or(IValue::None, IValue::Tensor)
    }
}

impl KernelArg for Vec<TensorRef> {
    fn schema_type() -> Type {
        Type::List(Box::new(Type::Tensor))
    }
    fn arg_key_set(&self) -> DispatchKeySet {
        self.iter()
            .fold(DispatchKeySet::EMPTY, |a, t| a | t.key_set())
    }
    fn from_ivalue(v: IValue) -> Result<Self> {
        match v {
            IValue::TensorList(ts) => Ok(ts),
            other => Err(type_error("Tensor[]", &other)),
        }
    }
    fn into_ivalue(self) -> IValue {
        IValue::TensorList(self)
    }
}

/// A kernel's successful output: zero, one or several returns.
pub trait KernelOutput: Sized + 'static {
    /// Schema types of the returns.
    fn return_types() -> Vec<Type>;
    /// Pushes the returns.
    fn push(self, stack: &mut Stack);
    /// Pops the returns pushed by a boxed kernel.
    fn pop(stack: &mut Stack) -> Result<Self>;
}

impl KernelOutput for () {
    fn return_types() -> Vec<Type> {
        Vec::new()
    }
    fn push(self, _: &mut Stack) {}
    fn pop(_: &mut Stack) -> Result<Self> {
        Ok(())
    }
}

impl<T: KernelArg> KernelOutput for T {
    fn return_types() -> Vec<Type> {
        vec![T::schema_type()]
    }
    fn push(self, stack: &mut Stack) {
        stack.push(self.into_ivalue());
    }
    fn pop(stack: &mut Stack) -> Result<Self> {
        T::from_ivalue(
            stack
                .pop()
                .ok_or_else(|| DispatchError::Internal("kernel pushed no return".into()))?,
        )
    }
}

impl<A: KernelArg, B: KernelArg> KernelOutput for (A, B) {
    fn return_types() -> Vec<Type> {
        vec![A::schema_type(), B::schema_type()]
    }
    fn push(self, stack: &mut Stack) {
        stack.push(self.0.into_ivalue());
        stack.push(self.1.into_ivalue());
    }
    fn pop(stack: &mut Stack) -> Result<Self> {
        let b = B::pop(stack)?;
        let a = A::pop(stack)?;
        Ok((a, b))
    }
}

/// What a kernel `fn` returns: a plain output, or a `Result` of one.
pub trait KernelReturn: 'static {
    type Output: KernelOutput;
    fn into_result(self) -> Result<Self::Output>;
}

impl<T: KernelOutput> KernelReturn for T {
    type Output = T;
    #[inline]
    fn into_result(self) -> Result<T> {
        Ok(self)
    }
}

impl<T: KernelOutput> KernelReturn for Result<T> {
    type Output = T;
    #[inline]
    fn into_result(self) -> Result<T> {
        self
    }
}

mod sealed {
    /// Only `fn` pointer types implement `KernelSignature` (the dispatcher stores them as
    /// type-erased pointers), so the trait is sealed.
    pub trait FnPointer {}
}

/// Implemented for `fn(A1, ..) -> R` pointer types whose arguments and return are kernel types.
/// Sealed: no other type can implement it.
pub trait KernelSignature: sealed::FnPointer + Copy + Send + Sync + 'static {
    /// The schema PyTorch would infer: unnamed, arguments and returns named `_0`, `_1`, ...
    fn infer_schema() -> FunctionSchema;
    /// Runs `self` on the boxed stack (pops arguments, pushes returns).
    fn call_on_stack(self, stack: &mut Stack) -> Result<()>;
}

fn unnamed_arg(i: usize, ty: Type) -> Argument {
    Argument {
        name: format!("_{i}"),
        ty,
        n: None,
        default: None,
        kwarg_only: false,
        alias_info: None,
    }
}

fn inferred_schema(args: Vec<Type>, rets: Vec<Type>) -> FunctionSchema {
    FunctionSchema {
        name: OperatorName::new("", ""),
        arguments: args
            .into_iter()
            .enumerate()
            .map(|(i, t)| unnamed_arg(i, t))
            .collect(),
        returns: rets
            .into_iter()
            .enumerate()
            .map(|(i, t)| unnamed_arg(i, t))
            .collect(),
        is_vararg: false,
        is_varret: false,
        alias_kind: None,
    }
}

/// The boxed form of a typed kernel of signature `F`.
///
/// # Safety
/// `p` must be a `fn` pointer of type `F`, erased.
unsafe fn typed_trampoline<F: KernelSignature>(p: *const (), stack: &mut Stack) -> Result<()> {
    // SAFETY: caller contract: `p` was erased from an `F` of pointer size.
    let f = unsafe { std::mem::transmute_copy::<*const (), F>(&p) };
    f.call_on_stack(stack)
}

/// The kernel for the typed function `f` and the inferred schema of its signature, built once
/// per function (per thread) and shared by every registration of it: a `KernelInner` is
/// immutable, and one for the same function behaves identically, so a library registering one
/// function for thousands of operators keeps one copy. The functions are program code, so the
/// cache is bounded by the program. Thread-local, so a lookup takes no lock.
fn typed_kernel_of<F: KernelSignature>(f: F) -> (KernelFunction, Arc<FunctionSchema>) {
    type Cache =
        rustc_hash::FxHashMap<(std::any::TypeId, usize), (KernelFunction, Arc<FunctionSchema>)>;
    thread_local! {
        static CACHE: std::cell::RefCell<Cache> = std::cell::RefCell::default();
    }
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
    // SAFETY: KernelSignature is only implemented for `fn` pointer types, which are
    // pointer-sized.
    let addr = unsafe { std::mem::transmute_copy::<F, usize>(&f) };
    CACHE.with_borrow_mut(|cache| {
        cache
            .entry((std::any::TypeId::of::<F>(), addr))
            .or_insert_with(|| {
                // SAFETY: `f` is a `fn` pointer (KernelSignature is sealed to those), and the
                // trampoline for `F` runs the pointer it is given as an `F` on the stack.
                let kernel = unsafe { KernelFunction::from_unboxed(f, typed_trampoline::<F>) };
                (kernel, Arc::new(F::infer_schema()))
            })
            .clone()
    })
}

/// A typed view of an operator whose schema was checked against `F` once.
pub struct TypedOperatorHandle<F> {
    op: OperatorHandle,
    _f: PhantomData<F>,
}

impl<F> Clone for TypedOperatorHandle<F> {
    fn clone(&self) -> Self {
        Self {
            op: self.op.clone(),
            _f: PhantomData,
        }
    }
}

impl<F: KernelSignature> TypedOperatorHandle<F> {
    pub fn handle(&self) -> &OperatorHandle {
        &self.op
    }
}

impl OperatorHandle {
    /// A typed handle; fails if `F` does not match the operator's schema.
    pub fn typed<F: KernelSignature>(&self) -> Result<TypedOperatorHandle<F>> {
        let schema = self.schema().ok_or_else(|| {
            DispatchError::Runtime(format!(
                "Tried to access the schema for {} which doesn't have a schema registered yet",
                self.operator_name()
            ))
        })?;
        let inferred = F::infer_schema();
        if let Some(reason) = find_schema_differences(&inferred, &schema) {
            return Err(DispatchError::Runtime(format!(
                "\nTried to access or call an operator with a wrong signature.\n  operator: {schema}\n    {}\n  correct signature:  {schema}\n  accessed/called as: {}\n  reason: {reason}\nThis likely happened in a call to OperatorHandle::typed<Return (Args...)>(). Please make sure that the function signature matches the signature in the operator registration call.",
                self.debug().unwrap_or_else(|| "unknown debug info".into()),
                std::any::type_name::<F>()
            )));
        }
        Ok(TypedOperatorHandle {
            op: self.clone(),
            _f: PhantomData,
        })
    }
}

impl CppFunction {
    /// A typed Rust kernel: unboxed entry, boxed wrapper and inferred schema.
    pub fn typed<F: KernelSignature>(f: F) -> Self {
        let (kernel, schema) = typed_kernel_of(f);
        let mut this = Self::new(kernel);
        this.inferred_schema = Some(schema);
        this.with_signature(std::any::TypeId::of::<F>(), std::any::type_name::<F>())
    }
}

macro_rules! impl_signature {
    ($($a:ident),*) => {
        impl<R: KernelReturn, $($a: KernelArg),*> sealed::FnPointer for fn($($a),*) -> R {}

        impl<R: KernelReturn, $($a: KernelArg),*> KernelSignature for fn($($a),*) -> R {
            fn infer_schema() -> FunctionSchema {
                inferred_schema(vec![$($a::schema_type()),*], R::Output::return_types())
            }
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn call_on_stack(self, stack: &mut Stack) -> Result<()> {
                const N: usize = 0 $(+ { let _ = stringify!($a); 1 })*;
                if stack.len() < N {
                    return Err(DispatchError::Internal("stack underflow in a typed kernel".into()));
                }
                let mut it = stack.drain(stack.len() - N..);
                $(let $a = $a::from_ivalue(it.next().unwrap_or_default())?;)*
                drop(it);
                let out = (self)($($a),*).into_result()?;
                out.push(stack);
                Ok(())
            }
        }

        impl<R: KernelReturn, $($a: KernelArg),*> TypedOperatorHandle<fn($($a),*) -> R> {
            /// Calls the operator: key extraction, TLS, table lookup, then the kernel (directly
            /// when it is a typed kernel of this signature, boxed otherwise).
            #[allow(non_snake_case)]
            #[inline]
            pub fn call(&self, $($a: $a),*) -> Result<R::Output> {
                if crate::trace::maybe_active() {
                    return self.call_traced(None, $($a),*);
                }
                self.op.with_table(|table| {
                    let ks = table.mask_and_tls(DispatchKeySet::EMPTY $(| $a.arg_key_set())*);
                    self.run(table, ks, $($a),*)
                })
            }

            /// Redispatches to `ks` as given (no TLS, no masks).
            #[allow(non_snake_case, clippy::too_many_arguments)]
            pub fn redispatch(&self, ks: DispatchKeySet, $($a: $a),*) -> Result<R::Output> {
                if crate::trace::maybe_active() {
                    return self.call_traced(Some(ks), $($a),*);
                }
                self.op.with_table(|table| {
                    let ks = crate::dispatcher::skip_fallthroughs(table, ks);
                    self.run(table, ks, $($a),*)
                })
            }

            /// The common case inline: the slot holds a typed kernel of exactly this signature.
            #[allow(non_snake_case, clippy::too_many_arguments)]
            #[inline(always)]
            fn run(&self, table: &crate::operator::DispatchTable, ks: DispatchKeySet, $($a: $a),*) -> Result<R::Output> {
                let kernel = &table.entries[ks.dispatch_table_index()];
                if let Some(f) = kernel.unboxed_as::<fn($($a),*) -> R>() {
                    return f($($a),*).into_result();
                }
                self.run_slow(table, ks, $($a),*)
            }

            /// `call` (`redispatch_ks` = None) or `redispatch` while some thread records a
            /// trace (see [`crate::trace`]); kept out of line so the untraced path stays small.
            #[allow(non_snake_case, clippy::too_many_arguments)]
            #[cold]
            #[inline(never)]
            fn call_traced(&self, redispatch_ks: Option<DispatchKeySet>, $($a: $a),*) -> Result<R::Output> {
                self.op.with_table(|table| {
                    let ks = match redispatch_ks {
                        None => table.mask_and_tls(DispatchKeySet::EMPTY $(| $a.arg_key_set())*),
                        Some(ks) => crate::dispatcher::skip_fallthroughs(table, ks),
                    };
                    let (ks, kernel) = crate::dispatcher::pass_redispatch_slots(table, ks);
                    let key = ks.highest_priority_type_id();
                    let redispatch = redispatch_ks.is_some();
                    crate::trace::record(&self.op, key, kernel.kind(), redispatch, move || self.run_slow(table, ks, $($a),*))
                })
            }

            /// Everything else: redispatch markers, missing kernels, boxed kernels.
            #[allow(non_snake_case, clippy::too_many_arguments)]
            #[inline(never)]
            fn run_slow(&self, table: &crate::operator::DispatchTable, mut ks: DispatchKeySet, $($a: $a),*) -> Result<R::Output> {
                let mut kernel = &table.entries[ks.dispatch_table_index()];
                // Pure redispatch kernels (the autograd fallback): apply their mask and look up
                // again, as their boxed form would, without boxing the arguments.
                while let Some(mask) = kernel.redispatch_mask() {
                    ks = crate::dispatcher::skip_fallthroughs(table, ks & mask);
                    kernel = &table.entries[ks.dispatch_table_index()];
                }
                if let Some(f) = kernel.unboxed_as::<fn($($a),*) -> R>() {
                    return f($($a),*).into_result();
                }
                if !kernel.is_valid() {
                    return Err(Dispatcher::singleton().report_error(&self.op, ks.highest_priority_type_id()));
                }
                let mut stack: Stack = crate::stack![$($a.into_ivalue()),*];
                kernel.call_boxed(&self.op, ks, &mut stack)?;
                R::Output::pop(&mut stack)
            }
        }
    };
}

impl_signature!();
impl_signature!(A1);
impl_signature!(A1, A2);
impl_signature!(A1, A2, A3);
impl_signature!(A1, A2, A3, A4);
impl_signature!(A1, A2, A3, A4, A5);
impl_signature!(A1, A2, A3, A4, A5, A6);
