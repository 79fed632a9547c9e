//! Autograd against PyTorch 2.15, through the aten operators: node names and gradients of
//! `max.dim` (index-selecting), `matmul`'s decomposition, views whose base is written in place,
//! writes into buffers that do not require grad, bases with any strides, and the order of
//! `retain_grad`'s hook. The expected names and values are PyTorch's (derived from
//! `derivatives.yaml`, `LinearAlgebra.cpp`'s `_matmul_impl` and `torch/csrc/autograd`, and
//! checked against torch 2.15.0).

use std::sync::Arc;

use opdispatch_autograd::{backward, hooks, meta, Node};
use opdispatch_dispatch::{Dispatcher, IValue, KernelArg, Result, Stack};
use opdispatch_tensor::{Device, Scalar, ScalarType, Tensor};

fn setup() {
    opdispatch_aten::register();
    opdispatch_autograd::register().unwrap();
}

fn call_all(name: &str, args: Vec<IValue>) -> Result<Vec<Tensor>> {
    let (n, o) = name.split_once('.').unwrap_or((name, ""));
    let op = Dispatcher::singleton().find_schema_or_throw(&format!("aten::{n}"), o)?;
    let mut stack: Stack = args.into_iter().collect();
    op.call_boxed(&mut stack)?;
    stack
        .into_vec()
        .into_iter()
        .map(Tensor::from_ivalue)
        .collect()
}

fn call(name: &str, args: Vec<IValue>) -> Tensor {
    let mut out = call_all(name, args).unwrap_or_else(|e| panic!("{name}: {e}"));
    out.remove(0)
}

fn t(x: &Tensor) -> IValue {
    x.clone().into_ivalue()
}

fn ints(v: &[i64]) -> IValue {
    IValue::IntList(v.to_vec())
}

/// `arange(1, n + 1)` shaped `sizes`, float32.
fn r(sizes: &[usize]) -> Tensor {
    let n: usize = sizes.iter().product();
    Tensor::from_vec((1..=n).map(|i| i as f32).collect(), sizes).unwrap()
}

fn leaf(x: Tensor) -> Tensor {
    meta::set_requires_grad(&x, true).unwrap();
    x
}

fn vals(x: &Tensor) -> Vec<f32> {
    x.to_vec::<f32>().unwrap()
}

fn grad(x: &Tensor) -> Vec<f32> {
    vals(&meta::grad(x).expect("a gradient"))
}

fn sum(x: &Tensor) -> Tensor {
    call("sum", vec![t(x), IValue::None])
}

fn mul(a: &Tensor, b: &Tensor) -> Tensor {
    call("mul.Tensor", vec![t(a), t(b)])
}

fn mul_s(a: &Tensor, s: f64) -> Tensor {
    call("mul.Scalar", vec![t(a), IValue::Double(s)])
}

fn slice(x: &Tensor, dim: i64, start: i64, end: i64) -> Tensor {
    call(
        "slice.Tensor",
        vec![
            t(x),
            IValue::Int(dim),
            IValue::Int(start),
            IValue::Int(end),
            IValue::Int(1),
        ],
    )
}

fn select(x: &Tensor, dim: i64, i: i64) -> Tensor {
    call("select.int", vec![t(x), IValue::Int(dim), IValue::Int(i)])
}

fn back(y: &Tensor) {
    backward(std::slice::from_ref(y), vec![None], None, false, None).unwrap();
}

fn name(x: &Tensor) -> Option<String> {
    meta::grad_fn(x).map(|n| n.name())
}

/// The node and its next nodes' names, depth first (`None` for an edge to nothing).
fn chain(n: &Arc<dyn Node>, depth: usize) -> String {
    let next: Vec<String> = n
        .next_edges()
        .iter()
        .map(|e| match &e.function {
            Some(f) if depth > 1 => chain(f, depth - 1),
            Some(f) => f.name(),
            None => "None".into(),
        })
        .collect();
    if next.is_empty() || depth == 1 {
        n.name()
    } else {
        format!("{}({})", n.name(), next.join(", "))
    }
}

fn chain_of(x: &Tensor, depth: usize) -> String {
    chain(&meta::grad_fn(x).expect("a grad_fn"), depth)
}

