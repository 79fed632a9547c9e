//! Behaviour of the ops against values computed by hand (and PyTorch's rules).
use opdispatch_tensor::ops::{self, TensorIndex};
use opdispatch_tensor::{Device, Scalar, ScalarType, Tensor, TensorData, TensorError};
use ScalarType::*;

fn f32t(v: &[f32], s: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), s).unwrap()
}
fn i64t(v: &[i64], s: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), s).unwrap()
}
fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}
/// Bit patterns, so NaNs compare equal to themselves.
fn bits(t: &Tensor) -> Vec<u64> {
    vals(t).iter().map(|x| x.to_bits()).collect()
}
fn meta(s: &[usize], d: ScalarType) -> Tensor {
    Tensor::empty(s, d, Device::Meta).unwrap()
}
/// A non-contiguous [2, 3] f32 tensor: the transpose of [[0, 3], [1, 4], [2, 5]].
fn noncontig() -> Tensor {
    let t = f32t(&[0., 3., 1., 4., 2., 5.], &[3, 2]);
    let r = ops::transpose(&t, 0, 1).unwrap();
    assert!(!r.is_contiguous());
    r
}

#[test]
fn factories_and_metadata() {
    let t = Tensor::zeros(&[2, 3], Float32, Device::Cpu).unwrap();
    assert_eq!(t.sizes(), &[2, 3]);
    assert_eq!(t.strides(), &[3, 1]);
    assert_eq!(
        (t.dim(), t.numel(), t.dtype(), t.device()),
        (2, 6, Float32, Device::Cpu)
    );
    assert!(t.is_contiguous());
    assert_eq!(vals(&t), vec![0.0; 6]);
    assert_eq!(
        vals(&Tensor::ones(&[2], Int8, Device::Cpu).unwrap()),
        vec![1.0, 1.0]
    );
    let f = Tensor::full(&[2], Scalar::Float(2.5), Float64, Device::Cpu).unwrap();
    assert_eq!(vals(&f), vec![2.5, 2.5]);
    let a = Tensor::arange(
        Scalar::Int(0),
        Scalar::Int(5),
        Scalar::Int(2),
        None,
        Device::Cpu,
    )
    .unwrap();
    assert_eq!((a.dtype(), a.to_vec_i64().unwrap()), (Int64, vec![0, 2, 4]));
    let a = Tensor::arange(
        Scalar::Float(0.0),
        Scalar::Int(1),
        Scalar::Float(0.25),
        None,
        Device::Cpu,
    )
    .unwrap();
    assert_eq!((a.dtype(), vals(&a)), (Float32, vec![0.0, 0.25, 0.5, 0.75]));
    let a = Tensor::arange(
        Scalar::Int(5),
        Scalar::Int(0),
        Scalar::Int(-2),
        None,
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(a.to_vec_i64().unwrap(), vec![5, 3, 1]);
    assert!(Tensor::arange(
        Scalar::Int(0),
        Scalar::Int(5),
        Scalar::Int(0),
        None,
        Device::Cpu
    )
    .is_err());
    assert!(Tensor::from_vec(vec![1.0f32; 5], &[2, 3]).is_err());
    let s = Tensor::scalar_tensor(Scalar::Int(7), Int32, Device::Cpu).unwrap();
    assert_eq!((s.dim(), s.item().unwrap()), (0, Scalar::Int(7)));
    assert!(Tensor::zeros(&[1], Float32, Device::Cuda(0)).is_err());
    // storage(): the same impl every time, shared with views
    let v = ops::view(&t, &[6]).unwrap();
    assert!(t.storage().ptr_eq(&t.storage()));
    assert!(v.storage().ptr_eq(&t.storage()));
    assert!(!v.ptr_eq(&t));
}

#[test]
fn export() {
    let t = i64t(&[1, 2, 3, 4], &[2, 2]);
    assert_eq!(
        t.to_data().unwrap(),
        TensorData::List(vec![
            TensorData::List(vec![
                TensorData::Scalar(Scalar::Int(1)),
                TensorData::Scalar(Scalar::Int(2))
            ]),
            TensorData::List(vec![
                TensorData::Scalar(Scalar::Int(3)),
                TensorData::Scalar(Scalar::Int(4))
            ]),
        ])
    );
    let b = Tensor::from_vec(vec![true, false], &[2]).unwrap();
    assert_eq!(
        b.to_scalars().unwrap(),
        vec![Scalar::Bool(true), Scalar::Bool(false)]
    );
    assert!(matches!(t.item(), Err(TensorError::Value(_))));
    assert_eq!(
        noncontig().to_vec::<f32>().unwrap(),
        vec![0., 1., 2., 3., 4., 5.]
    );
    assert!(meta(&[2], Float32).to_scalars().is_err());
    let h = Tensor::from_vec(vec![half::f16::from_f32(1.5)], &[]).unwrap();
    assert_eq!(h.item().unwrap(), Scalar::Float(1.5));
}

#[test]
fn add_broadcast_alpha_and_promotion() {
    let a = f32t(&[1., 2., 3.], &[3]);
    let b = f32t(&[10., 20.], &[2, 1]);
    let r = ops::add(&a, &b, None).unwrap();
    assert_eq!(r.sizes(), &[2, 3]);
    assert_eq!(vals(&r), vec![11., 12., 13., 21., 22., 23.]);
    let r = ops::sub(&a, &f32t(&[1., 1., 1.], &[3]), Some(Scalar::Int(2))).unwrap();
    assert_eq!(vals(&r), vec![-1., 0., 1.]);
    let e = ops::add(&a, &f32t(&[1.; 4], &[4]), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0"
    );
    // int tensor + python float -> float32; int + float64 tensor -> float64
    let i = i64t(&[1, 2], &[2]);
    let r = ops::add_scalar(&i, Scalar::Float(0.5), None).unwrap();
    assert_eq!((r.dtype(), vals(&r)), (Float32, vec![1.5, 2.5]));
    let r = ops::add(
        &i,
        &Tensor::from_vec(vec![1.0f64, 1.0], &[2]).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(r.dtype(), Float64);
    // zero-dim double does not upgrade a float tensor
    let z = Tensor::scalar_tensor(Scalar::Float(1.0), Float64, Device::Cpu).unwrap();
    assert_eq!(ops::mul(&a, &z).unwrap().dtype(), Float32);
    // bool + python int -> int64; int8 + python int stays int8 (wrapping)
    let bt = Tensor::from_vec(vec![true, false], &[2]).unwrap();
    assert_eq!(
        ops::add_scalar(&bt, Scalar::Int(1), None).unwrap().dtype(),
        Int64
    );
    let i8t = Tensor::from_vec(vec![127i8], &[1]).unwrap();
    let r = ops::add_scalar(&i8t, Scalar::Int(1), None).unwrap();
    assert_eq!((r.dtype(), r.to_vec_i64().unwrap()), (Int8, vec![-128]));
    // uint8 + int8 -> int16
    let u = Tensor::from_vec(vec![200u8], &[1]).unwrap();
    let s = Tensor::from_vec(vec![-1i8], &[1]).unwrap();
    let r = ops::add(&u, &s, None).unwrap();
    assert_eq!((r.dtype(), r.to_vec_i64().unwrap()), (Int16, vec![199]));
    // bool + bool stays bool
    assert_eq!(
        ops::add(&bt, &bt, None).unwrap().to_vec_bool().unwrap(),
        vec![true, false]
    );
    assert!(ops::sub(&bt, &bt, None).is_err());
    assert!(ops::add_scalar(&i, Scalar::Int(1), Some(Scalar::Float(0.5))).is_err());
}

#[test]
fn non_contiguous_and_fast_paths_agree() {
    let n = noncontig();
    let c = ops::contiguous(&n).unwrap();
    assert!(c.is_contiguous() && !c.ptr_eq(&n));
    let cc = ops::contiguous(&c).unwrap();
    assert!(cc.ptr_eq(&c), "contiguous() returns the same handle");
    for op in [
        ops::BinaryOp::Add,
        ops::BinaryOp::Sub,
        ops::BinaryOp::Mul,
        ops::BinaryOp::Div,
        ops::BinaryOp::Pow,
    ] {
        let slow = ops::binary(op, &n, &n, None).unwrap();
        let fast = ops::binary(op, &c, &c, None).unwrap();
        assert_eq!(bits(&slow), bits(&fast), "{op:?}");
        let slow = ops::binary_scalar(op, &n, Scalar::Float(1.5), None).unwrap();
        let fast = ops::binary_scalar(op, &c, Scalar::Float(1.5), None).unwrap();
        assert_eq!(bits(&slow), bits(&fast), "{op:?} scalar");
    }
    assert_eq!(
        vals(&ops::mul(&n, &n).unwrap()),
        vec![0., 1., 4., 9., 16., 25.]
    );
    for op in [
        ops::UnaryOp::Exp,
        ops::UnaryOp::Sin,
        ops::UnaryOp::Sqrt,
        ops::UnaryOp::Relu,
        ops::UnaryOp::Tanh,
    ] {
        assert_eq!(
            bits(&ops::unary(op, &n).unwrap()),
            bits(&ops::unary(op, &c).unwrap()),
            "{op:?}"
        );
    }
    // aliasing in-place: a += a
    let a = f32t(&[1., 2.], &[2]);
    ops::add_(&a, &a.clone(), None).unwrap();
    assert_eq!(vals(&a), vec![2., 4.]);
}

#[test]
fn div_pow_unary_dtypes() {
    let i = i64t(&[1, 2, 3], &[3]);
    let r = ops::div(&i, &i64t(&[2, 2, 2], &[3])).unwrap();
    assert_eq!((r.dtype(), vals(&r)), (Float32, vec![0.5, 1.0, 1.5]));
    let r = ops::pow_scalar(&i, Scalar::Int(2)).unwrap();
    assert_eq!((r.dtype(), r.to_vec_i64().unwrap()), (Int64, vec![1, 4, 9]));
    assert!(ops::pow_scalar(&i, Scalar::Int(-1)).is_err());
    assert_eq!(ops::exp(&i).unwrap().dtype(), Float32);
    assert_eq!(
        ops::neg(&i).unwrap().to_vec_i64().unwrap(),
        vec![-1, -2, -3]
    );
    assert_eq!(
        ops::abs(&i64t(&[-3], &[1])).unwrap().to_vec_i64().unwrap(),
        vec![3]
    );
    let f = f32t(&[-1., 0., 4.], &[3]);
    assert_eq!(vals(&ops::relu(&f).unwrap()), vec![0., 0., 4.]);
    assert_eq!(vals(&ops::sqrt(&f32t(&[4.], &[1])).unwrap()), vec![2.]);
    assert_eq!(vals(&ops::sigmoid(&f32t(&[0.], &[1])).unwrap()), vec![0.5]);
    assert!((vals(&ops::log(&f32t(&[1.], &[1])).unwrap())[0]).abs() < 1e-12);
    assert_eq!(vals(&ops::cos(&f32t(&[0.], &[1])).unwrap()), vec![1.]);
    let b = Tensor::from_vec(vec![true], &[1]).unwrap();
    assert!(ops::neg(&b).is_err());
    let c = Tensor::from_vec(vec![num_complex::Complex::new(3.0f32, 4.0)], &[1]).unwrap();
    let a = ops::abs(&c).unwrap();
    assert_eq!((a.dtype(), vals(&a)), (Float32, vec![5.0]));
    let m = ops::mul(&c, &c).unwrap();
    assert_eq!(m.item().unwrap(), Scalar::Complex(-7.0, 24.0));
    assert!(ops::lt(&c, &c).is_err());
    let h = Tensor::from_vec(vec![half::f16::from_f32(1.0)], &[1]).unwrap();
    let bf = Tensor::from_vec(vec![half::bf16::from_f32(2.0)], &[1]).unwrap();
    let r = ops::add(&h, &bf, None).unwrap();
    assert_eq!((r.dtype(), vals(&r)), (Float32, vec![3.0]));
}

#[test]
fn comparisons_and_where() {
    let a = f32t(&[1., 2., 3.], &[3]);
    let b = i64t(&[2], &[1]);
    assert_eq!(
        ops::lt(&a, &b).unwrap().to_vec_bool().unwrap(),
        vec![true, false, false]
    );
    assert_eq!(
        ops::le(&a, &b).unwrap().to_vec_bool().unwrap(),
        vec![true, true, false]
    );
    assert_eq!(
        ops::gt(&a, &b).unwrap().to_vec_bool().unwrap(),
        vec![false, false, true]
    );
    assert_eq!(
        ops::ge(&a, &b).unwrap().to_vec_bool().unwrap(),
        vec![false, true, true]
    );
    let e = ops::eq(&a, &b).unwrap();
    assert_eq!(
        (e.dtype(), e.to_vec_bool().unwrap()),
        (Bool, vec![false, true, false])
    );
    assert_eq!(
        ops::ne(&a, &b).unwrap().to_vec_bool().unwrap(),
        vec![true, false, true]
    );
    let nan = f32t(&[f32::NAN], &[1]);
    assert_eq!(
        ops::eq(&nan, &nan).unwrap().to_vec_bool().unwrap(),
        vec![false]
    );
    let w = ops::where_(&e, &a, &i64t(&[0, 0, 0], &[3])).unwrap();
    assert_eq!((w.dtype(), vals(&w)), (Float32, vec![0., 2., 0.]));
    let w = ops::where_scalar(&e, &i64t(&[5, 6, 7], &[3]), Scalar::Float(0.5)).unwrap();
    assert_eq!((w.dtype(), vals(&w)), (Float32, vec![0.5, 6., 0.5]));
    assert!(ops::where_(&a, &a, &a).is_err());
}

#[test]
fn reductions() {
    let t = f32t(&[1., 5., 3., 4., 2., 6.], &[2, 3]);
    assert_eq!(vals(&ops::sum(&t, None, false, None).unwrap()), vec![21.]);
    let s = ops::sum(&t, Some(&[1]), false, None).unwrap();
    assert_eq!((s.sizes().to_vec(), vals(&s)), (vec![2], vec![9., 12.]));
    let s = ops::sum(&t, Some(&[0]), true, None).unwrap();
    assert_eq!(
        (s.sizes().to_vec(), vals(&s)),
        (vec![1, 3], vec![5., 7., 9.])
    );
    let s = ops::sum(&t, Some(&[0, -1]), false, None).unwrap();
    assert_eq!((s.dim(), vals(&s)), (0, vec![21.]));
    let i = i64t(&[1, 2, 3], &[3]);
    assert_eq!(
        ops::sum(&ops::gt(&i, &i64t(&[1], &[1])).unwrap(), None, false, None)
            .unwrap()
            .item()
            .unwrap(),
        Scalar::Int(2)
    );
    assert_eq!(
        ops::sum(
            &Tensor::from_vec(vec![1i8, 2], &[2]).unwrap(),
            None,
            false,
            None
        )
        .unwrap()
        .dtype(),
        Int64
    );
    assert_eq!(
        vals(&ops::mean(&t, Some(&[1]), false, None).unwrap()),
        vec![3., 4.]
    );
    let e = ops::mean(&i, None, false, None).unwrap_err();
    assert!(e.to_string().contains("Got: Long"), "{e}");
    assert_eq!(ops::max(&t).unwrap().item().unwrap(), Scalar::Float(6.));
    assert_eq!(ops::min(&t).unwrap().item().unwrap(), Scalar::Float(1.));
    let (v, ix) = ops::max_dim(&t, 1, false).unwrap();
    assert_eq!(
        (vals(&v), ix.to_vec_i64().unwrap()),
        (vec![5., 6.], vec![1, 2])
    );
    let (v, ix) = ops::min_dim(&t, 0, true).unwrap();
    assert_eq!(
        (v.sizes().to_vec(), vals(&v), ix.to_vec_i64().unwrap()),
        (vec![1, 3], vec![1., 2., 3.], vec![0, 1, 0])
    );
    assert_eq!(
        ops::argmax(&t, None, false).unwrap().item().unwrap(),
        Scalar::Int(5)
    );
    assert_eq!(
        ops::argmax(&t, Some(0), false)
            .unwrap()
            .to_vec_i64()
            .unwrap(),
        vec![1, 0, 1]
    );
    assert_eq!(ops::argmin(&t, Some(1), true).unwrap().sizes(), &[2, 1]);
    let n = noncontig();
    assert_eq!(
        vals(&ops::sum(&n, Some(&[1]), false, None).unwrap()),
        vec![3., 12.]
    );
    assert_eq!(
        ops::argmax(&n, None, false).unwrap().item().unwrap(),
        Scalar::Int(5)
    );
    let withnan = f32t(&[1., f32::NAN, 3.], &[3]);
    assert!(vals(&ops::max(&withnan).unwrap())[0].is_nan());
    let empty = Tensor::zeros(&[0], Float32, Device::Cpu).unwrap();
    assert!(ops::max(&empty).is_err());
    assert_eq!(
        vals(&ops::sum(&empty, None, false, None).unwrap()),
        vec![0.]
    );
    assert!(ops::sum(&t, Some(&[2]), false, None).is_err());
}

#[test]
fn matmul_family() {
    let a = f32t(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
    let b = f32t(&[1., 0., 0., 1., 1., 1.], &[3, 2]);
    let r = ops::mm(&a, &b).unwrap();
    assert_eq!(
        (r.sizes().to_vec(), vals(&r)),
        (vec![2, 2], vec![4., 5., 10., 11.])
    );
    // non-contiguous operands go straight to the GEMM with strides
    let at = ops::t(&f32t(&[1., 4., 2., 5., 3., 6.], &[3, 2])).unwrap();
    assert_eq!(vals(&ops::mm(&at, &b).unwrap()), vec![4., 5., 10., 11.]);
    // other dtypes use the generic loop
    let ai = i64t(&[1, 2, 3, 4, 5, 6], &[2, 3]);
    let bi = i64t(&[1, 0, 0, 1, 1, 1], &[3, 2]);
    assert_eq!(
        ops::mm(&ai, &bi).unwrap().to_vec_i64().unwrap(),
        vec![4, 5, 10, 11]
    );
    let e = ops::mm(&a, &a).unwrap_err();
    assert_eq!(
        e.to_string(),
        "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)"
    );
    let e = ops::mm(&a, &Tensor::zeros(&[3, 2], Float64, Device::Cpu).unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected mat1 and mat2 to have the same dtype, but got: float != double"
    );
    // vector cases
    let v = f32t(&[1., 1., 1.], &[3]);
    let r = ops::matmul(&a, &v).unwrap();
    assert_eq!((r.sizes().to_vec(), vals(&r)), (vec![2], vec![6., 15.]));
    let r = ops::matmul(&f32t(&[1., 1.], &[2]), &a).unwrap();
    assert_eq!((r.sizes().to_vec(), vals(&r)), (vec![3], vec![5., 7., 9.]));
    let r = ops::matmul(&v, &v).unwrap();
    assert_eq!((r.dim(), vals(&r)), (0, vec![3.]));
    // batched with broadcasting: [2, 2, 3] @ [3, 2]
    let batch = ops::stack(&[&a, &a], 0).unwrap();
    let r = ops::matmul(&batch, &b).unwrap();
    assert_eq!(
        (r.sizes().to_vec(), vals(&r)),
        (vec![2, 2, 2], vec![4., 5., 10., 11., 4., 5., 10., 11.])
    );
    let r = ops::bmm(&batch, &ops::stack(&[&b, &b], 0).unwrap()).unwrap();
    assert_eq!(vals(&r), vec![4., 5., 10., 11., 4., 5., 10., 11.]);
    let f64r = ops::matmul(
        &ops::to(&batch, Some(Float64), None).unwrap(),
        &ops::to(&v, Some(Float64), None).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (f64r.dtype(), f64r.sizes().to_vec(), vals(&f64r)),
        (Float64, vec![2, 2], vec![6., 15., 6., 15.])
    );
    assert!(ops::matmul(
        &Tensor::scalar_tensor(Scalar::Int(1), Float32, Device::Cpu).unwrap(),
        &a
    )
    .is_err());
    assert!(ops::bmm(&a, &a).is_err());
    // meta
    let r = ops::meta::matmul(&meta(&[5, 2, 3], Float32), &meta(&[3, 4], Float32)).unwrap();
    assert_eq!((r.sizes.to_vec(), r.device), (vec![5, 2, 4], Device::Meta));
}

#[test]
fn views_share_storage() {
    let t = f32t(&[0., 1., 2., 3., 4., 5.], &[2, 3]);
    let v = ops::view(&t, &[3, -1]).unwrap();
    assert_eq!(v.sizes(), &[3, 2]);
    ops::fill_(&ops::select(&v, 0, 0).unwrap(), Scalar::Int(9)).unwrap();
    assert_eq!(vals(&t)[..2], [9., 9.]);
    let tr = ops::transpose(&t, 0, 1).unwrap();
    assert_eq!(
        (tr.sizes().to_vec(), tr.strides().to_vec()),
        (vec![3, 2], vec![1, 3])
    );
    let e = ops::view(&tr, &[6]).unwrap_err();
    assert!(e.to_string().starts_with("view size is not compatible"));
    let r = ops::reshape(&tr, &[6]).unwrap();
    assert!(!r.storage().ptr_eq(&t.storage()));
    assert_eq!(vals(&r), vec![9., 3., 9., 4., 2., 5.]);
    assert!(ops::reshape(&t, &[-1])
        .unwrap()
        .storage()
        .ptr_eq(&t.storage()));
    assert!(ops::view(&t, &[4, -1])
        .unwrap_err()
        .to_string()
        .contains("shape '[4, -1]' is invalid for input of size 6"));
    assert!(ops::view(&t, &[-1, -1]).is_err());
    let p = ops::permute(&ops::unsqueeze(&t, 0).unwrap(), &[2, 0, 1]).unwrap();
    assert_eq!(p.sizes(), &[3, 1, 2]);
    assert!(ops::permute(&t, &[0, 0]).is_err());
    assert_eq!(ops::squeeze(&p, None).unwrap().sizes(), &[3, 2]);
    assert_eq!(ops::squeeze(&p, Some(0)).unwrap().sizes(), &[3, 1, 2]);
    assert_eq!(ops::unsqueeze(&t, -1).unwrap().sizes(), &[2, 3, 1]);
    let ex = ops::expand(&f32t(&[1., 2., 3.], &[3]), &[2, -1]).unwrap();
    assert_eq!(
        (ex.sizes().to_vec(), ex.strides().to_vec()),
        (vec![2, 3], vec![0, 1])
    );
    assert_eq!(vals(&ex), vec![1., 2., 3., 1., 2., 3.]);
    let e = ops::expand(&f32t(&[1., 2., 3.], &[3]), &[2, 4]).unwrap_err();
    assert_eq!(e.to_string(), "The expanded size of the tensor (4) must match the existing size (3) at non-singleton dimension 1.  Target sizes: [2, 4].  Tensor sizes: [3]");
    assert_eq!(ops::flatten(&p, 0, -1).unwrap().sizes(), &[6]);
    let e = ops::transpose(&t, 0, 2).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dimension out of range (expected to be in range of [-2, 1], but got 2)"
    );
}

#[test]
fn indexing() {
    let t = Tensor::arange(
        Scalar::Int(0),
        Scalar::Int(12),
        Scalar::Int(1),
        None,
        Device::Cpu,
    )
    .unwrap();
    let t = ops::view(&t, &[3, 4]).unwrap();
    let r = ops::index(&t, &[TensorIndex::Int(-1)]).unwrap();
    assert_eq!(r.to_vec_i64().unwrap(), vec![8, 9, 10, 11]);
    let r = ops::index(
        &t,
        &[
            TensorIndex::Ellipsis,
            TensorIndex::Slice {
                start: Some(1),
                stop: None,
                step: 2,
            },
        ],
    )
    .unwrap();
    assert_eq!(
        (r.sizes().to_vec(), r.to_vec_i64().unwrap()),
        (vec![3, 2], vec![1, 3, 5, 7, 9, 11])
    );
    let r = ops::index(
        &t,
        &[
            TensorIndex::None,
            TensorIndex::Slice {
                start: Some(-2),
                stop: Some(100),
                step: 1,
            },
            TensorIndex::Int(0),
        ],
    )
    .unwrap();
    assert_eq!(
        (r.sizes().to_vec(), r.to_vec_i64().unwrap()),
        (vec![1, 2], vec![4, 8])
    );
    let e = ops::index(&t, &[TensorIndex::Int(3)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "index 3 is out of bounds for dimension 0 with size 3"
    );
    assert!(ops::index(&t, &[TensorIndex::Int(0); 3]).is_err());
    let e = ops::select(&t, 1, 4).unwrap_err();
    assert_eq!(
        e.to_string(),
        "select(): index 4 out of range for tensor of size [3, 4] at dimension 1"
    );
    ops::index_put_(
        &t,
        &[
            TensorIndex::Slice {
                start: None,
                stop: None,
                step: 1,
            },
            TensorIndex::Int(0),
        ],
        &Tensor::wrapped_scalar(Scalar::Int(-1)),
    )
    .unwrap();
    assert_eq!(
        ops::index(&t, &[TensorIndex::Ellipsis, TensorIndex::Int(0)])
            .unwrap()
            .to_vec_i64()
            .unwrap(),
        vec![-1, -1, -1]
    );
    let s = ops::slice(&t, 1, Some(3), Some(1), 1).unwrap();
    assert_eq!(s.sizes(), &[3, 0]);
    let n = ops::narrow(&t, 0, 1, 2).unwrap();
    assert_eq!(n.sizes(), &[2, 4]);
}

#[test]
fn copy_fill_clone_to() {
    let dst = Tensor::zeros(&[2, 3], Int32, Device::Cpu).unwrap();
    ops::copy_(&dst, &f32t(&[1.7, -2.7, 3.2], &[3])).unwrap();
    assert_eq!(dst.to_vec_i64().unwrap(), vec![1, -2, 3, 1, -2, 3]);
    let col = ops::select(&dst, 1, 0).unwrap();
    ops::zero_(&col).unwrap();
    assert_eq!(dst.to_vec_i64().unwrap(), vec![0, -2, 3, 0, -2, 3]);
    assert!(ops::copy_(&col, &f32t(&[1., 2., 3.], &[3])).is_err());
    let c = ops::clone(&noncontig()).unwrap();
    assert!(c.is_contiguous());
    assert_eq!(vals(&c), vec![0., 1., 2., 3., 4., 5.]);
    let same = ops::to(&c, Some(Float32), Some(Device::Cpu)).unwrap();
    assert!(same.ptr_eq(&c));
    let d = ops::to(&c, Some(Float64), None).unwrap();
    assert_eq!((d.dtype(), vals(&d)), (Float64, vals(&c)));
    let b = ops::to(&c, Some(Bool), None).unwrap();
    assert_eq!(
        b.to_vec_bool().unwrap(),
        vec![false, true, true, true, true, true]
    );
    let m = ops::meta::to(&c, None, Some(Device::Meta)).unwrap();
    assert_eq!((m.device, m.sizes.to_vec()), (Device::Meta, vec![2, 3]));
    // The runtime's loops are CPU loops: a Meta tensor has no data to read.
    let m = m.empty().unwrap();
    assert!(ops::to(&m, Some(Float64), Some(Device::Cpu)).is_err());
    let e = ops::to(&c, None, Some(Device::Cuda(0))).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Found no NVIDIA driver on your system."),
        "{e}"
    );
    let t = Tensor::zeros(&[2], Float32, Device::Cpu).unwrap();
    t.fill_(Scalar::Float(0.5)).unwrap();
    assert_eq!(vals(&t), vec![0.5, 0.5]);
}

#[test]
fn cat_and_stack() {
    let a = f32t(&[1., 2.], &[1, 2]);
    let b = i64t(&[3, 4, 5, 6], &[2, 2]);
    let r = ops::cat(&[&a, &b], 0).unwrap();
    assert_eq!(
        (r.dtype(), r.sizes().to_vec(), vals(&r)),
        (Float32, vec![3, 2], vec![1., 2., 3., 4., 5., 6.])
    );
    let r = ops::cat(&[&b, &b], 1).unwrap();
    assert_eq!(
        (r.sizes().to_vec(), r.to_vec_i64().unwrap()),
        (vec![2, 4], vec![3, 4, 3, 4, 5, 6, 5, 6])
    );
    let e = ops::cat(&[&a, &b], 1).unwrap_err();
    assert_eq!(e.to_string(), "Sizes of tensors must match except in dimension 1. Expected size 1 but got size 2 for tensor number 1 in the list.");
    let empty = Tensor::zeros(&[0], Float32, Device::Cpu).unwrap();
    assert_eq!(ops::cat(&[&empty, &a], 0).unwrap().sizes(), &[1, 2]);
    assert!(ops::cat(&[], 0).is_err());
    let s = ops::stack(&[&a, &a], 1).unwrap();
    assert_eq!(
        (s.sizes().to_vec(), vals(&s)),
        (vec![1, 2, 2], vec![1., 2., 1., 2.])
    );
    let e = ops::stack(&[&a, &b], 0).unwrap_err();
    assert_eq!(e.to_string(), "stack expects each tensor to be equal size, but got [1, 2] at entry 0 and [2, 2] at entry 1");
    let (m, _, _) = ops::meta::cat(&[&meta(&[2, 3], Float32), &meta(&[4, 3], Float32)], 0).unwrap();
    assert_eq!((m.sizes.to_vec(), m.device), (vec![6, 3], Device::Meta));
}

/// The meta functions size every output without data (the Meta backend's kernels are these
/// plus an allocation; `opdispatch-aten`'s tests run them through the dispatcher).
#[test]
fn meta_functions_compute_metadata_only() {
    use opdispatch_tensor::ops::{BinaryOp, UnaryOp};
    use ops::meta::{self, OutputSpec};
    let a = meta(&[2, 1, 3], Float32);
    let b = meta(&[4, 1], Int64);
    let r = meta::binary(BinaryOp::Add, &a, &b, None).unwrap().out;
    assert_eq!(
        (r.sizes.to_vec(), r.dtype, r.device),
        (vec![2, 4, 3], Float32, Device::Meta)
    );
    assert_eq!(
        meta::binary(BinaryOp::Div, &b, &b, None).unwrap().out.dtype,
        Float32
    );
    let lt = meta::binary(BinaryOp::Lt, &a, &b, None).unwrap();
    assert_eq!((lt.out.dtype, lt.compute), (Bool, Float32));
    assert_eq!(meta::unary(UnaryOp::Exp, &b).unwrap().dtype, Float32);
    let s1 = Tensor::wrapped_scalar(Scalar::Float(1.0));
    assert_eq!(
        meta::binary(BinaryOp::Add, &b, &s1, None)
            .unwrap()
            .out
            .dtype,
        Float32
    );
    assert_eq!(
        meta::sum(&a, Some(&[2]), false, None)
            .unwrap()
            .out
            .sizes
            .to_vec(),
        vec![2, 1]
    );
    assert_eq!(meta::sum(&b, None, false, None).unwrap().out.dtype, Int64);
    assert_eq!(
        meta::mean(&a, None, true, None).unwrap().out.sizes.to_vec(),
        vec![1, 1, 1]
    );
    let v = meta::extreme(&a, Some(0), false, "max").unwrap();
    assert_eq!((v.out.sizes.to_vec(), v.group), (vec![1, 3], 2));
    assert_eq!(
        meta::arg_extreme(&a, None, false, "argmax")
            .unwrap()
            .sizes
            .len(),
        0
    );
    assert_eq!(
        meta::arg_extreme(&a, None, true, "argmax")
            .unwrap()
            .sizes
            .to_vec(),
        vec![1, 1, 1]
    );
    let w = meta::where_(&meta(&[3], Bool), &a, &b).unwrap();
    assert_eq!(w.sizes.to_vec(), vec![2, 4, 3]);
    assert!(
        meta::binary(BinaryOp::Add, &a, &f32t(&[1., 2., 3.], &[3]), None)
            .unwrap_err()
            .to_string()
            .contains("meta and cpu")
    );
    // CPU scalars mix with meta, like CPU scalars with CUDA in PyTorch
    let s = Tensor::scalar_tensor(Scalar::Int(1), Float32, Device::Cpu).unwrap();
    let r: OutputSpec = meta::binary(BinaryOp::Add, &a, &s, None).unwrap().out;
    assert_eq!(r.device, Device::Meta);
    assert!(a.item().is_err());
    // The CPU loops refuse Meta tensors instead of inventing data.
    assert!(ops::add(&a, &a, None).is_err());
    let big = meta(&[1 << 20, 1 << 20], Float32);
    assert_eq!(
        ops::transpose(&big, 0, 1).unwrap().sizes(),
        &[1 << 20, 1 << 20]
    );
}

#[test]
fn key_sets() {
    use opdispatch_keys::DispatchKey;
    let t = Tensor::zeros(&[1], Float32, Device::Cpu).unwrap();
    let ks = t.key_set();
    for k in [
        DispatchKey::CPU,
        DispatchKey::ADInplaceOrView,
        DispatchKey::AutogradCPU,
        DispatchKey::AutocastCPU,
    ] {
        assert!(ks.has(k), "{k:?}");
    }
    assert!(!ks.has(DispatchKey::Python));
    t.set_python_dispatch(true);
    assert!(
        t.key_set().has(DispatchKey::Python) && t.key_set().has(DispatchKey::PythonTLSSnapshot)
    );
    t.set_python_dispatch(false);
    assert_eq!(t.key_set(), ks);
    let m = meta(&[1], Float32).key_set();
    assert!(
        m.has(DispatchKey::Meta) && m.has(DispatchKey::AutogradMeta) && !m.has(DispatchKey::CPU)
    );
    let c = opdispatch_tensor::compute_key_set(Device::Cuda(0));
    assert!(
        c.has(DispatchKey::CUDA)
            && c.has(DispatchKey::AutogradCUDA)
            && c.has(DispatchKey::AutocastCUDA)
    );
}

#[test]
fn fill_of_contiguous_views_writes_exactly_their_elements() {
    // Lengths around the doubling steps, every element width, and a view that starts inside
    // its storage (a row of a matrix): the elements before and after keep their values.
    for dtype in [Bool, UInt8, Int16, Int32, Int64, Float16, Float32, Float64] {
        for n in [1usize, 2, 3, 7, 8, 9, 1000, 1025] {
            let m = Tensor::zeros(&[3, n], dtype, Device::Cpu).unwrap();
            let row = ops::select(&m, 0, 1).unwrap();
            assert!(row.is_contiguous() && row.storage_offset() == n);
            row.fill_(Scalar::Int(3)).unwrap();
            let want = if dtype == Bool { 1.0 } else { 3.0 };
            let got = vals(&m);
            assert!(got[..n].iter().all(|&v| v == 0.0), "{dtype:?} {n}: before");
            assert!(
                got[n..2 * n].iter().all(|&v| v == want),
                "{dtype:?} {n}: row"
            );
            assert!(
                got[2 * n..].iter().all(|&v| v == 0.0),
                "{dtype:?} {n}: after"
            );
        }
    }
    // A pattern whose bytes differ, and one whose bytes agree (a single memset).
    let t = Tensor::zeros(&[5], Float64, Device::Cpu).unwrap();
    t.fill_(Scalar::Float(-1.5)).unwrap();
    assert_eq!(vals(&t), vec![-1.5; 5]);
    let t = Tensor::zeros(&[5], Int32, Device::Cpu).unwrap();
    t.fill_(Scalar::Int(-1)).unwrap();
    assert_eq!(t.to_vec_i64().unwrap(), vec![-1; 5]);
    // Non-contiguous views still fill element by element.
    let m = Tensor::zeros(&[3, 4], Int64, Device::Cpu).unwrap();
    ops::select(&m, 1, 2)
        .unwrap()
        .fill_(Scalar::Int(9))
        .unwrap();
    assert_eq!(
        m.to_vec_i64().unwrap(),
        vec![0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 9, 0]
    );
}

#[test]
fn large_arange_values() {
    let n = 100_003i64;
    let a = Tensor::arange(
        Scalar::Int(-7),
        Scalar::Int(-7 + 3 * n),
        Scalar::Int(3),
        None,
        Device::Cpu,
    )
    .unwrap();
    let v = a.to_vec_i64().unwrap();
    assert_eq!(v.len() as i64, n);
    assert!(v.iter().enumerate().all(|(i, &x)| x == -7 + 3 * i as i64));
    // Float bounds with an integral dtype convert each value as a float scalar would.
    let a = Tensor::arange(
        Scalar::Float(0.5),
        Scalar::Float(40_000.0),
        Scalar::Float(0.75),
        Some(Int32),
        Device::Cpu,
    )
    .unwrap();
    let v = a.to_vec_i64().unwrap();
    assert!(v
        .iter()
        .enumerate()
        .all(|(i, &x)| x == (0.5 + i as f64 * 0.75) as i64));
}

/// `a @ b` by the definition, in f64, for row-major [bs, m, k] x [bs, k, n] data.
fn reference_bmm(a: &[f64], b: &[f64], bs: usize, m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; bs * m * n];
    for bi in 0..bs {
        for i in 0..m {
            for j in 0..n {
                out[(bi * m + i) * n + j] = (0..k)
                    .map(|kk| a[(bi * m + i) * k + kk] * b[(bi * k + kk) * n + j])
                    .sum();
            }
        }
    }
    out
}

#[test]
fn large_products_split_over_threads_match_the_definition() {
    // Above the threading threshold (m*n*k >= 16 * GRAIN_SIZE), with fewer batches than threads
    // (rows split inside a batch, odd row counts) and more (whole batches per thread), with a
    // transposed right operand.
    let before = opdispatch_tensor::get_num_threads();
    opdispatch_tensor::set_num_threads(2);
    for &(bs, m, k, n) in &[(1, 101, 90, 70), (3, 67, 80, 110), (1, 7, 300, 300)] {
        let av: Vec<f64> = (0..bs * m * k)
            .map(|i| ((i * 7919) % 23) as f64 - 11.0)
            .collect();
        let bv: Vec<f64> = (0..bs * k * n)
            .map(|i| ((i * 104729) % 19) as f64 - 9.0)
            .collect();
        let want = reference_bmm(&av, &bv, bs, m, k, n);
        let a = Tensor::from_vec(av.clone(), &[bs, m, k]).unwrap();
        // The same values through a transposed layout: b^T stored contiguously, viewed back.
        let mut bt = vec![0.0; bs * k * n];
        for bi in 0..bs {
            for kk in 0..k {
                for j in 0..n {
                    bt[(bi * n + j) * k + kk] = bv[(bi * k + kk) * n + j];
                }
            }
        }
        let b = ops::transpose(&Tensor::from_vec(bt, &[bs, n, k]).unwrap(), 1, 2).unwrap();
        assert!(!b.is_contiguous());
        for dtype in [Float64, Float32] {
            let r = ops::bmm(
                &ops::to(&a, Some(dtype), None).unwrap(),
                &ops::to(&b, Some(dtype), None).unwrap(),
            )
            .unwrap();
            assert_eq!(r.sizes(), &[bs, m, n]);
            assert_eq!(vals(&r), want, "{dtype:?} {bs}x{m}x{k}x{n}");
        }
    }
    opdispatch_tensor::set_num_threads(before);
}
