//! The aten library through the dispatcher: registration, schemas, boxed and typed calls on
//! CPU and Meta tensors, composite decompositions, factories without tensor arguments, error
//! mapping and the missing-backend error.

use std::sync::Arc;

use opdispatch_aten::{self as aten, AtenError, OUT_VARIANTS, SCHEMAS};
use opdispatch_dispatch::{
    DispatchError, DispatchKey, DispatchKeySet, Dispatcher, IValue, IncludeDispatchKeyGuard,
    KernelArg, OperatorHandle, Result, TensorRef,
};
use opdispatch_tensor::{Device, Scalar, ScalarType, Tensor, TensorError};

fn op(name: &str, overload: &str) -> OperatorHandle {
    aten::register();
    Dispatcher::singleton()
        .find_schema_or_throw(&format!("aten::{name}"), overload)
        .unwrap()
}

fn split(qualified: &str) -> (&str, &str) {
    qualified.split_once('.').unwrap_or((qualified, ""))
}

fn call(name: &str, args: Vec<IValue>) -> Result<Vec<IValue>> {
    let (n, o) = split(name);
    let mut stack: opdispatch_dispatch::Stack = args.into_iter().collect();
    op(n, o).call_boxed(&mut stack)?;
    Ok(stack.into_vec())
}

fn call_t(name: &str, args: Vec<IValue>) -> Tensor {
    let mut out = call(name, args).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(out.len(), 1, "{name} returns one value");
    Tensor::from_ivalue(out.pop().unwrap()).unwrap()
}

fn t(x: &Tensor) -> IValue {
    x.clone().into_ivalue()
}

fn f32s(vals: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(vals.to_vec(), shape).unwrap()
}

fn dev(d: &str) -> IValue {
    IValue::Device(Arc::from(d))
}

fn none(n: usize) -> impl Iterator<Item = IValue> {
    std::iter::repeat_with(|| IValue::None).take(n)
}

#[test]
fn register_is_idempotent_and_defines_every_schema() {
    let a = aten::register();
    let b = aten::try_register().unwrap();
    assert!(std::ptr::eq(a, b));
    assert_eq!(a.op_names().len(), SCHEMAS.len() + OUT_VARIANTS.len());
    // DEF + CPU + CUDA + Meta + CompositeImplicitAutograd + CompositeExplicitAutograd.
    assert_eq!(a.libraries().len(), 6);
    let all = Dispatcher::singleton().all_op_names();
    for n in a.op_names() {
        assert!(all.contains(n), "{n} registered");
    }
    // Registering again from several threads still yields the one library.
    let ptrs: Vec<usize> = (0..4)
        .map(|_| std::thread::spawn(|| aten::register() as *const _ as usize))
        .map(|h| h.join().unwrap())
        .collect();
    assert!(ptrs.iter().all(|&p| p == a as *const _ as usize));
}

#[test]
fn printed_schemas_equal_pytorch() {
    aten::register();
    for s in SCHEMAS {
        let name = &s[..s.find('(').unwrap()];
        let (n, o) = split(name);
        let printed = op(n, o).schema().unwrap().to_string();
        assert_eq!(printed, format!("aten::{s}"));
    }
}

/// Every schema is one PyTorch 2.15 registers, as recorded by the conformance suite (checked
/// when the suite is present on this machine).
#[test]
fn schemas_appear_in_the_pytorch_dump() {
    let dir = std::path::Path::new("/work/shared/conformance/suites/schema");
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("conformance suite not present; skipping");
        return;
    };
    let mut all = String::new();
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("roundtrip_") {
            all.push_str(&std::fs::read_to_string(e.path()).unwrap());
        }
    }
    for s in SCHEMAS {
        let quoted = format!("\"schema\": \"{{NS}}::{s}\"");
        assert!(all.contains(&quoted), "not a PyTorch schema: {s}");
    }
}

#[test]
fn computed_tables_show_the_registered_kernels() {
    let add = op("add", "Tensor");
    let table = add.dump_computed_table();
    assert!(
        table.contains("\nCPU: registered at ") || table.starts_with("CPU: registered at "),
        "{table}"
    );
    let line = |key: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no {key} line in\n{table}"))
            .to_owned()
    };
    assert!(line("CPU").contains("opdispatch-aten/src/") && line("CPU").ends_with("[kernel]"));
    assert!(line("Meta").contains("opdispatch-aten/src/") && line("Meta").ends_with("[kernel]"));
    assert!(
        line("CUDA").contains("opdispatch-aten/src/cuda/") && line("CUDA").ends_with("[kernel]")
    );
    add.check_invariants().unwrap();

    // Composite kernels fill CPU, Meta and the autograd keys.
    let matmul = op("matmul", "").dump_computed_table();
    for key in ["CPU", "Meta", "AutogradCPU"] {
        let l = matmul
            .lines()
            .find(|l| l.starts_with(&format!("{key}: ")))
            .unwrap();
        assert!(l.ends_with("[math kernel]"), "{l}");
    }
    // Factories fill Undefined through CompositeExplicitAutograd.
    let zeros = op("zeros", "").dump_computed_table();
    let l = zeros
        .lines()
        .find(|l| l.starts_with("Undefined: "))
        .unwrap();
    assert!(l.ends_with("[default backend kernel]"), "{l}");

    for name in aten::register().op_names() {
        let (n, o) = split(name.strip_prefix("aten::").unwrap());
        op(n, o).check_invariants().unwrap();
    }
}

#[test]
fn boxed_add_on_cpu() {
    let a = f32s(&[1., 2., 3.], &[3]);
    let b = f32s(&[10., 20., 30.], &[3]);
    let r = call_t("add.Tensor", vec![t(&a), t(&b), IValue::Int(2)]);
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![21., 42., 63.]);
    let r = call_t(
        "add.Scalar",
        vec![t(&a), IValue::Double(0.5), IValue::Int(1)],
    );
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![1.5, 2.5, 3.5]);
    assert_eq!(r.dtype(), ScalarType::Float32);
    let r = call_t("sub.Tensor", vec![t(&b), t(&a), IValue::Int(1)]);
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![9., 18., 27.]);
    let r = call_t("mul.Scalar", vec![t(&a), IValue::Int(3)]);
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![3., 6., 9.]);
    let r = call_t("lt.Scalar", vec![t(&a), IValue::Double(2.5)]);
    assert_eq!(r.to_vec_bool().unwrap(), vec![true, true, false]);
    // Integer tensor with an int scalar stays integral; true division goes to float.
    let i = Tensor::from_vec(vec![1i64, 2, 3], &[3]).unwrap();
    let r = call_t("add.Scalar", vec![t(&i), IValue::Int(1), IValue::Int(1)]);
    assert_eq!(
        (r.dtype(), r.to_vec_i64().unwrap()),
        (ScalarType::Int64, vec![2, 3, 4])
    );
    let r = call_t("div.Scalar", vec![t(&i), IValue::Int(2)]);
    assert_eq!(
        (r.dtype(), r.to_vec::<f32>().unwrap()),
        (ScalarType::Float32, vec![0.5, 1.0, 1.5])
    );
}

