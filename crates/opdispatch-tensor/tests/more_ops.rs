//! The second batch of CPU loops (`ops/*_more.rs`) against hand-computed values, on both the
//! contiguous float32 fast path and the strided/dtype-generic path.

use opdispatch_tensor::ops::{self, meta, BinaryMore, MathOp};
use opdispatch_tensor::{Device, Scalar, ScalarType, Tensor};

fn f32s(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

fn i64s(v: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

#[test]
fn rounding_fast_and_strided_paths_agree() {
    let x = f32s(&[-1.5, -0.5, 0.5, 1.5, 2.5, -2.7], &[2, 3]);
    let r = ops::math_unary(MathOp::Round, &x).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![-2., -0., 0., 2., 2., -3.]);
    // The transpose is not contiguous: the generic path.
    let xt = ops::transpose(&x, 0, 1).unwrap();
    let r = ops::math_unary(MathOp::Floor, &xt).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![-2., 1., -1., 2., 0., -3.]);
    let r = ops::math_unary(MathOp::Trunc, &x).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![-1., -0., 0., 1., 2., -2.]);
    let r = ops::math_unary(MathOp::Sign, &f32s(&[-3., 0., 2.], &[3])).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![-1., 0., 1.]);
    // Integers: rounding is a copy, transcendentals go to float32.
    let i = i64s(&[-2, 4], &[2]);
    let r = ops::math_unary(MathOp::Ceil, &i).unwrap();
    assert_eq!(
        (r.dtype(), r.to_vec_i64().unwrap()),
        (ScalarType::Int64, vec![-2, 4])
    );
    let r = ops::math_unary(MathOp::Rsqrt, &i64s(&[4], &[1])).unwrap();
    assert_eq!(
        (r.dtype(), r.to_vec::<f32>().unwrap()),
        (ScalarType::Float32, vec![0.5])
    );
    let e = ops::math_unary(MathOp::Frac, &i).unwrap_err();
    assert_eq!(e.to_string(), "\"frac_cpu\" not implemented for 'Long'");
}

#[test]
fn transcendentals_and_predicates() {
    let x = Tensor::from_vec(vec![0.5f64, 1.0], &[2]).unwrap();
    let v = |op| ops::math_unary(op, &x).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(v(MathOp::Log2), vec![-1.0, 0.0]);
    let near = |a: Vec<f64>, b: [f64; 2]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-15);
    assert!(near(v(MathOp::Exp2), [2f64.sqrt(), 2.0]));
    assert!(near(v(MathOp::Log1p), [1.5f64.ln(), 2f64.ln()]));
    assert!((v(MathOp::Erf)[1] - 0.842_700_792_949_714_9).abs() < 1e-15);
    let n = f32s(&[1., f32::NAN, f32::INFINITY], &[3]);
    let p = |op| ops::math_unary(op, &n).unwrap().to_vec_bool().unwrap();
    assert_eq!(p(MathOp::IsNan), vec![false, true, false]);
    assert_eq!(p(MathOp::IsInf), vec![false, false, true]);
    assert_eq!(p(MathOp::IsFinite), vec![true, false, false]);
    let r = ops::nan_to_num(&n, None, Some(7.0), None).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![1., 0., 7.]);
}