#[test]
fn max_dim_sends_the_gradient_to_the_returned_index_only() {
    setup();
    // Row 0 has a tie (3, 3): torch returns the first index and only it gets the gradient.
    let x = leaf(Tensor::from_vec(vec![1f32, 3., 3., 2., 2., 1.], &[2, 3]).unwrap());
    let out = call_all("max.dim", vec![t(&x), IValue::Int(1), IValue::Bool(false)]).unwrap();
    assert_eq!(out[1].to_vec_i64().unwrap(), vec![1, 0]);
    assert_eq!(name(&out[0]).as_deref(), Some("MaxBackward0"));
    let w = Tensor::from_vec(vec![1f32, 10.], &[2]).unwrap();
    back(&sum(&mul(&out[0], &w)));
    assert_eq!(grad(&x), vec![0., 1., 0., 10., 0., 0.]);

    let x = leaf(Tensor::from_vec(vec![1f32, 3., 3., 2., 2., 1.], &[2, 3]).unwrap());
    let out = call_all("min.dim", vec![t(&x), IValue::Int(0), IValue::Bool(true)]).unwrap();
    assert_eq!(out[1].to_vec_i64().unwrap(), vec![0, 1, 1]);
    assert_eq!(name(&out[0]).as_deref(), Some("MinBackward0"));
    back(&sum(&out[0]));
    assert_eq!(grad(&x), vec![1., 0., 0., 0., 1., 1.]);
}

#[test]
fn max_of_all_shares_the_gradient_among_ties_and_nans() {
    setup();
    let x = leaf(Tensor::from_vec(vec![1f32, 3., 3., 2.], &[4]).unwrap());
    back(&call("max", vec![t(&x)]));
    assert_eq!(grad(&x), vec![0., 0.5, 0.5, 0.]);
    let x = leaf(Tensor::from_vec(vec![1f32, f32::NAN, 3., f32::NAN], &[4]).unwrap());
    back(&call("max", vec![t(&x)]));
    assert_eq!(grad(&x), vec![0., 0.5, 0., 0.5]);
}

fn matmul(a: &Tensor, b: &Tensor) -> Tensor {
    call("matmul", vec![t(a), t(b)])
}

#[test]
fn matmul_records_the_nodes_of_pytorchs_decomposition() {
    setup();
    let cases: [(&[usize], &[usize], &str); 6] = [
        (&[3], &[3], "DotBackward0(AccumulateGrad, AccumulateGrad)"),
        (&[2, 3], &[3], "MvBackward0(AccumulateGrad, AccumulateGrad)"),
        (
            &[2, 3],
            &[3, 4],
            "MmBackward0(AccumulateGrad, AccumulateGrad)",
        ),
        (
            &[3],
            &[3, 4],
            "SqueezeBackward1(MmBackward0(UnsqueezeBackward0(AccumulateGrad), AccumulateGrad))",
        ),
        // The larger operand folded into a matrix: one mm, then an unsafe view.
        (
            &[2, 2, 3],
            &[3, 4],
            "UnsafeViewBackward0(MmBackward0(ViewBackward0(AccumulateGrad), AccumulateGrad))",
        ),
        (
            &[2, 2, 3],
            &[3],
            "UnsafeViewBackward0(MvBackward0(ViewBackward0(AccumulateGrad), AccumulateGrad))",
        ),
    ];
    for (sa, sb, want) in cases {
        let (a, b) = (leaf(r(sa)), leaf(r(sb)));
        let y = matmul(&a, &b);
        assert_eq!(chain_of(&y, 4), want, "{sa:?} @ {sb:?}");
    }
    // Same batch: bmm of the expanded, reshaped operands.
    let (a, b) = (leaf(r(&[2, 2, 3])), leaf(r(&[2, 3, 4])));
    let y = matmul(&a, &b);
    assert_eq!(
        chain_of(&y, 5),
        "UnsafeViewBackward0(BmmBackward0(ViewBackward0(ExpandBackward0(AccumulateGrad)), ViewBackward0(ExpandBackward0(AccumulateGrad))))"
    );
    assert_eq!(y.sizes(), &[2, 2, 4]);
    // A broadcast batch of one that requires grad is squeezed and folded instead.
    let (a, b) = (leaf(r(&[1, 2, 3])), leaf(r(&[2, 3, 4])));
    let y = matmul(&a, &b);
    assert_eq!(y.sizes(), &[2, 2, 4]);
    assert_eq!(chain_of(&y, 1), "CloneBackward0");
    back(&sum(&y));
    // d/da of sum(a @ b) summed over the broadcast batch: rows of b summed, per batch, added.
    let bt = vals(&r(&[2, 3, 4]));
    let want_a: Vec<f32> = (0..2)
        .flat_map(|_| {
            (0..3)
                .map(|k| {
                    (0..2)
                        .map(|bi| (0..4).map(|j| bt[bi * 12 + k * 4 + j]).sum::<f32>())
                        .sum()
                })
                .collect::<Vec<f32>>()
        })
        .collect();
    assert_eq!(grad(&a), want_a);
}