#[test]
fn typed_calls() {
    let a = f32s(&[1., -2., 3., -4.], &[2, 2]);
    let b = f32s(&[1., 1., 1., 1.], &[2, 2]);
    let add = op("add", "Tensor")
        .typed::<fn(Tensor, Tensor, Scalar) -> Result<Tensor>>()
        .unwrap();
    let r = add.call(a.clone(), b.clone(), Scalar::Int(3)).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![4., 1., 6., -1.]);

    let neg = op("neg", "")
        .typed::<fn(Tensor) -> Result<Tensor>>()
        .unwrap();
    assert_eq!(
        neg.call(a.clone()).unwrap().to_vec::<f32>().unwrap(),
        vec![-1., 2., -3., 4.]
    );

    let max_dim = op("max", "dim")
        .typed::<fn(Tensor, i64, bool) -> Result<(Tensor, Tensor)>>()
        .unwrap();
    let (v, i) = max_dim.call(a.clone(), 1, false).unwrap();
    assert_eq!(v.to_vec::<f32>().unwrap(), vec![1., 3.]);
    assert_eq!(i.to_vec_i64().unwrap(), vec![0, 0]);

    let cat = op("cat", "")
        .typed::<fn(Vec<TensorRef>, i64) -> Result<Tensor>>()
        .unwrap();
    let r = cat
        .call(
            vec![TensorRef::new(a.clone()), TensorRef::new(b.clone())],
            0,
        )
        .unwrap();
    assert_eq!(r.sizes(), &[4, 2]);

    let view = op("view", "")
        .typed::<fn(Tensor, Vec<i64>) -> Result<Tensor>>()
        .unwrap();
    let r = view.call(a.clone(), vec![4]).unwrap();
    assert_eq!(r.sizes(), &[4]);
    assert_eq!(r.data_ptr(), a.data_ptr());

    // A composite kernel through a typed handle, returning a Scalar.
    let item = op("item", "")
        .typed::<fn(Tensor) -> Result<Scalar>>()
        .unwrap();
    let s = Tensor::scalar_tensor(Scalar::Float(2.5), ScalarType::Float64, Device::Cpu).unwrap();
    assert_eq!(item.call(s).unwrap(), Scalar::Float(2.5));

    let fill = op("fill_", "Scalar")
        .typed::<fn(Tensor, Scalar) -> Result<Tensor>>()
        .unwrap();
    let z = Tensor::zeros(&[2], ScalarType::Int32, Device::Cpu).unwrap();
    let r = fill.call(z.clone(), Scalar::Int(7)).unwrap();
    assert_eq!(r.data_ptr(), z.data_ptr());
    assert_eq!(z.to_vec_i64().unwrap(), vec![7, 7]);

    // Meta through the typed path.
    let m = Tensor::empty(&[5, 3], ScalarType::Float32, Device::Meta).unwrap();
    let mm = op("mm", "")
        .typed::<fn(Tensor, Tensor) -> Result<Tensor>>()
        .unwrap();
    let r = mm
        .call(
            m.clone(),
            Tensor::empty(&[3, 7], ScalarType::Float32, Device::Meta).unwrap(),
        )
        .unwrap();
    assert_eq!((r.sizes(), r.device()), (&[5usize, 7][..], Device::Meta));

    // Wrong signature.
    let Err(err) = op("neg", "").typed::<fn(Tensor, Tensor) -> Result<Tensor>>() else {
        panic!("a wrong signature must be refused")
    };
    assert!(
        err.to_string()
            .contains("Tried to access or call an operator with a wrong signature"),
        "{err}"
    );
}