#[test]
fn remainder_family_follows_python_and_c() {
    let a = f32s(&[5., -5., 5., -5.], &[4]);
    let b = f32s(&[3., 3., -3., -3.], &[4]);
    let v = |op| {
        ops::binary_more(op, &a, &b)
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(v(BinaryMore::Remainder), vec![2., 1., -1., -2.]);
    assert_eq!(v(BinaryMore::Fmod), vec![2., -2., 2., -2.]);
    assert_eq!(v(BinaryMore::FloorDivide), vec![1., -2., -2., 1.]);
    let i = i64s(&[7, -7], &[2]);
    let r = ops::binary_more_scalar(BinaryMore::FloorDivide, &i, Scalar::Int(2)).unwrap();
    assert_eq!(r.to_vec_i64().unwrap(), vec![3, -4]);
    let e = ops::binary_more_scalar(BinaryMore::Remainder, &i, Scalar::Int(0)).unwrap_err();
    assert_eq!(e.to_string(), "ZeroDivisionError");
    let r = ops::binary_more(BinaryMore::LogicalXor, &i, &i64s(&[0, 3], &[2])).unwrap();
    assert_eq!(r.to_vec_bool().unwrap(), vec![true, false]);
}

#[test]
fn clamp_promotes_and_propagates_nan() {
    let x = i64s(&[-3, 1, 9], &[3]);
    let lo = Tensor::wrapped_scalar(Scalar::Int(0));
    let hi = Tensor::wrapped_scalar(Scalar::Float(2.5));
    let r = ops::clamp(&x, Some(&lo), Some(&hi)).unwrap();
    assert_eq!(
        (r.dtype(), r.to_vec::<f32>().unwrap()),
        (ScalarType::Float32, vec![0., 1., 2.5])
    );
    let n = f32s(&[f32::NAN], &[1]);
    assert!(ops::clamp(&n, Some(&lo), None)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()[0]
        .is_nan());
    assert_eq!(
        ops::clamp(&x, None, None).unwrap_err().to_string(),
        "torch.clamp: At least one of 'min' or 'max' must not be None"
    );
}

#[test]
fn reductions_and_scans() {
    let x = f32s(&[1., 5., 3., 4., 2., 6.], &[2, 3]);
    assert_eq!(
        ops::amax_amin(&x, &[1], false, true)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![5., 6.]
    );
    assert_eq!(
        ops::amax_amin(&x, &[], false, false)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![1.]
    );
    assert_eq!(
        ops::prod(&x, Some(0), false, None)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![4., 10., 18.]
    );
    assert_eq!(
        ops::cumulative(&x, 0, None, false)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![1., 5., 3., 5., 7., 9.]
    );
    assert_eq!(
        ops::cumulative(&x, 1, None, true)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![1., 5., 15., 4., 8., 48.]
    );
    let v = ops::var_std(&f32s(&[1., 2., 3., 4.], &[4]), None, 1.0, false, false).unwrap();
    assert!((v.to_vec::<f32>().unwrap()[0] - 5.0 / 3.0).abs() < 1e-6);
    let s = ops::softmax(&f32s(&[0., 3f32.ln()], &[2]), 0, false, false).unwrap();
    let s = s.to_vec::<f32>().unwrap();
    assert!((s[0] - 0.25).abs() < 1e-6 && (s[1] - 0.75).abs() < 1e-6);
    let l = ops::logsumexp(&f32s(&[0., 0.], &[2]), &[0], false).unwrap();
    assert!((l.to_vec::<f32>().unwrap()[0] - 2f32.ln()).abs() < 1e-6);
    let b = Tensor::from_vec(vec![true, false], &[2]).unwrap();
    assert_eq!(
        ops::all_any(&b, None, false, true)
            .unwrap()
            .to_vec_bool()
            .unwrap(),
        vec![true]
    );
    assert_eq!(
        ops::all_any(&b, None, false, false)
            .unwrap()
            .to_vec_bool()
            .unwrap(),
        vec![false]
    );
}

#[test]
fn indexing_and_rearranging() {
    let x = i64s(&[1, 2, 3, 4, 5, 6], &[2, 3]);
    let r = ops::index_select(&x, 1, &i64s(&[2, 0], &[2])).unwrap();
    assert_eq!(r.to_vec_i64().unwrap(), vec![3, 1, 6, 4]);
    let r = ops::gather(&x, 0, &i64s(&[1, 0, 1], &[1, 3])).unwrap();
    assert_eq!(r.to_vec_i64().unwrap(), vec![4, 2, 6]);
    let z = Tensor::zeros(&[2, 2], ScalarType::Int64, Device::Cpu).unwrap();
    let r = ops::scatter(
        &z,
        1,
        &i64s(&[1, 0], &[2, 1]),
        Some(&i64s(&[7, 8], &[2, 1])),
        None,
    )
    .unwrap();
    assert_eq!(r.to_vec_i64().unwrap(), vec![0, 7, 8, 0]);
    assert_eq!(
        ops::flip(&x, &[1]).unwrap().to_vec_i64().unwrap(),
        vec![3, 2, 1, 6, 5, 4]
    );
    assert_eq!(
        ops::roll(&x, &[-1], &[1]).unwrap().to_vec_i64().unwrap(),
        vec![2, 3, 1, 5, 6, 4]
    );
    assert_eq!(
        ops::triangle(&x, 0, false).unwrap().to_vec_i64().unwrap(),
        vec![1, 2, 3, 0, 5, 6]
    );
    assert_eq!(ops::diag(&x, -1).unwrap().to_vec_i64().unwrap(), vec![4]);
    let (v, i) = ops::sort_topk(&f32s(&[3., 1., 2.], &[3]), 0, true, Some(2)).unwrap();
    assert_eq!(
        (v.to_vec::<f32>().unwrap(), i.to_vec_i64().unwrap()),
        (vec![3., 2.], vec![0, 2])
    );
    assert_eq!(
        meta::topk(&x, 4, 1).unwrap_err().to_string(),
        "selected index k out of range"
    );
}
