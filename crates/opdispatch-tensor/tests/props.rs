//! Property tests: view/reshape geometry and strided vs contiguous kernels.
use opdispatch_tensor::ops;
use opdispatch_tensor::{Scalar, Tensor};
use proptest::prelude::*;

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..4, 1..4)
}

proptest! {
    #[test]
    fn broadcast_is_symmetric(a in shape(), b in shape()) {
        let ab = ops::broadcast_shapes(&a, &b).map_err(|e| e.to_string());
        let ba = ops::broadcast_shapes(&b, &a).map_err(|e| e.to_string());
        prop_assert_eq!(ab.is_ok(), ba.is_ok());
        if let (Ok(x), Ok(y)) = (ab, ba) { prop_assert_eq!(x, y); }
    }

    #[test]
    fn reshape_round_trips_values(s in shape()) {
        let n: usize = s.iter().product();
        let t = Tensor::from_vec((0..n).map(|i| i as f32).collect(), &s).unwrap();
        let flat = ops::reshape(&t, &[-1]).unwrap();
        prop_assert!(flat.storage().ptr_eq(&t.storage()));
        let back: Vec<i64> = s.iter().map(|&x| x as i64).collect();
        prop_assert_eq!(ops::view(&flat, &back).unwrap().to_vec_f64().unwrap(), t.to_vec_f64().unwrap());
        // Reversing the dims and reshaping copies when it must, but keeps row-major order.
        let rev: Vec<i64> = (0..s.len() as i64).rev().collect();
        let p = ops::permute(&t, &rev).unwrap();
        let r = ops::reshape(&p, &[-1]).unwrap();
        prop_assert_eq!(r.to_vec_f64().unwrap(), ops::contiguous(&p).unwrap().to_vec_f64().unwrap());
    }

    #[test]
    fn strided_matches_contiguous(s in shape(), k in -3.0f64..3.0) {
        let n: usize = s.iter().product();
        let t = Tensor::from_vec((0..n).map(|i| i as f32 * 0.5 - 1.0).collect(), &s).unwrap();
        let rev: Vec<i64> = (0..s.len() as i64).rev().collect();
        let p = ops::permute(&t, &rev).unwrap();
        let c = ops::contiguous(&p).unwrap();
        let a = ops::add_scalar(&p, Scalar::Float(k), Some(Scalar::Int(2))).unwrap();
        let b = ops::add_scalar(&c, Scalar::Float(k), Some(Scalar::Int(2))).unwrap();
        prop_assert_eq!(a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
        let a = ops::mul(&p, &p).unwrap();
        let b = ops::mul(&c, &c).unwrap();
        prop_assert_eq!(a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
        let a = ops::sum(&p, Some(&[0]), false, None).unwrap();
        let b = ops::sum(&c, Some(&[0]), false, None).unwrap();
        prop_assert_eq!(a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    }
}