#[test]
fn matmul_without_grad_folds_only_viewable_operands() {
    setup();
    // A permuted (non-foldable) left operand whose partner needs no grad: the bmm path.
    let base = r(&[2, 3, 2]);
    let a = call("permute", vec![t(&base), ints(&[0, 2, 1])]);
    let a = leaf(a.shallow_alias());
    let b = r(&[3, 4]);
    let y = matmul(&a, &b);
    assert_eq!(
        chain_of(&y, 4),
        "UnsafeViewBackward0(BmmBackward0(ReshapeAliasBackward0(ExpandBackward0), None))"
    );
    let want = opdispatch_tensor::ops::matmul(&a, &b).unwrap();
    assert_eq!(vals(&y), vals(&want));
}

#[test]
fn reshape_views_when_it_can_and_copies_otherwise() {
    setup();
    let x = leaf(r(&[2, 3]));
    let y = call("reshape", vec![t(&x), ints(&[6])]);
    assert_eq!(name(&y).as_deref(), Some("ViewBackward0"));
    let xt = call("t", vec![t(&x)]);
    let y = call("reshape", vec![t(&xt), ints(&[6])]);
    assert_eq!(
        chain_of(&y, 3),
        "UnsafeViewBackward0(CloneBackward0(TBackward0))"
    );
    // Viewable but not contiguous: `_reshape_alias` with the computed strides.
    let y = call("reshape", vec![t(&xt), ints(&[3, 2])]);
    assert_eq!(name(&y).as_deref(), Some("ReshapeAliasBackward0"));
    assert_eq!(
        (y.sizes(), y.strides()),
        (&[3usize, 2][..], &[1usize, 3][..])
    );
    let y = call(
        "flatten.using_ints",
        vec![t(&x), IValue::Int(0), IValue::Int(-1)],
    );
    assert_eq!(name(&y).as_deref(), Some("ViewBackward0"));
    // start == end: the tensor itself.
    let same = call(
        "flatten.using_ints",
        vec![t(&x), IValue::Int(1), IValue::Int(1)],
    );
    assert_eq!(same.impl_id(), x.impl_id());
}

#[test]
fn a_view_gets_a_new_history_after_its_base_is_written_in_place() {
    setup();
    let x = leaf(r(&[4]));
    let a = mul_s(&x, 1.0);
    let v = slice(&a, 0, 1, 3);
    assert_eq!(name(&v).as_deref(), Some("SliceBackward0"));
    call(
        "mul_.Tensor",
        vec![t(&a), t(&Tensor::wrapped_scalar(Scalar::Int(2)))],
    );
    assert_eq!(chain_of(&v, 2), "AsStridedBackward0(MulBackward0)");
    back(&sum(&v));
    assert_eq!(grad(&x), vec![0., 2., 2., 0.]);

    // A sibling view written in place: the base gets CopySlices, the other view follows it.
    let x = leaf(r(&[4]));
    let a = mul_s(&x, 1.0);
    let v1 = select(&a, 0, 0);
    let v2 = slice(&a, 0, 2, 4);
    call(
        "mul_.Tensor",
        vec![t(&v2), t(&Tensor::wrapped_scalar(Scalar::Int(3)))],
    );
    assert_eq!(chain_of(&a, 2), "CopySlices(MulBackward1, None)");
    assert_eq!(chain_of(&v1, 2), "AsStridedBackward0(CopySlices)");
    assert_eq!(chain_of(&v2, 2), "AsStridedBackward0(CopySlices)");
    let y = call(
        "add.Tensor",
        vec![
            t(&mul_s(&v1, 10.0)),
            t(&call(
                "add.Tensor",
                vec![t(&sum(&v2)), t(&sum(&a)), IValue::Int(1)],
            )),
            IValue::Int(1),
        ],
    );
    back(&y);
    assert_eq!(grad(&x), vec![11., 1., 6., 6.]);
}