/// One boxed call per operator (all arguments given, as a boxed caller must), once on CPU and
/// once on Meta tensors: Meta results must have the CPU results' sizes and dtypes.
fn sample_calls(d: Device) -> Vec<(&'static str, Vec<IValue>)> {
    let mk = |vals: &[f32], shape: &[usize]| match d {
        Device::Meta => Tensor::empty(shape, ScalarType::Float32, Device::Meta).unwrap(),
        _ => f32s(vals, shape),
    };
    let x = mk(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
    let y = mk(&[6., 5., 4., 3., 2., 1.], &[2, 3]);
    let row = mk(&[1., 2., 3.], &[1, 3]);
    let xt = mk(&[1., 2., 3., 4., 5., 6.], &[3, 2]);
    let b1 = mk(&[1.; 12], &[2, 2, 3]);
    let b2 = mk(&[1.; 24], &[2, 3, 4]);
    let v = mk(&[1., 2., 3.], &[3]);
    let cond = match d {
        Device::Meta => Tensor::empty(&[2, 3], ScalarType::Bool, Device::Meta).unwrap(),
        _ => Tensor::from_vec(vec![true, false, true, false, true, false], &[2, 3]).unwrap(),
    };
    let fresh = || mk(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
    let ds: &str = if d == Device::Meta { "meta" } else { "cpu" };
    let il = |v: &[i64]| IValue::IntList(v.to_vec());
    let factory_tail = || [IValue::None, IValue::None, dev(ds), IValue::None];
    let mut calls: Vec<(&'static str, Vec<IValue>)> = vec![
        (
            "empty.memory_format",
            [il(&[2, 3])]
                .into_iter()
                .chain(factory_tail())
                .chain(none(1))
                .collect(),
        ),
        (
            "zeros",
            [il(&[2, 3])].into_iter().chain(factory_tail()).collect(),
        ),
        (
            "ones",
            [il(&[4])].into_iter().chain(factory_tail()).collect(),
        ),
        (
            "full",
            [il(&[2]), IValue::Int(7)]
                .into_iter()
                .chain(factory_tail())
                .collect(),
        ),
        (
            "scalar_tensor",
            [IValue::Int(3)].into_iter().chain(factory_tail()).collect(),
        ),
        (
            "arange",
            [IValue::Int(5)].into_iter().chain(factory_tail()).collect(),
        ),
        (
            "arange.start",
            [IValue::Int(1), IValue::Int(5)]
                .into_iter()
                .chain(factory_tail())
                .collect(),
        ),
        (
            "arange.start_step",
            [IValue::Double(0.), IValue::Double(1.), IValue::Double(0.25)]
                .into_iter()
                .chain(factory_tail())
                .collect(),
        ),
        ("empty_like", [t(&x)].into_iter().chain(none(5)).collect()),
        (
            "new_empty_strided",
            [
                t(&x),
                IValue::IntList(vec![2, 3]),
                IValue::IntList(vec![1, 2]),
            ]
            .into_iter()
            .chain(none(4))
            .collect(),
        ),
        (
            "zeros_like",
            [t(&x), IValue::Int(4)].into_iter().chain(none(4)).collect(),
        ),
        ("ones_like", [t(&x)].into_iter().chain(none(5)).collect()),
        (
            "full_like",
            [t(&x), IValue::Int(2)].into_iter().chain(none(5)).collect(),
        ),
        ("add.Tensor", vec![t(&x), t(&y), IValue::Int(1)]),
        (
            "add.Scalar",
            vec![t(&x), IValue::Double(2.), IValue::Int(1)],
        ),
        ("sub.Tensor", vec![t(&x), t(&row), IValue::Int(2)]),
        ("sub.Scalar", vec![t(&x), IValue::Int(2), IValue::Int(1)]),
        ("rsub.Tensor", vec![t(&x), t(&row), IValue::Int(2)]),
        ("rsub.Scalar", vec![t(&x), IValue::Int(2), IValue::Int(1)]),
        ("mul.Tensor", vec![t(&x), t(&y)]),
        ("mul.Scalar", vec![t(&x), IValue::Int(2)]),
        ("div.Tensor", vec![t(&x), t(&y)]),
        ("div.Scalar", vec![t(&x), IValue::Int(2)]),
        ("pow.Tensor_Tensor", vec![t(&x), t(&y)]),
        ("pow.Tensor_Scalar", vec![t(&x), IValue::Int(2)]),
        ("pow.Scalar", vec![IValue::Double(2.0), t(&x)]),
        ("maximum", vec![t(&x), t(&y)]),
        ("minimum", vec![t(&x), t(&y)]),
        ("add_.Tensor", vec![t(&fresh()), t(&y), IValue::Int(1)]),
        ("sub_.Tensor", vec![t(&fresh()), t(&row), IValue::Int(1)]),
        ("mul_.Tensor", vec![t(&fresh()), t(&y)]),
        ("div_.Tensor", vec![t(&fresh()), t(&y)]),
        ("where.self", vec![t(&cond), t(&x), t(&y)]),
        ("tanh_backward", vec![t(&x), t(&y)]),
        (
            "where.ScalarOther",
            vec![t(&cond), t(&x), IValue::Double(0.)],
        ),
        (
            "where.ScalarSelf",
            vec![t(&cond), IValue::Double(0.), t(&x)],
        ),
        (
            "where.Scalar",
            vec![t(&cond), IValue::Double(1.), IValue::Double(0.)],
        ),
        ("sum", vec![t(&x), IValue::None]),
        (
            "sum.dim_IntList",
            vec![t(&x), il(&[1]), IValue::Bool(false), IValue::None],
        ),
        ("mean", vec![t(&x), IValue::Int(7)]),
        (
            "mean.dim",
            vec![t(&x), il(&[0]), IValue::Bool(true), IValue::None],
        ),
        ("max", vec![t(&x)]),
        ("max.dim", vec![t(&x), IValue::Int(1), IValue::Bool(false)]),
        ("min", vec![t(&x)]),
        ("min.dim", vec![t(&x), IValue::Int(0), IValue::Bool(true)]),
        ("argmax", vec![t(&x), IValue::None, IValue::Bool(false)]),
        ("argmin", vec![t(&x), IValue::Int(1), IValue::Bool(true)]),
        ("matmul", vec![t(&x), t(&xt)]),
        ("mm", vec![t(&x), t(&xt)]),
        ("bmm", vec![t(&b1), t(&b2)]),
        ("dot", vec![t(&v), t(&v)]),
        ("mv", vec![t(&x), t(&v)]),
        ("view", vec![t(&x), il(&[3, 2])]),
        ("reshape", vec![t(&x), il(&[-1])]),
        ("_unsafe_view", vec![t(&x), il(&[3, 2])]),
        ("_reshape_alias", vec![t(&x), il(&[3, 2]), il(&[1, 3])]),
        ("view_as", vec![t(&x), t(&xt)]),
        ("numpy_T", vec![t(&x)]),
        ("mT", vec![t(&x)]),
        (
            "flatten.using_ints",
            vec![t(&x), IValue::Int(0), IValue::Int(-1)],
        ),
        ("transpose.int", vec![t(&x), IValue::Int(0), IValue::Int(1)]),
        ("t", vec![t(&x)]),
        ("permute", vec![t(&x), il(&[1, 0])]),
        ("squeeze", vec![t(&row)]),
        ("squeeze.dim", vec![t(&row), IValue::Int(0)]),
        ("unsqueeze", vec![t(&x), IValue::Int(-1)]),
        ("expand", vec![t(&row), il(&[4, 3]), IValue::Bool(false)]),
        ("select.int", vec![t(&x), IValue::Int(0), IValue::Int(1)]),
        (
            "slice.Tensor",
            vec![
                t(&x),
                IValue::Int(1),
                IValue::Int(0),
                IValue::None,
                IValue::Int(2),
            ],
        ),
        (
            "narrow",
            vec![t(&x), IValue::Int(1), IValue::Int(1), IValue::Int(2)],
        ),
        ("alias", vec![t(&x)]),
        ("detach", vec![t(&x)]),
        ("contiguous", vec![t(&x), IValue::Int(0)]),
        ("clone", vec![t(&x), IValue::None]),
        ("copy_", vec![t(&fresh()), t(&row), IValue::Bool(false)]),
        ("fill_.Scalar", vec![t(&fresh()), IValue::Int(3)]),
        ("fill_.Tensor", vec![t(&fresh()), t(&mk(&[3.], &[]))]),
        ("zero_", vec![t(&fresh())]),
        (
            "to.dtype",
            vec![
                t(&x),
                IValue::Int(7),
                IValue::Bool(false),
                IValue::Bool(false),
                IValue::None,
            ],
        ),
        (
            "_to_copy",
            [t(&x), IValue::Int(4)]
                .into_iter()
                .chain(none(3))
                .chain([IValue::Bool(false), IValue::None])
                .collect(),
        ),
        (
            "cat",
            vec![
                IValue::TensorList(vec![TensorRef::new(x.clone()), TensorRef::new(y.clone())]),
                IValue::Int(0),
            ],
        ),
        (
            "stack",
            vec![
                IValue::TensorList(vec![TensorRef::new(x.clone()), TensorRef::new(y.clone())]),
                IValue::Int(1),
            ],
        ),
        (
            "rand",
            [il(&[2, 3])].into_iter().chain(factory_tail()).collect(),
        ),
        (
            "randn",
            [il(&[2, 3])].into_iter().chain(factory_tail()).collect(),
        ),
        (
            "randint",
            [
                IValue::Int(5),
                il(&[2, 3]),
                IValue::Int(4),
                IValue::None,
                dev(ds),
                IValue::None,
            ]
            .into(),
        ),
        (
            "randint.low",
            [
                IValue::Int(1),
                IValue::Int(5),
                il(&[2, 3]),
                IValue::Int(4),
                IValue::None,
                dev(ds),
                IValue::None,
            ]
            .into(),
        ),
        ("rand_like", [t(&x)].into_iter().chain(none(5)).collect()),
        ("randn_like", [t(&x)].into_iter().chain(none(5)).collect()),
        (
            "uniform_",
            vec![
                t(&fresh()),
                IValue::Double(0.0),
                IValue::Double(1.0),
                IValue::None,
            ],
        ),
        (
            "normal_",
            vec![
                t(&fresh()),
                IValue::Double(0.0),
                IValue::Double(1.0),
                IValue::None,
            ],
        ),
        (
            "random_.from",
            vec![t(&fresh()), IValue::Int(0), IValue::Int(10), IValue::None],
        ),
        ("lift_fresh", vec![t(&fresh())]),
    ];
    for name in [
        "neg",
        "abs",
        "exp",
        "log",
        "sin",
        "cos",
        "sqrt",
        "relu",
        "sigmoid",
        "tanh",
        "reciprocal",
    ] {
        calls.push((name, vec![t(&x)]));
    }
    for cmp in ["eq", "ne", "lt", "le", "gt", "ge"] {
        let tn: &'static str = Box::leak(format!("{cmp}.Tensor").into_boxed_str());
        let sn: &'static str = Box::leak(format!("{cmp}.Scalar").into_boxed_str());
        calls.push((tn, vec![t(&x), t(&y)]));
        calls.push((sn, vec![t(&x), IValue::Double(3.)]));
    }
    calls.extend(more_sample_calls(d));
    calls
}

/// Operators without a sample call (they need data: Meta has none).
const DATA_ONLY: &[&str] = &["item", "_local_scalar_dense"];

#[test]
fn every_op_runs_on_cpu_and_meta_with_matching_metadata() {
    aten::register();
    let cpu = sample_calls(Device::Cpu);
    let meta = sample_calls(Device::Meta);
    let covered: Vec<String> = cpu.iter().map(|(n, _)| format!("aten::{n}")).collect();
    let outs: Vec<&str> = OUT_VARIANTS
        .iter()
        .map(|(s, _, _)| s.split('(').next().unwrap())
        .collect();
    for n in aten::register().op_names() {
        let bare = n.strip_prefix("aten::").unwrap();
        assert!(
            covered.contains(n) || DATA_ONLY.contains(&bare) || outs.contains(&bare),
            "no sample call for {n}"
        );
    }
    for ((name, cargs), (_, margs)) in cpu.into_iter().zip(meta) {
        let c = flat_lists(call(name, cargs).unwrap_or_else(|e| panic!("{name} on cpu: {e}")));
        let m = flat_lists(call(name, margs).unwrap_or_else(|e| panic!("{name} on meta: {e}")));
        assert_eq!(c.len(), m.len(), "{name}");
        for (cv, mv) in c.into_iter().zip(m) {
            let (ct, mt) = (
                Tensor::from_ivalue(cv).unwrap(),
                Tensor::from_ivalue(mv).unwrap(),
            );
            assert_eq!(ct.sizes(), mt.sizes(), "{name} sizes");
            assert_eq!(ct.dtype(), mt.dtype(), "{name} dtype");
            assert_eq!(ct.device(), Device::Cpu, "{name} cpu device");
            assert_eq!(mt.device(), Device::Meta, "{name} meta device");
        }
    }
}

#[test]
fn cpu_values() {
    let x = f32s(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
    let xt = f32s(&[1., 0., 0., 1., 1., 1.], &[3, 2]);
    let r = call_t("matmul", vec![t(&x), t(&xt)]);
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![4., 5., 10., 11.]);
    let r = call_t(
        "sum.dim_IntList",
        vec![
            t(&x),
            IValue::IntList(vec![1]),
            IValue::Bool(true),
            IValue::None,
        ],
    );
    assert_eq!(
        (r.sizes(), r.to_vec::<f32>().unwrap()),
        (&[2usize, 1][..], vec![6., 15.])
    );
    let r = call_t("sum", vec![t(&x), IValue::Int(7)]);
    assert_eq!(
        (r.dtype(), r.to_vec::<f64>().unwrap()),
        (ScalarType::Float64, vec![21.])
    );
    let r = call_t(
        "mean.dim",
        vec![
            t(&x),
            IValue::IntList(vec![0]),
            IValue::Bool(false),
            IValue::None,
        ],
    );
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![2.5, 3.5, 4.5]);
    let r = call_t("argmax", vec![t(&x), IValue::None, IValue::Bool(false)]);
    assert_eq!((r.sizes(), r.to_vec_i64().unwrap()), (&[][..], vec![5]));
    let mut out = call("min.dim", vec![t(&x), IValue::Int(1), IValue::Bool(false)]).unwrap();
    let idx = Tensor::from_ivalue(out.pop().unwrap()).unwrap();
    let vals = Tensor::from_ivalue(out.pop().unwrap()).unwrap();
    assert_eq!(
        (vals.to_vec::<f32>().unwrap(), idx.to_vec_i64().unwrap()),
        (vec![1., 4.], vec![0, 0])
    );
    let r = call_t(
        "slice.Tensor",
        vec![
            t(&x),
            IValue::Int(1),
            IValue::None,
            IValue::None,
            IValue::Int(2),
        ],
    );
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![1., 3., 4., 6.]);
    let r = call_t("select.int", vec![t(&x), IValue::Int(1), IValue::Int(-1)]);
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![3., 6.]);
    let r = call_t(
        "stack",
        vec![
            IValue::TensorList(vec![TensorRef::new(x.clone()), TensorRef::new(x.clone())]),
            IValue::Int(0),
        ],
    );
    assert_eq!(r.sizes(), &[2, 2, 3]);
    let cond = Tensor::from_vec(vec![true, false, true, false, true, false], &[2, 3]).unwrap();
    let r = call_t(
        "where.ScalarOther",
        vec![t(&cond), t(&x), IValue::Double(0.)],
    );
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![1., 0., 3., 0., 5., 0.]);
    let r = call_t(
        "where.ScalarSelf",
        vec![t(&cond), IValue::Double(-1.), t(&x)],
    );
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![-1., 2., -1., 4., -1., 6.]);
    let r = call_t(
        "where.Scalar",
        vec![t(&cond), IValue::Double(1.), IValue::Double(0.)],
    );
    assert_eq!(r.dtype(), ScalarType::Float32);
    let r = call_t("relu", vec![t(&f32s(&[-1., 2.], &[2]))]);
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![0., 2.]);
    // copy_ returns self, broadcasting and converting.
    let dst = Tensor::zeros(&[2, 2], ScalarType::Int64, Device::Cpu).unwrap();
    let r = call_t(
        "copy_",
        vec![t(&dst), t(&f32s(&[1.7, 2.2], &[2])), IValue::Bool(false)],
    );
    assert_eq!(r.data_ptr(), dst.data_ptr());
    assert_eq!(dst.to_vec_i64().unwrap(), vec![1, 2, 1, 2]);
    let r = call_t("add_.Tensor", vec![t(&dst), t(&dst), IValue::Int(1)]);
    assert_eq!(
        (r.data_ptr(), dst.to_vec_i64().unwrap()),
        (dst.data_ptr(), vec![2, 4, 2, 4])
    );
}

