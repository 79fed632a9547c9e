//! The Autograd kernel of every differentiable aten operator (PyTorch's generated
//! `VariableType` kernels), one generic boxed kernel driven by a [`Formula`]:
//!
//! 1. If grad mode is off or no tensor argument requires grad: exclude the autograd keys and
//!    call below (the common case, kept short).
//! 2. Otherwise: check in-place use, collect the inputs' gradient edges, save what the formula
//!    needs, run the operator below autograd, then make the outputs outputs of a new node.
//!
//! The hot binary operators also get typed kernels, so a typed call (Python's `a + b`) on
//! tensors that do not require grad stays unboxed.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use smallvec::SmallVec;

use opdispatch_dispatch::{
    CppFunction, DispatchKey, DispatchKeySet, ExcludeDispatchKeyGuard, IValue, KernelArg, Library,
    LibraryKind, OperatorHandle, Result, Stack, TypedOperatorHandle,
};
use opdispatch_keys::{
    AFTER_AD_INPLACE_OR_VIEW_KEYSET, AFTER_AUTOGRAD_KEYSET, AUTOGRAD_DISPATCH_KEYSET,
    AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW,
};
use opdispatch_tensor::{Scalar, Tensor};

use crate::formulas::{self, Formula};
use crate::grad_mode::is_grad_enabled;
use crate::meta;
use crate::node::{Edge, Node, NodeCore, TensorMeta};
use crate::runtime;
use crate::saved::{SavedVariable, SavedVariables};

/// Where a saved tensor came from: an argument index, or the output.
pub(crate) const RESULT: usize = usize::MAX;
/// The second output (the indices of `max.dim`/`min.dim`).
pub(crate) const INDICES: usize = usize::MAX - 1;

/// A node whose backward is a derivative formula.
pub(crate) struct FormulaNode {
    formula: &'static Formula,
    core: NodeCore,
    inputs: Vec<TensorMeta>,
    /// The call's non-tensor arguments, by argument index (tensors are `None` here).
    args: Vec<IValue>,
    saved: SavedVariables,
}

/// What a formula sees.
pub(crate) struct Ctx<'a> {
    pub(crate) grads: &'a [Option<Tensor>],
    pub(crate) args: &'a [IValue],
    saved: &'a [(usize, Tensor)],
    /// Metadata of the tensor inputs, in order.
    pub(crate) inputs: &'a [TensorMeta],
    needs: &'a [bool],
}

impl Ctx<'_> {
    pub(crate) fn grad(&self) -> Result<&Tensor> {
        self.grads
            .first()
            .and_then(Option::as_ref)
            .ok_or_else(|| runtime("internal: missing gradient"))
    }
    pub(crate) fn saved(&self, arg: usize) -> Result<&Tensor> {
        self.saved
            .iter()
            .find(|(i, _)| *i == arg)
            .map(|(_, t)| t)
            .ok_or_else(|| runtime("internal: tensor not saved"))
    }
    pub(crate) fn result(&self) -> Result<&Tensor> {
        self.saved(RESULT)
    }
    pub(crate) fn indices(&self) -> Result<&Tensor> {
        self.saved(INDICES)
    }
    pub(crate) fn scalar(&self, arg: usize) -> Scalar {
        match self.args.get(arg) {
            Some(IValue::Int(i)) => Scalar::Int(*i),
            Some(IValue::Double(f)) => Scalar::Float(*f),
            Some(IValue::Bool(b)) => Scalar::Bool(*b),
            Some(IValue::Complex(r, i)) => Scalar::Complex(*r, *i),
            _ => Scalar::Int(1),
        }
    }
    pub(crate) fn int(&self, arg: usize) -> i64 {
        match self.args.get(arg) {
            Some(IValue::Int(i)) => *i,
            _ => 0,
        }
    }
    pub(crate) fn arg(&self, arg: usize) -> &IValue {
        self.args.get(arg).unwrap_or(&IValue::None)
    }
    pub(crate) fn ints(&self, arg: usize) -> Option<Vec<i64>> {
        match self.args.get(arg) {
            Some(IValue::IntList(v)) => Some(v.clone()),
            Some(IValue::Int(i)) => Some(vec![*i]),
            _ => None,
        }
    }
    pub(crate) fn flag(&self, arg: usize) -> bool {
        matches!(self.args.get(arg), Some(IValue::Bool(true)))
    }
    /// Whether tensor input `k` needs a gradient.
    pub(crate) fn needs(&self, k: usize) -> bool {
        self.needs.get(k).copied().unwrap_or(false)
    }
    pub(crate) fn input(&self, k: usize) -> &TensorMeta {
        &self.inputs[k]
    }
}