#[test]
fn copying_into_a_buffer_that_needs_no_grad_records_copy_slices() {
    setup();
    let buf = Tensor::zeros(&[3, 2], ScalarType::Float32, Device::Cpu).unwrap();
    let x = leaf(Tensor::from_vec(vec![1f32, 2.], &[2]).unwrap());
    let row = select(&buf, 0, 1);
    assert!(!buf.requires_grad() && !row.requires_grad());
    call("copy_", vec![t(&row), t(&x), IValue::Bool(false)]);
    assert!(buf.requires_grad() && !meta::is_leaf(&buf));
    assert_eq!(chain_of(&buf, 2), "CopySlices(None, AccumulateGrad)");
    assert_eq!(name(&row).as_deref(), Some("AsStridedBackward0"));
    assert_eq!(vals(&buf), vec![0., 0., 1., 2., 0., 0.]);
    back(&sum(&mul(&buf, &r(&[3, 2]))));
    assert_eq!(grad(&x), vec![3., 4.]);

    // Into an integer buffer nothing is recorded.
    let ib = Tensor::zeros(&[2], ScalarType::Int64, Device::Cpu).unwrap();
    call("copy_", vec![t(&ib), t(&x), IValue::Bool(false)]);
    assert!(!ib.requires_grad());
}

#[test]
fn copy_slices_lays_out_the_gradient_like_a_strided_base() {
    setup();
    // A base whose strides are not contiguous ones (a transposed layout, not a view).
    let zeros = Tensor::zeros(&[3, 2], ScalarType::Float32, Device::Cpu).unwrap();
    let buf = call("t", vec![t(&zeros)]).shallow_alias();
    assert!(!buf.is_contiguous() && meta::base(&buf).is_none());
    let w = leaf(Tensor::from_vec(vec![5f32, 6.], &[2]).unwrap());
    let col = select(&buf, 1, 1);
    call("copy_", vec![t(&col), t(&w), IValue::Bool(false)]);
    assert_eq!(vals(&buf), vec![0., 5., 0., 0., 6., 0.]);
    let k = r(&[2, 3]);
    back(&sum(&mul(&buf, &k)));
    // buf[:, 1] is k[:, 1] = [2, 5].
    assert_eq!(grad(&w), vec![2., 5.]);
}

#[test]
fn retain_grad_runs_after_the_tensors_other_hooks_and_follows_in_place_writes() {
    setup();
    let x = leaf(Tensor::from_vec(vec![1f32, 2.], &[2]).unwrap());
    let y = mul_s(&x, 2.0);
    meta::retain_grad(&y).unwrap();
    hooks::register_hook(
        &y,
        Arc::new(|g: &Tensor| {
            Ok(Some(opdispatch_tensor::ops::mul_scalar(
                g,
                Scalar::Int(10),
            )?))
        }),
    )
    .unwrap();
    back(&sum(&mul_s(&y, 1.0)));
    assert_eq!(grad(&y), vec![10., 10.]);
    assert_eq!(grad(&x), vec![20., 20.]);

    let x = leaf(Tensor::from_vec(vec![1f32, 2.], &[2]).unwrap());
    let y = mul_s(&x, 2.0);
    meta::retain_grad(&y).unwrap();
    call(
        "mul_.Tensor",
        vec![t(&y), t(&Tensor::wrapped_scalar(Scalar::Int(3)))],
    );
    back(&sum(&y));
    assert_eq!(grad(&y), vec![1., 1.]);
    assert_eq!(grad(&x), vec![6., 6.]);
}