#[test]
fn factories_without_tensor_arguments() {
    let z = call_t(
        "zeros",
        vec![
            IValue::IntList(vec![2, 2]),
            IValue::None,
            IValue::None,
            IValue::None,
            IValue::None,
        ],
    );
    assert_eq!(
        (z.sizes(), z.dtype(), z.device()),
        (&[2usize, 2][..], ScalarType::Float32, Device::Cpu)
    );
    assert_eq!(z.to_vec::<f32>().unwrap(), vec![0.; 4]);
    let o = call_t(
        "ones",
        vec![
            IValue::IntList(vec![3]),
            IValue::Int(4),
            IValue::None,
            dev("cpu"),
            IValue::Bool(false),
        ],
    );
    assert_eq!(
        (o.dtype(), o.to_vec_i64().unwrap()),
        (ScalarType::Int64, vec![1, 1, 1])
    );
    // full infers its dtype from the fill value.
    for (v, want) in [
        (IValue::Int(3), ScalarType::Int64),
        (IValue::Double(3.), ScalarType::Float32),
        (IValue::Bool(true), ScalarType::Bool),
    ] {
        let f = call_t(
            "full",
            [IValue::IntList(vec![2]), v]
                .into_iter()
                .chain(none(4))
                .collect(),
        );
        assert_eq!(f.dtype(), want);
    }
    let a = call_t(
        "arange",
        [IValue::Int(4)].into_iter().chain(none(4)).collect(),
    );
    assert_eq!(
        (a.dtype(), a.to_vec_i64().unwrap()),
        (ScalarType::Int64, vec![0, 1, 2, 3])
    );
    let a = call_t(
        "arange.start_step",
        [IValue::Int(1), IValue::Double(2.), IValue::Double(0.25)]
            .into_iter()
            .chain(none(4))
            .collect(),
    );
    assert_eq!(a.to_vec::<f32>().unwrap(), vec![1., 1.25, 1.5, 1.75]);
    let m = call_t(
        "empty.memory_format",
        vec![
            IValue::IntList(vec![5, 0]),
            IValue::Int(11),
            IValue::None,
            dev("meta"),
            IValue::None,
            IValue::Int(0),
        ],
    );
    assert_eq!(
        (m.sizes(), m.dtype(), m.device()),
        (&[5usize, 0][..], ScalarType::Bool, Device::Meta)
    );

    // A factory call dispatches on Undefined (BackendSelect falls through).
    let zeros = op("zeros", "");
    let stack = vec![
        IValue::IntList(vec![1]),
        IValue::None,
        IValue::None,
        IValue::None,
        IValue::None,
    ];
    assert!(zeros.key_set_for_boxed_call(&stack).is_empty());

    let err = call(
        "zeros",
        vec![
            IValue::IntList(vec![2, -1]),
            IValue::None,
            IValue::None,
            IValue::None,
            IValue::None,
        ],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Trying to create tensor with negative dimension -1: [2, -1]"
    );
    let err = call(
        "zeros",
        vec![
            IValue::IntList(vec![1]),
            IValue::Int(10),
            IValue::None,
            IValue::None,
            IValue::None,
        ],
    )
    .unwrap_err();
    assert!(err.to_string().contains("ComplexDouble"), "{err}");
}

