//! The engine through the aten operators: gradients, accumulation, freeing, higher order.

use opdispatch_autograd::{backward, grad, meta, AutoGradMode};
use opdispatch_dispatch::{Dispatcher, IValue, KernelArg, Result, Stack};
use opdispatch_tensor::Tensor;

fn setup() {
    opdispatch_aten::register();
    opdispatch_autograd::register().unwrap();
}

fn call(name: &str, overload: &str, args: Vec<IValue>) -> Result<Tensor> {
    let op = Dispatcher::singleton().find_schema_or_throw(name, overload)?;
    let mut stack: Stack = args.into_iter().collect();
    op.call_boxed(&mut stack)?;
    Tensor::from_ivalue(stack.pop().unwrap())
}

fn mul(a: &Tensor, b: &Tensor) -> Tensor {
    call(
        "aten::mul",
        "Tensor",
        vec![a.clone().into_ivalue(), b.clone().into_ivalue()],
    )
    .unwrap()
}

fn add(a: &Tensor, b: &Tensor) -> Tensor {
    call(
        "aten::add",
        "Tensor",
        vec![
            a.clone().into_ivalue(),
            b.clone().into_ivalue(),
            IValue::Int(1),
        ],
    )
    .unwrap()
}

fn sum(a: &Tensor) -> Tensor {
    call("aten::sum", "", vec![a.clone().into_ivalue(), IValue::None]).unwrap()
}

fn leaf(v: Vec<f32>) -> Tensor {
    let n = v.len();
    let t = Tensor::from_vec(v, &[n]).unwrap();
    meta::set_requires_grad(&t, true).unwrap();
    t
}

fn values(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

#[test]
fn product_rule_and_accumulation_across_two_backwards() {
    setup();
    let x = leaf(vec![1.0, 2.0, 3.0]);
    let y = sum(&mul(&x, &x));
    assert_eq!(meta::grad_fn(&y).unwrap().name(), "SumBackward0");
    backward(&[y], vec![None], None, false, None).unwrap();
    assert_eq!(values(&meta::grad(&x).unwrap()), [2.0, 4.0, 6.0]);
    // A second graph accumulates into the same .grad.
    backward(&[sum(&x)], vec![None], None, false, None).unwrap();
    assert_eq!(values(&meta::grad(&x).unwrap()), [3.0, 5.0, 7.0]);
}

#[test]
fn diamond_graph_sums_both_paths_before_running_the_shared_node() {
    setup();
    let x = leaf(vec![1.0, 2.0]);
    let h = mul(&x, &x); // shared
    let y = sum(&add(&mul(&h, &x), &h)); // x^3 + x^2
    backward(&[y], vec![None], None, false, None).unwrap();
    // 3x^2 + 2x
    assert_eq!(values(&meta::grad(&x).unwrap()), [5.0, 16.0]);
}

#[test]
fn saved_tensors_are_freed_unless_the_graph_is_retained() {
    setup();
    let x = leaf(vec![1.0, 2.0]);
    let y = sum(&mul(&x, &x));
    backward(
        std::slice::from_ref(&y),
        vec![None],
        Some(true),
        false,
        None,
    )
    .unwrap();
    backward(std::slice::from_ref(&y), vec![None], None, false, None).unwrap();
    assert_eq!(values(&meta::grad(&x).unwrap()), [4.0, 8.0]);
    let err = backward(&[y], vec![None], None, false, None).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("Trying to backward through the graph a second time"));
}

#[test]
fn grad_captures_without_touching_dot_grad_and_builds_higher_order_graphs() {
    setup();
    let x = leaf(vec![3.0]);
    let y = sum(&mul(&mul(&x, &x), &x));
    let g = grad(
        &[y],
        std::slice::from_ref(&x),
        vec![None],
        None,
        true,
        false,
    )
    .unwrap();
    let g = g[0].clone().unwrap();
    assert_eq!(values(&g), [27.0]);
    assert!(g.requires_grad());
    assert!(meta::grad(&x).is_none());
    let g2 = grad(
        &[sum(&g)],
        std::slice::from_ref(&x),
        vec![None],
        None,
        false,
        false,
    )
    .unwrap();
    assert_eq!(values(g2[0].as_ref().unwrap()), [18.0]);
}

#[test]
fn no_grad_records_nothing_and_unused_inputs_are_reported() {
    setup();
    let x = leaf(vec![1.0]);
    {
        let _off = AutoGradMode::new(false);
        assert!(!mul(&x, &x).requires_grad());
    }
    let u = leaf(vec![1.0]);
    let err = grad(&[sum(&x)], &[x.clone(), u], vec![None], None, false, false).unwrap_err();
    assert!(err
        .to_string()
        .contains("index 1 appears to not have been used"));
}

#[test]
fn an_in_place_write_to_a_saved_tensor_fails_the_backward() {
    setup();
    let x = leaf(vec![1.0, 2.0]);
    let one = Tensor::from_vec(vec![1.0f32, 1.0], &[2]).unwrap();
    let z = mul(&x, &one);
    let y = sum(&mul(&z, &z));
    call(
        "aten::add_",
        "Tensor",
        vec![z.clone().into_ivalue(), one.into_ivalue(), IValue::Int(1)],
    )
    .unwrap();
    assert_eq!(z.version(), 1);
    let err = backward(&[y], vec![None], None, false, None).unwrap_err();
    assert!(err.to_string().contains(
        "[torch.FloatTensor [2]], which is output 0 of Add, is at version 1; expected version 0"
    ));
}

#[test]
fn graphs_free_their_leaves_when_dropped() {
    setup();
    let x = leaf(vec![1.0, 2.0]);
    let before = x.use_count();
    let y = sum(&mul(&x, &x));
    assert!(x.use_count() > before);
    drop(y);
    assert_eq!(x.use_count(), before);
}