impl Node for FormulaNode {
    fn name(&self) -> String {
        self.formula.name.to_string()
    }
    fn core(&self) -> &NodeCore {
        &self.core
    }
    fn apply(&self, grads: Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>> {
        if grads.iter().all(Option::is_none) {
            return Ok(vec![None; self.core.next.len()]);
        }
        let saved = self.saved.unpack_all()?;
        let needs: SmallVec<[bool; 4]> = self.core.next.iter().map(Edge::is_valid).collect();
        let ctx = Ctx {
            grads: &grads,
            args: &self.args,
            saved: &saved,
            inputs: &self.inputs,
            needs: &needs,
        };
        let mut out = (self.formula.f)(&ctx)?;
        out.resize(self.core.next.len(), None);
        for (g, need) in out.iter_mut().zip(&needs) {
            if !need {
                *g = None;
            }
        }
        Ok(out)
    }
    fn release_variables(&self) {
        self.saved.release_all();
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The tensors of a call's arguments, in order, with the index of the argument they came from.
/// Inline for the usual one to four tensors: this runs on every call that records a node.
fn tensor_args(args: &[IValue]) -> SmallVec<[(usize, Tensor); 4]> {
    let mut v = SmallVec::new();
    for (i, a) in args.iter().enumerate() {
        match a {
            IValue::Tensor(r) => {
                if let Some(t) = r.downcast::<Tensor>() {
                    v.push((i, t));
                }
            }
            IValue::TensorList(l) => {
                v.extend(
                    l.iter()
                        .filter_map(opdispatch_dispatch::TensorRef::downcast::<Tensor>)
                        .map(|t| (i, t)),
                );
            }
            _ => {}
        }
    }
    v
}

/// What an operator's schema says about aliasing (looked up once, at registration).
#[derive(Clone, Copy)]
struct Shape {
    inplace: bool,
    view: bool,
    /// Number of returns.
    nret: usize,
    /// Number of arguments (asking the operator takes its schema, which is not free).
    nargs: usize,
}

/// PyTorch's error for an in-place write to a leaf that requires grad (`ctx.mark_dirty` of an
/// `autograd.Function` checks it too).
pub fn check_not_leaf(t: &Tensor) -> Result<()> {
    if t.requires_grad() && meta::is_leaf(t) {
        return Err(runtime(
            "a leaf Variable that requires grad is being used in an in-place operation.",
        ));
    }
    Ok(())
}

/// PyTorch's `check_inplace` before an in-place write to `t` that records a node; returns the
/// base to rebase when `t` is a view.
fn check_inplace(t: &Tensor) -> Result<Option<Tensor>> {
    if let Some(base) = meta::base(t) {
        if meta::is_no_grad_view(t) {
            return Err(runtime(NO_GRAD_VIEW));
        }
        if t.requires_grad() && meta::is_leaf(&base) {
            return Err(runtime(
                "a view of a leaf Variable that requires grad is being used in an in-place operation.",
            ));
        }
        crate::copy_slices::check(&base, t)?;
        return Ok(Some(base));
    }
    check_not_leaf(t)?;
    Ok(None)
}

/// PyTorch's `handle_view_on_rebase` text for a view made under `no_grad`.
const NO_GRAD_VIEW: &str = "A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both the view and the inplace either both inside the no_grad block (if you don't want the inplace to be tracked) or both outside (if you want the inplace to be tracked).";

/// Makes the outputs of a view operator views of `base` (every floating-point or complex
/// output, whether or not anything requires grad, as PyTorch's `as_view`).
fn mark_views(stack: &Stack, nret: usize, base: &Tensor, grad_mode: bool) {
    for v in &stack[stack.len().saturating_sub(nret)..] {
        if let Some(out) = v
            .as_tensor()
            .and_then(opdispatch_dispatch::TensorRef::downcast::<Tensor>)
        {
            if meta::is_differentiable(&out) && out.impl_id() != base.impl_id() {
                meta::set_base(&out, base.clone(), grad_mode);
            }
        }
    }
}

/// The root base of a view operator's input (the input itself when it is no view).
fn root_base(t: &Tensor) -> Tensor {
    meta::base(t).unwrap_or_else(|| t.clone())
}

/// Runs the operator below autograd (PyTorch's `AutoDispatchBelowADInplaceOrView`; in-place
/// and view operators stop at ADInplaceOrView so version counters move).
fn call_below(
    op: &OperatorHandle,
    shape: Shape,
    ks: Option<DispatchKeySet>,
    stack: &mut Stack,
) -> Result<()> {
    let (keys, after) = if shape.inplace || shape.view {
        (AUTOGRAD_DISPATCH_KEYSET, AFTER_AUTOGRAD_KEYSET)
    } else {
        (
            AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW,
            AFTER_AD_INPLACE_OR_VIEW_KEYSET,
        )
    };
    let _guard = ExcludeDispatchKeyGuard::new(keys);
    match ks {
        // From the dispatcher: the key set it computed, masked below us (no second extraction).
        Some(ks) => op.redispatch_boxed(ks & after, stack),
        None => op.call_boxed(stack),
    }
}

/// [`call_below`], returning `self` for an in-place operator as torch's VariableType and
/// ADInplaceOrView kernels do, whatever ran below returned (a `__torch_dispatch__` handler may
/// hand back another object for the same data).
fn call_below_returning_self(
    op: &OperatorHandle,
    shape: Shape,
    ks: Option<DispatchKeySet>,
    stack: &mut Stack,
) -> Result<()> {
    if !shape.inplace || shape.nret != 1 {
        return call_below(op, shape, ks, stack);
    }
    let this = stack.get(stack.len().saturating_sub(shape.nargs)).cloned();
    call_below(op, shape, ks, stack)?;
    if let (Some(this @ IValue::Tensor(_)), Some(out)) = (this, stack.last_mut()) {
        *out = this;
    }
    Ok(())
}

fn autograd_kernel(
    formula: Option<&'static Formula>,
    shape: Shape,
    op: &OperatorHandle,
    ks: Option<DispatchKeySet>,
    stack: &mut Stack,
) -> Result<()> {
    let start = stack.len().saturating_sub(shape.nargs);
    if !is_grad_enabled() {
        // Nothing is recorded and no in-place check applies with grad mode off; views still
        // remember their base (so a later in-place write under grad mode can be refused).
        if shape.view && formula.is_some() {
            let base = tensor_args(&stack[start..])
                .first()
                .map(|(_, t)| root_base(t))
                .filter(meta::is_differentiable);
            call_below_returning_self(op, shape, ks, stack)?;
            if let Some(b) = base {
                mark_views(stack, shape.nret, &b, false);
            }
            return Ok(());
        }
        return call_below_returning_self(op, shape, ks, stack);
    }
    let tensors = tensor_args(&stack[start..]);
    let mut any = tensors.iter().any(|(_, t)| t.requires_grad());
    let mut rebase_base = None;
    if shape.inplace && any {
        if let Some((0, t)) = tensors.first() {
            if meta::is_differentiable(t) {
                rebase_base = check_inplace(t)?;
            } else {
                // Writing into an integer tensor records nothing (PyTorch's copy_ rule).
                any = false;
            }
        }
    }
    let base = if shape.view {
        tensors
            .first()
            .map(|(_, t)| root_base(t))
            .filter(meta::is_differentiable)
    } else {
        None
    };
    let Some(formula) = formula.filter(|_| any) else {
        call_below_returning_self(op, shape, ks, stack)?;
        if let (Some(b), true) = (&base, formula.is_some()) {
            mark_views(stack, shape.nret, b, true);
        }
        return Ok(());
    };
    let pending = Pending::new(formula, &tensors, shape.inplace)?;
    // Only calls with a non-tensor argument keep a list: `Ctx` reads a missing entry as `None`,
    // which is what a tensor position holds, so all-tensor calls (`mul`, `tanh`) allocate none.
    let has_other = stack[start..]
        .iter()
        .any(|a| !matches!(a, IValue::Tensor(_) | IValue::TensorList(_)));
    let args: Vec<IValue> = if has_other {
        stack[start..]
            .iter()
            .map(|a| match a {
                IValue::Tensor(_) | IValue::TensorList(_) => IValue::None,
                other => other.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    call_below_returning_self(op, shape, ks, stack)?;
    let outs_start = stack.len().saturating_sub(shape.nret);
    let outputs: SmallVec<[Tensor; 2]> = stack[outs_start..]
        .iter()
        .filter_map(|v| {
            v.as_tensor()
                .and_then(opdispatch_dispatch::TensorRef::downcast::<Tensor>)
        })
        .collect();
    pending.finish(args, &outputs, base, rebase_base);
    Ok(())
}

/// A node being recorded: what is gathered from the inputs before the operator runs below.
struct Pending {
    formula: &'static Formula,
    next: Vec<Edge>,
    inputs: Vec<TensorMeta>,
    saved: SavedVariables,
}

impl Pending {
    /// The inputs' gradient edges and metadata, and the inputs the formula saves.
    fn new(formula: &'static Formula, tensors: &[(usize, Tensor)], inplace: bool) -> Result<Self> {
        let mut next = Vec::with_capacity(tensors.len());
        next.extend(tensors.iter().map(|(_, t)| meta::gradient_edge(t)));
        let mut inputs = Vec::with_capacity(tensors.len());
        inputs.extend(tensors.iter().map(|(_, t)| TensorMeta::of(t)));
        let saved = SavedVariables::default();
        for &i in formula.save {
            if let Some((_, t)) = tensors.iter().find(|(j, _)| *j == i) {
                // An in-place operator overwrites `self`: keep its old value.
                let keep = if inplace && i == 0 {
                    let _g = ExcludeDispatchKeyGuard::new(
                        AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW,
                    );
                    crate::calls::clone(t)?
                } else {
                    t.clone()
                };
                saved.push(i, SavedVariable::input(&keep));
            }
        }
        Ok(Self {
            formula,
            next,
            inputs,
            saved,
        })
    }

    /// Makes the node and the outputs' history (`base`: the base of a view output; `rebase`:
    /// the base whose history an in-place write on its view replaces).
    fn finish(
        self,
        args: Vec<IValue>,
        outputs: &[Tensor],
        base: Option<Tensor>,
        rebase: Option<Tensor>,
    ) {
        let formula = self.formula;
        let node = Arc::new(FormulaNode {
            formula,
            core: NodeCore::new(self.next, outputs.iter().map(TensorMeta::of).collect()),
            inputs: self.inputs,
            args,
            saved: self.saved,
        });
        let dyn_node: Arc<dyn Node> = node.clone();
        if formula.save_result {
            if let Some(r) = outputs.first() {
                node.saved
                    .push(RESULT, SavedVariable::output(r, &dyn_node, 0));
            }
        }
        if formula.save_indices {
            if let Some(i) = outputs.get(1) {
                node.saved.push(INDICES, SavedVariable::input(i));
            }
        }
        for (nr, out) in outputs.iter().enumerate() {
            if meta::is_differentiable(out) {
                if let Some(b) = base.as_ref().filter(|b| b.impl_id() != out.impl_id()) {
                    meta::set_base(out, b.clone(), true);
                }
                meta::set_history(out, dyn_node.clone(), nr as u32);
            }
        }
        if let (Some(b), Some(view)) = (rebase, outputs.first()) {
            crate::copy_slices::rebase(&b, view, dyn_node);
        }
    }
}

/// Registers `aten`'s Autograd kernels and ADInplaceOrView kernels for the process.
pub(crate) fn register() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), opdispatch_dispatch::DispatchError>> =
        OnceLock::new();
    DONE.get_or_init(|| {
        let libs = build()?;
        // The aten library lives for the process, and so do its autograd kernels.
        std::mem::forget(libs);
        Ok(())
    })
    .clone()
}

fn shape_of(op: &OperatorHandle) -> Shape {
    let Some(schema) = op.schema() else {
        return Shape {
            inplace: false,
            view: false,
            nret: 1,
            nargs: op.num_arguments(),
        };
    };
    let inplace = schema
        .arguments
        .first()
        .and_then(|a| a.alias_info.as_ref())
        .is_some_and(|a| a.is_write);
    let view = !inplace
        && schema
            .returns
            .first()
            .and_then(|a| a.alias_info.as_ref())
            .is_some_and(|a| !a.is_write);
    Shape {
        inplace,
        view,
        nret: schema.returns.len(),
        nargs: schema.arguments.len(),
    }
}

fn build() -> Result<Vec<Library>> {
    let d = opdispatch_dispatch::Dispatcher::singleton();
    let mut ag = Library::new(
        LibraryKind::Impl,
        "aten",
        Some(DispatchKey::Autograd),
        file!(),
        line!(),
    )?;
    let mut inplace_or_view = Library::new(
        LibraryKind::Impl,
        "aten",
        Some(DispatchKey::ADInplaceOrView),
        file!(),
        line!(),
    )?;
    for (name, formula) in formulas::table() {
        let (base, overload) = name.split_once('.').unwrap_or((name, ""));
        let op = d.find_schema_or_throw(&format!("aten::{base}"), overload)?;
        let shape = shape_of(&op);
        let f = match (*name, formula) {
            ("add.Tensor", Some(_)) => CppFunction::typed(add_t as BinAlpha),
            ("sub.Tensor", Some(_)) => CppFunction::typed(sub_t as BinAlpha),
            ("mul.Tensor", Some(_)) => CppFunction::typed(mul_t as Bin),
            ("div.Tensor", Some(_)) => CppFunction::typed(div_t as Bin),
            (n, Some(_)) if typed_unary_kernel(n).is_some() => {
                CppFunction::typed(typed_unary_kernel(n).expect("checked"))
            }
            _ => boxed(*formula, shape),
        };
        ag.impl_(name, f)?;
        if shape.inplace {
            let nargs = shape.nargs;
            inplace_or_view.impl_(
                name,
                CppFunction::boxed(
                    move |op: &OperatorHandle, _ks: DispatchKeySet, stack: &mut Stack| {
                        bump_version_kernel(op, nargs, stack)
                    },
                ),
            )?;
        }
    }
    register_out_variants(&mut ag, &mut inplace_or_view)?;
    Ok(vec![ag, inplace_or_view])
}

/// The `out=` overloads (an `out` argument, no formula): torch's error when anything requires
/// grad, else straight below autograd; ADInplaceOrView bumps `out`'s version.
fn register_out_variants(ag: &mut Library, inplace_or_view: &mut Library) -> Result<()> {
    let d = opdispatch_dispatch::Dispatcher::singleton();
    let with_formula: std::collections::HashSet<&str> =
        formulas::table().iter().map(|(n, _)| *n).collect();
    for full in d.all_op_names() {
        let Some(name) = full.strip_prefix("aten::") else {
            continue;
        };
        if with_formula.contains(name) {
            continue;
        }
        let (base, overload) = name.split_once('.').unwrap_or((name, ""));
        let op = d.find_schema_or_throw(&format!("aten::{base}"), overload)?;
        let Some(pos) = op.schema().and_then(|s| {
            s.arguments
                .iter()
                .position(opdispatch_schema::Argument::is_out)
        }) else {
            continue;
        };
        let message = format!(
            "{base}(): functions with out=... arguments don't support automatic differentiation, but one of the arguments requires grad."
        );
        ag.impl_(
            name,
            CppFunction::boxed(
                move |op: &OperatorHandle, ks: DispatchKeySet, stack: &mut Stack| {
                    let start = stack.len().saturating_sub(op.num_arguments());
                    if is_grad_enabled()
                        && tensor_args(&stack[start..])
                            .iter()
                            .any(|(_, t)| t.requires_grad())
                    {
                        return Err(runtime(message.clone()));
                    }
                    let _below = ExcludeDispatchKeyGuard::new(AUTOGRAD_DISPATCH_KEYSET);
                    op.redispatch_boxed(ks & AFTER_AUTOGRAD_KEYSET, stack)
                },
            ),
        )?;
        inplace_or_view.impl_(
            name,
            CppFunction::boxed(
                move |op: &OperatorHandle, ks: DispatchKeySet, stack: &mut Stack| {
                    let start = stack.len().saturating_sub(op.num_arguments());
                    let out = stack
                        .get(start + pos)
                        .and_then(|v| v.as_tensor())
                        .and_then(opdispatch_dispatch::TensorRef::downcast::<Tensor>);
                    {
                        let _below = ExcludeDispatchKeyGuard::new(
                            AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW,
                        );
                        op.redispatch_boxed(ks & AFTER_AD_INPLACE_OR_VIEW_KEYSET, stack)?;
                    }
                    if let Some(t) = out {
                        t.bump_version();
                    }
                    Ok(())
                },
            ),
        )?;
    }
    Ok(())
}

fn boxed(formula: Option<&'static Formula>, shape: Shape) -> CppFunction {
    CppFunction::boxed(
        move |op: &OperatorHandle, ks: DispatchKeySet, stack: &mut Stack| {
            autograd_kernel(formula, shape, op, Some(ks), stack)
        },
    )
}

/// ADInplaceOrView for in-place operators: run below, then bump `self`'s version counter.
fn bump_version_kernel(op: &OperatorHandle, nargs: usize, stack: &mut Stack) -> Result<()> {
    let target = stack
        .get(stack.len().saturating_sub(nargs))
        .and_then(|v| v.as_tensor())
        .and_then(opdispatch_dispatch::TensorRef::downcast::<Tensor>);
    let this = stack.get(stack.len().saturating_sub(nargs)).cloned();
    {
        let _g = ExcludeDispatchKeyGuard::new(AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW);
        op.call_boxed(stack)?;
    }
    if let Some(t) = target {
        t.bump_version();
    }
    // `self` is what an in-place operator returns (see `call_below_returning_self`).
    if let (Some(this @ IValue::Tensor(_)), Some(out @ IValue::Tensor(_))) =
        (this, stack.last_mut())
    {
        *out = this;
    }
    Ok(())
}

// ---- typed fast paths for the hot binary operators ----

type BinAlpha = fn(Tensor, Tensor, Scalar) -> Result<Tensor>;
type Bin = fn(Tensor, Tensor) -> Result<Tensor>;

/// The formula of `name`, looked up once into `cell`.
fn formula_of(
    cell: &'static OnceLock<Option<&'static Formula>>,
    name: &'static str,
) -> Option<&'static Formula> {
    *cell.get_or_init(|| {
        formulas::table()
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, f)| *f)
    })
}

/// The extra argument of `add`/`sub` as a formula reads it (`Ctx::scalar(2)`); alpha 1, the
/// usual case, needs no list, since a missing entry reads as 1.
trait FormulaArgs {
    fn formula_args(&self) -> Vec<IValue>;
}
impl FormulaArgs for () {
    fn formula_args(&self) -> Vec<IValue> {
        Vec::new()
    }
}
impl FormulaArgs for (Scalar,) {
    fn formula_args(&self) -> Vec<IValue> {
        if matches!(self.0, Scalar::Int(1)) {
            Vec::new()
        } else {
            vec![IValue::None, IValue::None, self.0.into_ivalue()]
        }
    }
}

macro_rules! typed_binary {
    ($f:ident, $name:literal, $overload:literal, $full:literal, ($($extra:ident: $et:ty),*)) => {
        fn $f(a: Tensor, b: Tensor $(, $extra: $et)*) -> Result<Tensor> {
            static H: OnceLock<TypedOperatorHandle<fn(Tensor, Tensor $(, $et)*) -> Result<Tensor>>> =
                OnceLock::new();
            let h = crate::calls::typed_handle(&H, concat!("aten::", $name), $overload)?;
            let tls = opdispatch_dispatch::tls_local_dispatch_key_set();
            let ks = ((a.arg_key_set() | b.arg_key_set() $(| $extra.arg_key_set())* | tls.included)
                - tls.excluded)
                & AFTER_AD_INPLACE_OR_VIEW_KEYSET;
            static FORMULA: OnceLock<Option<&'static Formula>> = OnceLock::new();
            let formula = if is_grad_enabled() && (a.requires_grad() || b.requires_grad()) {
                formula_of(&FORMULA, $full)
            } else {
                None
            };
            let Some(formula) = formula else {
                // Nothing to record: straight to the keys below ADInplaceOrView. No TLS guard is
                // needed, since no kernel below can record anything for these inputs, and a
                // Python handler below excludes the keys above it itself.
                return h.redispatch(ks, a, b $(, $extra)*);
            };
            // Recording, typed end to end (no boxing of the arguments or the result).
            let args = ($($extra,)*).formula_args();
            let pending = Pending::new(formula, &[(0, a.clone()), (1, b.clone())], false)?;
            let out = {
                let _below =
                    ExcludeDispatchKeyGuard::new(AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW);
                h.redispatch(ks, a, b $(, $extra)*)?
            };
            pending.finish(args, std::slice::from_ref(&out), None, None);
            Ok(out)
        }
    };
}

/// The typed Autograd kernel of a unary operator (`Tensor self -> Tensor`): Python's
/// `od.tanh(x)` and the formulas' own calls stay unboxed, recording included.
macro_rules! typed_unary {
    ($($f:ident => $name:literal),* $(,)?) => {
        $(
            fn $f(a: Tensor) -> Result<Tensor> {
                static H: OnceLock<TypedOperatorHandle<Un>> = OnceLock::new();
                static FORMULA: OnceLock<Option<&'static Formula>> = OnceLock::new();
                let h = crate::calls::typed_handle(&H, concat!("aten::", $name), "")?;
                unary_kernel(h, &FORMULA, $name, a)
            }
        )*
        fn typed_unary_kernel(name: &str) -> Option<Un> {
            match name {
                $($name => Some($f as Un),)*
                _ => None,
            }
        }
    };
}

type Un = fn(Tensor) -> Result<Tensor>;

fn unary_kernel(
    h: &TypedOperatorHandle<Un>,
    cell: &'static OnceLock<Option<&'static Formula>>,
    name: &'static str,
    a: Tensor,
) -> Result<Tensor> {
    let tls = opdispatch_dispatch::tls_local_dispatch_key_set();
    let ks = ((a.arg_key_set() | tls.included) - tls.excluded) & AFTER_AD_INPLACE_OR_VIEW_KEYSET;
    let formula = if is_grad_enabled() && a.requires_grad() {
        formula_of(cell, name)
    } else {
        None
    };
    let Some(formula) = formula else {
        // As the binary kernels: nothing below can record for these inputs.
        return h.redispatch(ks, a);
    };
    let pending = Pending::new(formula, &[(0, a.clone())], false)?;
    let out = {
        let _below = ExcludeDispatchKeyGuard::new(AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW);
        h.redispatch(ks, a)?
    };
    pending.finish(Vec::new(), std::slice::from_ref(&out), None, None);
    Ok(out)
}

typed_unary! {
    neg_t => "neg", abs_t => "abs", exp_t => "exp", log_t => "log", sin_t => "sin",
    cos_t => "cos", sqrt_t => "sqrt", relu_t => "relu", sigmoid_t => "sigmoid",
    tanh_t => "tanh", reciprocal_t => "reciprocal",
}

typed_binary!(add_t, "add", "Tensor", "add.Tensor", (alpha: Scalar));
typed_binary!(sub_t, "sub", "Tensor", "sub.Tensor", (alpha: Scalar));
typed_binary!(mul_t, "mul", "Tensor", "mul.Tensor", ());
typed_binary!(div_t, "div", "Tensor", "div.Tensor", ());