#[test]
fn composite_decompositions() {
    let x = f32s(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
    let xt = call_t("transpose.int", vec![t(&x), IValue::Int(0), IValue::Int(1)]);
    assert!(!xt.is_contiguous());
    // reshape of a non-viewable tensor copies; of a viewable one it aliases.
    let r = call_t("reshape", vec![t(&xt), IValue::IntList(vec![6])]);
    assert_ne!(r.data_ptr(), x.data_ptr());
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![1., 4., 2., 5., 3., 6.]);
    let r = call_t("reshape", vec![t(&x), IValue::IntList(vec![3, -1])]);
    assert_eq!((r.sizes(), r.data_ptr()), (&[3usize, 2][..], x.data_ptr()));
    // contiguous: same handle when already contiguous, else a copy.
    let c = call_t("contiguous", vec![t(&x), IValue::Int(0)]);
    assert!(Tensor::ptr_eq(&c, &x));
    let c = call_t("contiguous", vec![t(&xt), IValue::Int(0)]);
    assert!(c.is_contiguous() && c.data_ptr() != x.data_ptr());
    // to.dtype: same handle when nothing changes (and copy=False), else _to_copy.
    let same = call_t(
        "to.dtype",
        vec![
            t(&x),
            IValue::Int(6),
            IValue::Bool(false),
            IValue::Bool(false),
            IValue::None,
        ],
    );
    assert!(Tensor::ptr_eq(&same, &x));
    let copied = call_t(
        "to.dtype",
        vec![
            t(&x),
            IValue::Int(6),
            IValue::Bool(false),
            IValue::Bool(true),
            IValue::None,
        ],
    );
    assert!(!Tensor::ptr_eq(&copied, &x) && copied.data_ptr() != x.data_ptr());
    let d = call_t(
        "to.dtype",
        vec![
            t(&x),
            IValue::Int(3),
            IValue::Bool(false),
            IValue::Bool(false),
            IValue::None,
        ],
    );
    assert_eq!(
        (d.dtype(), d.to_vec_i64().unwrap()),
        (ScalarType::Int32, vec![1, 2, 3, 4, 5, 6])
    );
    // _to_copy moves CPU data onto Meta.
    let m = call_t(
        "_to_copy",
        [
            t(&x),
            IValue::None,
            IValue::None,
            dev("meta"),
            IValue::None,
            IValue::Bool(false),
            IValue::None,
        ]
        .into(),
    );
    assert_eq!((m.device(), m.sizes()), (Device::Meta, x.sizes()));
    // item -> _local_scalar_dense.
    let s = Tensor::from_vec(vec![42i64], &[1]).unwrap();
    let out = call("item", vec![t(&s)]).unwrap();
    assert!(matches!(out[..], [IValue::Int(42)]));
    let m = Tensor::empty(&[], ScalarType::Float32, Device::Meta).unwrap();
    let err = call("item", vec![t(&m)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Tensor.item() cannot be called on meta tensors"
    );
}

#[test]
fn tensor_errors_arrive_as_aten_errors() {
    let a = f32s(&[1., 2., 3.], &[3]);
    let b = f32s(&[1., 2.], &[2]);
    let err = call("add.Tensor", vec![t(&a), t(&b), IValue::Int(1)]).unwrap_err();
    assert!(matches!(err, DispatchError::External(_)));
    assert_eq!(
        AtenError::from_dispatch_error(&err),
        Some(&TensorError::BroadcastMismatch { a: 3, b: 2, dim: 0 })
    );
    assert_eq!(
        err.to_string(),
        "The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 0"
    );
    let DispatchError::External(inner) = &err else {
        unreachable!()
    };
    assert!(inner.downcast_ref::<AtenError>().is_some());

    // Same on Meta: shape checks run without data.
    let ma = Tensor::empty(&[3], ScalarType::Float32, Device::Meta).unwrap();
    let mb = Tensor::empty(&[2], ScalarType::Float32, Device::Meta).unwrap();
    let err = call("mul.Tensor", vec![t(&ma), t(&mb)]).unwrap_err();
    assert!(matches!(
        AtenError::from_dispatch_error(&err),
        Some(TensorError::BroadcastMismatch { .. })
    ));

    let err = call("transpose.int", vec![t(&a), IValue::Int(0), IValue::Int(3)]).unwrap_err();
    assert!(
        matches!(
            AtenError::from_dispatch_error(&err),
            Some(TensorError::DimOutOfRange { .. })
        ),
        "{err}"
    );

    // Wrong argument types are TypeErrors from the boxed wrapper.
    let err = call("mul.Scalar", vec![t(&a), IValue::Str(Arc::from("x"))]).unwrap_err();
    assert!(matches!(err, DispatchError::Type(_)), "{err}");
}

#[test]
fn backend_without_kernels_is_not_implemented_and_cuda_reaches_its_block() {
    let a = f32s(&[1.], &[1]);
    let err = {
        let _g = IncludeDispatchKeyGuard::new(DispatchKeySet::from_keys(&[DispatchKey::XLA]));
        call("add.Tensor", vec![t(&a), t(&a), IValue::Int(1)]).unwrap_err()
    };
    assert!(matches!(err, DispatchError::NotImplemented(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("Could not run 'aten::add.Tensor' with arguments from the 'XLA' backend."),
        "{msg}"
    );
    assert!(
        msg.contains("'aten::add.Tensor' is only available for these backends: [CPU, CUDA, Meta"),
        "{msg}"
    );
    // Forcing the CUDA key onto CPU tensors reaches the CUDA kernel, which refuses them.
    let err = {
        let _g = IncludeDispatchKeyGuard::new(DispatchKeySet::from_keys(&[DispatchKey::CUDA]));
        call("add.Tensor", vec![t(&a), t(&a), IValue::Int(1)]).unwrap_err()
    };
    assert!(
        err.to_string()
            .contains("expected a CUDA tensor, got one on cpu"),
        "{err}"
    );
    // The guard is gone: the same call works again.
    call("add.Tensor", vec![t(&a), t(&a), IValue::Int(1)]).unwrap();

    // A composite op has a kernel for XLA too (the math kernel); its decomposition reaches
    // the backend op, which then fails the same way.
    let err = {
        let _g = IncludeDispatchKeyGuard::new(DispatchKeySet::from_keys(&[DispatchKey::XLA]));
        call(
            "reshape",
            vec![t(&f32s(&[1., 2.], &[2])), IValue::IntList(vec![2, 1])],
        )
        .unwrap_err()
    };
    assert!(
        err.to_string()
            .starts_with("Could not run 'aten::view' with arguments from the 'XLA' backend."),
        "{err}"
    );

    // Without a CUDA driver, allocating on CUDA is PyTorch's device error (with one, it works).
    let r = call(
        "zeros",
        vec![
            IValue::IntList(vec![1]),
            IValue::None,
            IValue::None,
            dev("cuda"),
            IValue::None,
        ],
    );
    if let Err(err) = r {
        assert!(
            matches!(
                AtenError::from_dispatch_error(&err),
                Some(TensorError::Device(_))
            ),
            "{err}"
        );
    }
}

/// Tensor-list returns (`split`, `unbind`) as one value per tensor.
fn flat_lists(vals: Vec<IValue>) -> Vec<IValue> {
    vals.into_iter()
        .flat_map(|v| match v {
            IValue::TensorList(ts) => ts.into_iter().map(IValue::Tensor).collect(),
            other => vec![other],
        })
        .collect()
}

/// Sample calls of the second batch of operators (`more/`).
fn more_sample_calls(d: Device) -> Vec<(&'static str, Vec<IValue>)> {
    let mk = |vals: &[f32], shape: &[usize]| match d {
        Device::Meta => Tensor::empty(shape, ScalarType::Float32, Device::Meta).unwrap(),
        _ => f32s(vals, shape),
    };
    let ints = |vals: &[i64], shape: &[usize]| match d {
        Device::Meta => Tensor::empty(shape, ScalarType::Int64, Device::Meta).unwrap(),
        _ => Tensor::from_vec(vals.to_vec(), shape).unwrap(),
    };
    let x = mk(&[1., -2., 3., 4., 0.5, 6.], &[2, 3]);
    let y = mk(&[6., 5., 4., 3., 2., 1.], &[2, 3]);
    let fresh = || mk(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], &[2, 3]);
    let sq = mk(&[1., 2., 3., 4.], &[2, 2]);
    let v = mk(&[1., 2., 3.], &[3]);
    let mask = match d {
        Device::Meta => Tensor::empty(&[2, 3], ScalarType::Bool, Device::Meta).unwrap(),
        _ => Tensor::from_vec(vec![true, false, true, false, true, false], &[2, 3]).unwrap(),
    };
    let idx = ints(&[0, 2], &[2]);
    let idx2 = ints(&[0, 1, 1, 0], &[2, 2]);
    let ds: &str = if d == Device::Meta { "meta" } else { "cpu" };
    let il = |v: &[i64]| IValue::IntList(v.to_vec());
    let opts = || vec![IValue::None, IValue::None, dev(ds), IValue::None];
    let cat = |a: Vec<IValue>, b: Vec<IValue>| a.into_iter().chain(b).collect::<Vec<_>>();
    let mut calls: Vec<(&'static str, Vec<IValue>)> = vec![
        ("new_zeros", cat(vec![t(&x), il(&[2])], opts())),
        ("new_ones", cat(vec![t(&x), il(&[2, 1])], opts())),
        ("new_empty", cat(vec![t(&x), il(&[3])], opts())),
        (
            "new_full",
            cat(vec![t(&x), il(&[2]), IValue::Double(1.5)], opts()),
        ),
        ("eye", cat(vec![IValue::Int(3)], opts())),
        ("eye.m", cat(vec![IValue::Int(2), IValue::Int(3)], opts())),
        (
            "linspace",
            cat(vec![IValue::Int(0), IValue::Int(1), IValue::Int(5)], opts()),
        ),
        ("amax", vec![t(&x), il(&[1]), IValue::Bool(false)]),
        ("amin", vec![t(&x), il(&[]), IValue::Bool(true)]),
        ("prod", vec![t(&x), IValue::None]),
        (
            "prod.dim_int",
            vec![t(&x), IValue::Int(0), IValue::Bool(false), IValue::None],
        ),
        ("all", vec![t(&x)]),
        ("all.dim", vec![t(&x), IValue::Int(1), IValue::Bool(true)]),
        ("any", vec![t(&x)]),
        ("any.dim", vec![t(&x), IValue::Int(0), IValue::Bool(false)]),
        ("cumsum", vec![t(&x), IValue::Int(1), IValue::None]),
        ("cumprod", vec![t(&x), IValue::Int(0), IValue::None]),
        ("cumsum_", vec![t(&fresh()), IValue::Int(1), IValue::None]),
        ("cumprod_", vec![t(&fresh()), IValue::Int(0), IValue::None]),
        ("var", vec![t(&x), IValue::Bool(true)]),
        (
            "var.dim",
            vec![t(&x), il(&[1]), IValue::Bool(true), IValue::Bool(false)],
        ),
        (
            "var.correction",
            vec![t(&x), IValue::None, IValue::Int(0), IValue::Bool(false)],
        ),
        ("std", vec![t(&x), IValue::Bool(false)]),
        (
            "std.dim",
            vec![t(&x), il(&[0]), IValue::Bool(true), IValue::Bool(true)],
        ),
        (
            "std.correction",
            vec![t(&x), il(&[1]), IValue::None, IValue::Bool(false)],
        ),
        ("logsumexp", vec![t(&x), il(&[1]), IValue::Bool(false)]),
        ("softmax.int", vec![t(&x), IValue::Int(1), IValue::None]),
        (
            "log_softmax.int",
            vec![t(&x), IValue::Int(0), IValue::Int(7)],
        ),
        ("_softmax", vec![t(&x), IValue::Int(1), IValue::Bool(false)]),
        (
            "_log_softmax",
            vec![t(&x), IValue::Int(1), IValue::Bool(false)],
        ),
        (
            "_softmax_backward_data",
            vec![t(&x), t(&y), IValue::Int(1), IValue::Int(6)],
        ),
        (
            "_log_softmax_backward_data",
            vec![t(&x), t(&y), IValue::Int(1), IValue::Int(6)],
        ),
        ("isnan", vec![t(&x)]),
        ("isinf", vec![t(&x)]),
        ("isfinite", vec![t(&x)]),
        ("logical_not", vec![t(&x)]),
        ("logical_not_", vec![t(&fresh())]),
        ("square", vec![t(&x)]),
        (
            "nan_to_num",
            vec![t(&x), IValue::None, IValue::Double(1.), IValue::None],
        ),
        (
            "nan_to_num_",
            vec![t(&fresh()), IValue::Double(0.), IValue::None, IValue::None],
        ),
        ("clamp", vec![t(&x), IValue::Int(0), IValue::Double(2.5)]),
        ("clamp.Tensor", vec![t(&x), t(&y), IValue::None]),
        (
            "clamp_",
            vec![t(&fresh()), IValue::None, IValue::Double(0.3)],
        ),
        ("clamp_.Tensor", vec![t(&fresh()), IValue::None, t(&y)]),
        ("clamp_min", vec![t(&x), IValue::Int(0)]),
        ("clamp_min.Tensor", vec![t(&x), t(&y)]),
        ("clamp_max", vec![t(&x), IValue::Int(0)]),
        ("clamp_max.Tensor", vec![t(&x), t(&y)]),
        ("clamp_min_", vec![t(&fresh()), IValue::Double(0.2)]),
        ("clamp_min_.Tensor", vec![t(&fresh()), t(&y)]),
        ("clamp_max_", vec![t(&fresh()), IValue::Double(0.2)]),
        ("clamp_max_.Tensor", vec![t(&fresh()), t(&y)]),
        ("clip", vec![t(&x), IValue::Int(0), IValue::Int(1)]),
        ("clip.Tensor", vec![t(&x), IValue::None, t(&y)]),
        ("clip_", vec![t(&fresh()), IValue::Int(0), IValue::None]),
        ("clip_.Tensor", vec![t(&fresh()), t(&y), IValue::None]),
        ("remainder.Scalar", vec![t(&x), IValue::Int(2)]),
        ("remainder_.Scalar", vec![t(&fresh()), IValue::Double(0.25)]),
        ("fmod.Scalar", vec![t(&x), IValue::Int(2)]),
        ("fmod_.Scalar", vec![t(&fresh()), IValue::Double(0.25)]),
        ("floor_divide.Scalar", vec![t(&x), IValue::Int(2)]),
        ("floor_divide_.Scalar", vec![t(&fresh()), IValue::Int(2)]),
        ("lerp.Scalar", vec![t(&x), t(&y), IValue::Double(0.25)]),
        ("lerp.Tensor", vec![t(&x), t(&y), t(&fresh())]),
        (
            "lerp_.Scalar",
            vec![t(&fresh()), t(&y), IValue::Double(0.25)],
        ),
        ("lerp_.Tensor", vec![t(&fresh()), t(&y), t(&fresh())]),
        ("masked_fill.Scalar", vec![t(&x), t(&mask), IValue::Int(0)]),
        (
            "masked_fill.Tensor",
            vec![t(&x), t(&mask), t(&mk(&[9.], &[]))],
        ),
        (
            "masked_fill_.Scalar",
            vec![t(&fresh()), t(&mask), IValue::Double(1.)],
        ),
        (
            "masked_fill_.Tensor",
            vec![t(&fresh()), t(&mask), t(&mk(&[9.], &[]))],
        ),
        ("index_select", vec![t(&x), IValue::Int(1), t(&idx)]),
        (
            "gather",
            vec![t(&x), IValue::Int(1), t(&idx2), IValue::Bool(false)],
        ),
        ("scatter.src", vec![t(&x), IValue::Int(1), t(&idx2), t(&y)]),
        (
            "scatter.value",
            vec![t(&x), IValue::Int(0), t(&idx2), IValue::Double(5.)],
        ),
        (
            "scatter_.src",
            vec![t(&fresh()), IValue::Int(1), t(&idx2), t(&y)],
        ),
        (
            "scatter_.value",
            vec![t(&fresh()), IValue::Int(0), t(&idx2), IValue::Double(5.)],
        ),
        ("scatter_add", vec![t(&x), IValue::Int(1), t(&idx2), t(&y)]),
        (
            "index_add",
            vec![
                t(&x),
                IValue::Int(1),
                t(&idx),
                t(&mk(&[1.; 4], &[2, 2])),
                IValue::Int(2),
            ],
        ),
        ("flip", vec![t(&x), il(&[0, 1])]),
        ("roll", vec![t(&x), il(&[1]), il(&[1])]),
        ("chunk", vec![t(&x), IValue::Int(2), IValue::Int(1)]),
        ("split.Tensor", vec![t(&x), IValue::Int(2), IValue::Int(1)]),
        ("split_with_sizes", vec![t(&x), il(&[1, 2]), IValue::Int(1)]),
        ("unbind.int", vec![t(&x), IValue::Int(0)]),
        ("tril", vec![t(&x), IValue::Int(0)]),
        ("triu", vec![t(&x), IValue::Int(1)]),
        ("tril_", vec![t(&fresh()), IValue::Int(-1)]),
        ("triu_", vec![t(&fresh()), IValue::Int(0)]),
        ("diag", vec![t(&v), IValue::Int(1)]),
        ("outer", vec![t(&v), t(&v)]),
        (
            "addmm",
            vec![
                t(&v),
                t(&x),
                t(&mk(&[1.; 9], &[3, 3])),
                IValue::Int(1),
                IValue::Int(2),
            ],
        ),
        (
            "topk",
            vec![
                t(&x),
                IValue::Int(2),
                IValue::Int(-1),
                IValue::Bool(true),
                IValue::Bool(true),
            ],
        ),
        ("sort", vec![t(&x), IValue::Int(-1), IValue::Bool(false)]),
        (
            "sort.stable",
            vec![
                t(&x),
                IValue::Bool(true),
                IValue::Int(0),
                IValue::Bool(true),
            ],
        ),
    ];
    let unary = [
        "floor", "ceil", "round", "trunc", "frac", "sign", "rsqrt", "log1p", "expm1", "log2",
        "log10", "exp2", "tan", "asin", "acos", "atan", "sinh", "cosh", "erf",
    ];
    for name in unary {
        calls.push((name, vec![t(&x)]));
        let inplace: &'static str = Box::leak(format!("{name}_").into_boxed_str());
        calls.push((inplace, vec![t(&fresh())]));
    }
    for (name, inplace) in [
        ("atan2", "atan2_"),
        ("remainder.Tensor", "remainder_.Tensor"),
        ("fmod.Tensor", "fmod_.Tensor"),
        ("floor_divide", "floor_divide_.Tensor"),
        ("logical_and", "logical_and_"),
        ("logical_or", "logical_or_"),
        ("logical_xor", "logical_xor_"),
    ] {
        calls.push((name, vec![t(&x), t(&y)]));
        calls.push((inplace, vec![t(&fresh()), t(&y)]));
    }
    let _ = sq;
    calls
}

/// Every `.out` overload, on its functional overload's sample call: the result lands in `out`
/// (same values as the functional call), `out` itself is returned, and a wrong dtype or shape
/// is refused with torch's text / a clear one.
#[test]
fn every_out_variant_writes_its_functional_result_into_out() {
    aten::register();
    let samples = sample_calls(Device::Cpu);
    let mut checked = 0;
    for (schema, functional, _) in OUT_VARIANTS {
        let name = schema.split('(').next().unwrap();
        let Some((_, args)) = samples.iter().find(|(n, _)| n == functional) else {
            continue;
        };
        let want = call_t(functional, args.clone());
        let (n, o) = split(name);
        let op_h = op(n, o);
        let pos = op_h
            .schema()
            .unwrap()
            .arguments
            .iter()
            .position(opdispatch_schema::Argument::is_out)
            .unwrap();
        let out = Tensor::empty(want.sizes(), want.dtype(), Device::Cpu).unwrap();
        let mut full = args.clone();
        full.insert(pos, out.clone().into_ivalue());
        let got = call(name, full).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.len(), 1, "{name}");
        let back = Tensor::from_ivalue(got.into_iter().next().unwrap()).unwrap();
        assert!(back.ptr_eq(&out), "{name} returns out itself");
        if want.dtype().is_floating_point() {
            let (a, b) = (want.to_vec_f64().unwrap(), out.to_vec_f64().unwrap());
            assert!(
                a.iter()
                    .zip(&b)
                    .all(|(x, y)| x == y || (x.is_nan() && y.is_nan())),
                "{name}: {a:?} vs {b:?}"
            );
        } else if want.dtype() != ScalarType::Bool && !want.dtype().is_complex() {
            assert_eq!(
                want.to_vec_i64().unwrap(),
                out.to_vec_i64().unwrap(),
                "{name}"
            );
        }
        checked += 1;
    }
    assert!(
        checked > 60,
        "only {checked} out variants had a sample call"
    );
    // A float result into an integer `out`: torch's text; a wrong shape: refused.
    let x = Tensor::from_vec(vec![1.5f32, 2.5], &[2]).unwrap();
    let long = Tensor::empty(&[2], ScalarType::Int64, Device::Cpu).unwrap();
    let e = call("exp.out", vec![x.clone().into_ivalue(), long.into_ivalue()]).unwrap_err();
    assert!(
        e.to_string()
            .contains("result type Float can't be cast to the desired output type Long"),
        "{e}"
    );
    let wrong = Tensor::empty(&[3], ScalarType::Float32, Device::Cpu).unwrap();
    let e = call("exp.out", vec![x.into_ivalue(), wrong.into_ivalue()]).unwrap_err();
    assert!(
        e.to_string().contains("cannot resize an out= tensor"),
        "{e}"
    );
}
