//! Checkable statements of spec 1.4-1.8 (bit layout, quirks, iteration,
//! printing, parsing, runtime table layout, named sets, alias expansion).

use opdispatch_keys::*;
use BackendComponent as B;
use DispatchKey as K;

fn ks(keys: &[K]) -> DispatchKeySet {
    DispatchKeySet::from_keys(keys)
}

// ----- 1.4 layout -----------------------------------------------------------

#[test]
fn backend_bits() {
    assert_eq!(
        DispatchKeySet::from_backend(B::InvalidBit),
        DispatchKeySet::EMPTY
    );
    assert_eq!(DispatchKeySet::from_backend(B::CPUBit).raw_repr(), 1);
    assert_eq!(DispatchKeySet::from_backend(B::MetaBit).raw_repr(), 1 << 15);
    for &b in &B::ALL[1..] {
        assert_eq!(
            DispatchKeySet::from_backend(b).raw_repr(),
            1u64 << (b as u8 - 1)
        );
    }
    assert_eq!(FULL_BACKEND_MASK, 0xFFFF);
    assert_eq!(BACKEND_BITSET_MASK.raw_repr(), 0xFFFF);
}

#[test]
fn functionality_bits() {
    assert_eq!(
        DispatchKeySet::from_key(K::Undefined),
        DispatchKeySet::EMPTY
    );
    assert_eq!(DispatchKeySet::from_key(K::Dense).raw_repr(), 1 << 16);
    assert_eq!(
        DispatchKeySet::from_key(K::PythonDispatcher).raw_repr(),
        1 << (16 + 46 - 1)
    );
    for v in 1..NUM_FUNCTIONALITY_KEYS as u16 {
        let k = K::from_u16(v).unwrap();
        assert_eq!(
            DispatchKeySet::from_key(k).raw_repr(),
            1u64 << (16 + v - 1),
            "{k:?}"
        );
    }
    // Per-backend runtime key = functionality bit | backend bit.
    assert_eq!(
        DispatchKeySet::from_key(K::AutogradCPU).raw_repr(),
        68719476737
    );
    assert_eq!(
        DispatchKeySet::from_key(K::SparseCUDA),
        ks(&[K::Sparse]) | DispatchKeySet::from_backend(B::CUDABit)
    );
    // StartOf* sets only the functionality bit.
    assert_eq!(
        DispatchKeySet::from_key(K::StartOfQuantizedBackends),
        ks(&[K::Quantized])
    );
    // Aliases are never members.
    for &a in K::ALIASES {
        assert!(a.is_alias());
        assert_eq!(DispatchKeySet::from_key(a), DispatchKeySet::EMPTY, "{a:?}");
    }
    // Bit 63 is never used.
    assert_eq!(DispatchKeySet::FULL.raw_repr() >> 62, 0);
    assert_eq!(DispatchKeySet::FULL.raw_repr(), (1u64 << 62) - 1);
    assert_eq!(DispatchKeySet::default(), DispatchKeySet::EMPTY);
    assert_eq!(DispatchKeySet::EMPTY.raw_repr(), 0);
}

#[test]
fn from_raw_roundtrip_and_from_keys() {
    let s = DispatchKeySet::from_raw_repr(0xDEAD_BEEF);
    assert_eq!(s.raw_repr(), 0xDEAD_BEEF);
    assert_eq!(
        ks(&[K::CPU, K::AutogradCUDA]),
        DispatchKeySet::from_key(K::CPU) | DispatchKeySet::from_key(K::AutogradCUDA)
    );
    assert_eq!(ks(&[]), DispatchKeySet::EMPTY);
    let collected: DispatchKeySet = [K::CPU, K::Python].into_iter().collect();
    assert_eq!(collected, ks(&[K::CPU, K::Python]));
    assert_eq!(
        DispatchKeySet::from_backends(&[B::CPUBit, B::CUDABit]).raw_repr(),
        0b11
    );
}

#[test]
fn full_after() {
    let s = DispatchKeySet::full_after(K::AutogradOther);
    assert!(s.has_all(BACKEND_BITSET_MASK));
    assert!(s.has(K::PythonDispatcher));
    assert!(!s.has(K::AutogradOther));
    assert!(!s.has(K::AutogradCPU));
    for v in 1..NUM_FUNCTIONALITY_KEYS as u16 {
        let k = K::from_u16(v).unwrap();
        let expect = k < K::AutogradOther || k == K::PythonDispatcher;
        assert_eq!(s.has(k), expect, "{k:?}");
    }
    assert_eq!(AFTER_AUTOGRAD_KEYSET, s);
    assert!(AFTER_AD_INPLACE_OR_VIEW_KEYSET.has(K::ZeroTensor));
    assert!(!AFTER_AD_INPLACE_OR_VIEW_KEYSET.has(K::ADInplaceOrView));
    assert!(!AFTER_FUNC_KEYSET.has(K::Functionalize));
    assert!(AFTER_FUNC_KEYSET.has(K::FuncTorchDynamicLayerBackMode));
    assert!(AFTER_FUNC_KEYSET.has(K::PythonDispatcher));
    assert!(!AFTER_FUNC_KEYSET.has(K::ADInplaceOrView));
}

// ----- 1.4 operations and quirks ----------------------------------------------

#[test]
fn has_is_cross_product() {
    let s = ks(&[K::CPU, K::AutogradCUDA]);
    assert!(s.has(K::CPU) && s.has(K::AutogradCUDA));
    assert!(s.has(K::CUDA));
    assert!(s.has(K::AutogradCPU));
    assert!(s.has(K::Dense) && s.has(K::AutogradFunctionality));
    assert!(!s.has(K::SparseCPU));
    assert!(s.has_backend(B::CPUBit) && s.has_backend(B::CUDABit) && !s.has_backend(B::MetaBit));
    assert!(!s.has_backend(B::InvalidBit));
    assert!(s.has_any(ks(&[K::Dense])));
    assert!(!s.has_any(ks(&[K::Python])));
    assert!(s.is_superset_of(ks(&[K::CUDA])));
    assert!(s.has_all(ks(&[K::AutogradCPU, K::CUDA])));
}

#[test]
fn remove_clears_only_functionality_bit() {
    let s = ks(&[K::CPU, K::ADInplaceOrView, K::AutogradCPU, K::AutogradCUDA]);
    let r = s.remove(K::AutogradCPU);
    assert!(
        !r.has(K::AutogradCUDA),
        "removes autograd for every backend"
    );
    assert!(r.has_backend(B::CPUBit) && r.has_backend(B::CUDABit));
    assert!(r.has(K::CPU) && r.has(K::CUDA));
    assert_eq!(r, ks(&[K::CPU, K::CUDA, K::ADInplaceOrView]));
    // Removing a non-per-backend key.
    assert_eq!(r.remove(K::ADInplaceOrView), ks(&[K::CPU, K::CUDA]));
    // Removing an alias or Undefined is a no-op.
    assert_eq!(r.remove(K::Autograd), r);
    assert_eq!(r.remove(K::Undefined), r);
}

#[test]
fn sub_keeps_backend_bits() {
    let a = ks(&[K::CPU, K::AutogradCPU]);
    let d = a - ks(&[K::CPU]);
    assert_eq!(d, ks(&[K::AutogradCPU]));
    assert!(d.has_backend(B::CPUBit));
    assert_eq!(a - a, BACKEND_BITSET_MASK & a);
    let mut m = a;
    m -= ks(&[K::AutogradFunctionality]);
    assert_eq!(m, ks(&[K::CPU]));
}

#[test]
fn remove_backend_and_bit_ops() {
    let s = ks(&[K::CPU, K::CUDA]);
    assert_eq!(s.remove_backend(B::CUDABit), ks(&[K::CPU]));
    assert_eq!(s.remove_backend(B::InvalidBit), s);
    let a = ks(&[K::CPU, K::Python]);
    let b = ks(&[K::Python, K::Tracer]);
    assert_eq!((a & b), ks(&[K::Python]) | (a & BACKEND_BITSET_MASK & b));
    assert_eq!((a ^ b).raw_repr(), a.raw_repr() ^ b.raw_repr());
    let mut c = a;
    c |= b;
    assert_eq!(c, a.add_set(b));
    assert_eq!(a.add(K::Tracer), a | ks(&[K::Tracer]));
    let mut d = c;
    d &= b;
    assert_eq!(d, c & b);
    let mut e = c;
    e ^= b;
    assert_eq!(e, c ^ b);
    assert!(DispatchKeySet::EMPTY.is_empty() && !a.is_empty());
    assert!(DispatchKeySet::from_backend(B::CPUBit)
        .functionality_bits()
        .is_empty());
    assert_eq!(a.backend_bits(), DispatchKeySet::from_backend(B::CPUBit));
}

#[test]
fn highest_keys() {
    assert_eq!(DispatchKeySet::EMPTY.index_of_highest_bit(), 0);
    assert_eq!(
        DispatchKeySet::EMPTY.highest_functionality_key(),
        K::Undefined
    );
    assert_eq!(DispatchKeySet::EMPTY.highest_backend_key(), B::InvalidBit);
    assert_eq!(
        DispatchKeySet::EMPTY.highest_priority_type_id(),
        K::Undefined
    );
    assert_eq!(
        DispatchKeySet::from_backend(B::CUDABit).highest_functionality_key(),
        K::Undefined
    );
    let s = ks(&[K::CPU, K::AutogradCUDA]);
    assert_eq!(s.highest_functionality_key(), K::AutogradFunctionality);
    assert_eq!(s.highest_backend_key(), B::CUDABit);
    assert_eq!(s.highest_priority_type_id(), K::AutogradCUDA);
    assert_eq!(
        ks(&[K::CPU, K::Python]).highest_priority_type_id(),
        K::Python
    );
    // Per-backend functionality without a backend bit -> StartOf*.
    let q = ks(&[K::Quantized]);
    assert_eq!(q.highest_priority_type_id(), K::StartOfQuantizedBackends);
    assert_eq!(q.highest_priority_type_id().name(), "QuantizedUndefined");
    assert_eq!(
        ks(&[K::Dense]).highest_priority_type_id().name(),
        "Undefined"
    );
    assert_eq!(
        ks(&[K::AutogradFunctionality])
            .highest_priority_type_id()
            .name(),
        "AutogradUndefined"
    );
}

#[test]
fn backend_index() {
    assert_eq!(DispatchKeySet::EMPTY.get_backend_index(), 0);
    assert_eq!(ks(&[K::CPU]).get_backend_index(), 0);
    assert_eq!(ks(&[K::CUDA]).get_backend_index(), 1);
    assert_eq!(ks(&[K::Meta]).get_backend_index(), 15);
    assert_eq!(ks(&[K::CPU, K::SparseMeta]).get_backend_index(), 15);
    assert_eq!(ks(&[K::Python]).get_backend_index(), 0);
}

// ----- 1.4 iteration + 1.8 printing --------------------------------------------

#[test]
fn iteration_order() {
    let s = ks(&[K::AutogradCUDA, K::CPU, K::Python, K::ADInplaceOrView]);
    let got: Vec<K> = s.iter().collect();
    assert_eq!(
        got,
        vec![
            K::CPU,
            K::CUDA,
            K::Python,
            K::ADInplaceOrView,
            K::AutogradCPU,
            K::AutogradCUDA
        ]
    );
    // No backend bit: per-backend functionality is skipped.
    assert_eq!(
        ks(&[K::Dense, K::Python]).iter().collect::<Vec<_>>(),
        vec![K::Python]
    );
    // Backend bits alone yield nothing.
    assert_eq!(BACKEND_BITSET_MASK.iter().count(), 0);
    assert_eq!(DispatchKeySet::EMPTY.iter().count(), 0);
    // FULL yields every runtime key except Undefined, once.
    let full: Vec<K> = DispatchKeySet::FULL.iter().collect();
    assert_eq!(full.len(), NUM_RUNTIME_ENTRIES - 1);
    assert!(full.iter().all(|k| k.is_runtime() && *k != K::Undefined));
    let runtime: Vec<K> = K::ALL
        .iter()
        .copied()
        .filter(|k| k.is_runtime() && *k != K::Undefined)
        .collect();
    let mut sorted = full.clone();
    sorted.sort_by_key(|k| dispatch_table_index_for_key(*k));
    assert_eq!(sorted, full);
    let mut a = full.clone();
    a.sort();
    let mut b = runtime.clone();
    b.sort();
    assert_eq!(a, b);
    // IntoIterator
    let mut n = 0;
    for _ in s {
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn printing() {
    assert_eq!(DispatchKeySet::EMPTY.to_string(), "DispatchKeySet()");
    assert_eq!(format!("{:?}", DispatchKeySet::EMPTY), "DispatchKeySet()");
    let s = ks(&[K::CPU, K::ADInplaceOrView, K::AutogradCPU]);
    assert_eq!(
        s.to_string(),
        "DispatchKeySet(CPU, ADInplaceOrView, AutogradCPU)"
    );
    assert_eq!(
        format!("{s:?}"),
        "DispatchKeySet(CPU, ADInplaceOrView, AutogradCPU)"
    );
    // Appendix (observed on 2.15).
    let u = DispatchKeySet::from_key(K::CPU) | DispatchKeySet::from_key(K::AutogradCUDA);
    assert_eq!(
        u.to_string(),
        "DispatchKeySet(CPU, CUDA, AutogradCPU, AutogradCUDA)"
    );
    assert_eq!(u.highest_priority_type_id(), K::AutogradCUDA);
    assert_eq!(
        DispatchKeySet::from_key(K::AutogradCPU).to_string(),
        "DispatchKeySet(AutogradCPU)"
    );
    assert_eq!(
        ks(&[K::CPU, K::ADInplaceOrView, K::AutogradCPU, K::AutocastCPU]).to_string(),
        "DispatchKeySet(CPU, ADInplaceOrView, AutogradCPU, AutocastCPU)"
    );
    assert_eq!(
        ks(&[K::Meta, K::ADInplaceOrView, K::AutogradMeta]).to_string(),
        "DispatchKeySet(Meta, ADInplaceOrView, AutogradMeta)"
    );
    assert_eq!(
        DEFAULT_INCLUDED_SET.to_string(),
        "DispatchKeySet(BackendSelect, ADInplaceOrView)"
    );
    assert_eq!(
        DEFAULT_EXCLUDED_SET.to_string(),
        "DispatchKeySet(AutocastCPU, AutocastMTIA, AutocastMAIA, AutocastXPU, AutocastIPU, \
         AutocastHPU, AutocastXLA, AutocastMPS, AutocastCUDA, AutocastPrivateUse1)"
    );
    assert_eq!(AUTOCAST_DISPATCH_KEYSET, DEFAULT_EXCLUDED_SET);
}

#[test]
fn key_names() {
    assert_eq!(K::CPU.to_string(), "CPU");
    assert_eq!(K::SparseCUDA.name(), "SparseCUDA");
    assert_eq!(K::AutogradPrivateUse1.name(), "AutogradPrivateUse1");
    assert_eq!(
        K::CompositeImplicitAutograd.name(),
        "CompositeImplicitAutograd"
    );
    assert_eq!(K::Undefined.name(), "Undefined");
    assert_eq!(K::Dense.name(), "Dense");
    assert_eq!(K::StartOfDenseBackends.name(), "Undefined");
    assert_eq!(K::StartOfSparseCsrBackends.name(), "SparseCsrUndefined");
    assert_eq!(
        K::StartOfNestedTensorBackends.name(),
        "NestedTensorUndefined"
    );
    assert_eq!(B::CPUBit.to_string(), "CPUBit");
    assert_eq!(B::InvalidBit.to_string(), "InvalidBit");
}

#[test]
fn parse_names() {
    for &k in K::ALL {
        if k.is_start_of_backends() {
            continue;
        }
        assert_eq!(K::parse(k.name()), Ok(k), "{k:?}");
        assert_eq!(k.name().parse::<K>(), Ok(k));
    }
    assert_eq!(K::parse("Undefined"), Ok(K::Undefined));
    assert_eq!(K::parse("QuantizedMeta"), Ok(K::QuantizedMeta));
    for bad in [
        "",
        "cpu",
        "CPUTensorId",
        "DefaultBackend",
        "EndOfDenseBackends",
        "StartOfDenseBackends",
        "QuantizedUndefined",
        "CPU ",
        "Autocast",
        "EndOfFunctionalityKeys",
    ] {
        let e = K::parse(bad).unwrap_err();
        assert_eq!(e, ParseDispatchKeyError(bad.to_owned()));
        assert_eq!(
            e.to_string(),
            format!("could not parse dispatch key: {bad}")
        );
    }
    let boxed: Box<dyn std::error::Error> = Box::new(K::parse("nope").unwrap_err());
    assert_eq!(boxed.to_string(), "could not parse dispatch key: nope");
}

// ----- 1.3 classification -------------------------------------------------------

#[test]
fn classification() {
    let per_backend: Vec<K> = K::ALL
        .iter()
        .copied()
        .filter(|k| k.is_per_backend_functionality())
        .collect();
    assert_eq!(
        per_backend,
        vec![
            K::Dense,
            K::Quantized,
            K::Sparse,
            K::SparseCsr,
            K::NestedTensor,
            K::AutogradFunctionality
        ]
    );
    assert_eq!(K::ALL.iter().filter(|k| k.is_alias()).count(), 6);
    assert_eq!(
        K::ALL.iter().filter(|k| k.is_start_of_backends()).count(),
        6
    );
    assert_eq!(
        K::ALL.iter().filter(|k| k.is_runtime()).count(),
        NUM_RUNTIME_ENTRIES
    );
    assert!(K::Undefined.is_runtime());
    assert!(
        !K::Dense.is_runtime()
            && !K::Autograd.is_runtime()
            && !K::StartOfDenseBackends.is_runtime()
    );
    assert!(K::CPU.is_runtime() && K::FPGA.is_runtime() && K::PythonDispatcher.is_runtime());
    assert_eq!(K::CPU.to_functionality_key(), K::Dense);
    assert_eq!(
        K::AutogradMeta.to_functionality_key(),
        K::AutogradFunctionality
    );
    assert_eq!(K::Python.to_functionality_key(), K::Python);
    assert_eq!(K::Autograd.to_functionality_key(), K::Undefined);
    assert_eq!(
        K::CompositeExplicitAutograd.to_backend_component(),
        B::InvalidBit
    );
    assert_eq!(K::Python.to_backend_component(), B::InvalidBit);
    assert_eq!(K::NestedTensorXPU.to_backend_component(), B::XPUBit);
    assert_eq!(
        K::StartOfSparseBackends.to_backend_component(),
        B::InvalidBit
    );
    assert_eq!(K::StartOfSparseBackends.to_functionality_key(), K::Sparse);
}

// ----- 1.7 runtime table layout --------------------------------------------------

#[test]
fn table_index_map() {
    let order = runtime_keys_in_table_order();
    assert_eq!(order.len(), NUM_RUNTIME_ENTRIES);
    assert_eq!(order[0], K::Undefined);
    assert_eq!(runtime_key_for_index(0), K::Undefined);
    assert_eq!(
        &order[1..],
        DispatchKeySet::FULL.iter().collect::<Vec<_>>().as_slice()
    );
    let mut seen = std::collections::HashSet::new();
    for (i, &k) in order.iter().enumerate() {
        assert_eq!(dispatch_table_index_for_key(k), i, "{k:?}");
        assert_eq!(runtime_key_for_index(i), k);
        assert!(seen.insert(k));
    }
    for &a in K::ALIASES {
        assert_eq!(dispatch_table_index_for_key(a), 0);
    }
    assert_eq!(
        dispatch_table_index_for_key(K::Dense),
        dispatch_table_index_for_key(K::CPU)
    );
    assert_eq!(
        dispatch_table_index_for_key(K::Quantized),
        dispatch_table_index_for_key(K::QuantizedCPU)
    );
    assert_eq!(
        dispatch_table_index_for_key(K::StartOfAutogradFunctionalityBackends),
        dispatch_table_index_for_key(K::AutogradCPU)
    );
    // Spot checks: offset(k) = k + 15 * (#per-backend functionalities below k).
    let expect = [
        (K::CPU, 1),
        (K::Meta, 16),
        (K::FPGA, 17),
        (K::Metal, 19),
        (K::QuantizedCPU, 20),
        (K::CustomRNGKeyId, 36),
        (K::MkldnnCPU, 37),
        (K::SparseCPU, 38),
        (K::SparseCsrCPU, 54),
        (K::NestedTensorCPU, 70),
        (K::NestedTensorMeta, 85),
        (K::BackendSelect, 86),
        (K::Fake, 87),
        (K::Python, 88),
        (K::Functionalize, 90),
        (K::ADInplaceOrView, 94),
        (K::AutogradOther, 95),
        (K::AutogradCPU, 96),
        (K::AutogradMeta, 111),
        (K::AutogradNestedTensor, 112),
        (K::AutocastCPU, 114),
        (K::PythonDispatcher, 136),
    ];
    for (k, i) in expect {
        assert_eq!(dispatch_table_index_for_key(k), i, "{k:?}");
    }
    for v in 1..NUM_FUNCTIONALITY_KEYS as u16 {
        let k = K::from_u16(v).unwrap();
        let below = [
            K::Dense,
            K::Quantized,
            K::Sparse,
            K::SparseCsr,
            K::NestedTensor,
            K::AutogradFunctionality,
        ]
        .iter()
        .filter(|f| f.as_u16() < v)
        .count();
        assert_eq!(
            dispatch_table_index_for_key(k),
            v as usize + 15 * below,
            "{k:?}"
        );
    }
}

#[test]
fn set_index_uses_highest_key() {
    let s = ks(&[K::CPU, K::ADInplaceOrView, K::AutogradCPU, K::AutocastCPU]);
    assert_eq!(
        s.dispatch_table_index(),
        dispatch_table_index_for_key(K::AutocastCPU)
    );
    let s = ks(&[K::CPU, K::AutogradCUDA]);
    assert_eq!(
        s.dispatch_table_index(),
        dispatch_table_index_for_key(K::AutogradCUDA)
    );
    assert_eq!(DispatchKeySet::EMPTY.dispatch_table_index(), 0);
    assert_eq!(BACKEND_BITSET_MASK.dispatch_table_index(), 0);
    // Garbage in bit 63 does not index out of bounds.
    assert!(DispatchKeySet::from_raw_repr(u64::MAX).dispatch_table_index() < NUM_RUNTIME_ENTRIES);
    assert!(DispatchKeySet::from_raw_repr(1 << 63).dispatch_table_index() < NUM_RUNTIME_ENTRIES);
}

#[test]
fn computed_table_order_is_subsequence_of_full_order() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spec/full_table_test_computed_table.txt");
    let Ok(txt) = std::fs::read_to_string(path) else {
        eprintln!("full_table_test_computed_table.txt not found; skipping");
        return;
    };
    let names: Vec<&str> = txt
        .lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
        .collect();
    assert!(names.len() > 100);
    let order = runtime_keys_in_table_order();
    let mut pos = 0;
    for n in &names {
        let k = K::parse(n).unwrap_or_else(|e| panic!("{e}"));
        let found = order[pos..]
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{n} out of order"));
        pos += found + 1;
    }
}

// ----- 1.5 named sets --------------------------------------------------------------

#[test]
fn named_sets() {
    assert_eq!(
        AUTOGRAD_DISPATCH_KEYSET,
        ks(&[
            K::AutogradFunctionality,
            K::AutogradOther,
            K::AutogradNestedTensor
        ])
    );
    assert!(AUTOGRAD_DISPATCH_KEYSET.backend_bits().is_empty());
    assert_eq!(
        AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW,
        AUTOGRAD_DISPATCH_KEYSET.add(K::ADInplaceOrView)
    );
    assert_eq!(
        PYTHON_KS.to_string(),
        "DispatchKeySet(Python, PythonTLSSnapshot)"
    );
    assert!(
        AUTOGRADOTHER_BACKENDS.has(K::SparseMeta) && AUTOGRADOTHER_BACKENDS.has(K::QuantizedHIP)
    );
    assert!(AUTOGRADOTHER_BACKENDS.has(K::FPGA) && !AUTOGRADOTHER_BACKENDS.has(K::CPU));
    assert!(BACKEND_DISPATCH_KEYSET.has(K::CPU) && BACKEND_DISPATCH_KEYSET.has(K::SparseCsrXLA));
    assert!(!BACKEND_DISPATCH_KEYSET.has(K::NestedTensorCPU));
    assert!(!NON_FUNCTIONAL_BACKEND_DISPATCH_KEYSET.has(K::SparseCPU));
    assert!(!NON_FUNCTIONAL_BACKEND_DISPATCH_KEYSET.has(K::XLA));
    assert!(!NON_FUNCTIONAL_BACKEND_DISPATCH_KEYSET.has(K::Lazy));
    assert!(!NON_FUNCTIONAL_BACKEND_DISPATCH_KEYSET.has(K::QuantizedXLA));
    assert!(
        NON_FUNCTIONAL_BACKEND_DISPATCH_KEYSET.has(K::CPU)
            && NON_FUNCTIONAL_BACKEND_DISPATCH_KEYSET.has(K::SparseCsrCPU)
    );
    assert!(
        MATH_DISPATCH_KEYSET.has(K::AutogradCPU) && MATH_DISPATCH_KEYSET.has(K::NestedTensorCUDA)
    );
    assert!(MATH_DISPATCH_KEYSET.has(K::CPU) && MATH_DISPATCH_KEYSET.has(K::AutogradOther));
    assert!(
        !MATH_DISPATCH_KEYSET.has(K::Functionalize),
        "2.15: Functionalize only via fallback"
    );
    assert!(!MATH_DISPATCH_KEYSET.has(K::ADInplaceOrView) && !MATH_DISPATCH_KEYSET.has(K::Python));
    assert_eq!(
        NESTED_DISPATCH_KEYSET
            .iter()
            .filter(|k| *k == K::AutogradNestedTensor)
            .count(),
        1
    );
    assert!(NESTED_DISPATCH_KEYSET.has(K::NestedTensorMeta) && !NESTED_DISPATCH_KEYSET.has(K::CPU));
    assert_eq!(
        FUNCTORCH_BATCHED_KS.to_string(),
        "DispatchKeySet(FuncTorchBatched)"
    );
    assert_eq!(
        BACKEND_FUNCTIONALITY_KEYS,
        ks(&[K::Dense, K::Quantized, K::Sparse, K::SparseCsr]) | BACKEND_BITSET_MASK
    );
    assert_eq!(FUNCTORCH_TRANSFORMS_KS.iter().count(), 5);
    assert_eq!(SPARSE_KS, ks(&[K::Sparse]));
    assert_eq!(SPARSE_CSR_KS, ks(&[K::SparseCsr]));
    assert_eq!(MKLDNN_KS, ks(&[K::MkldnnCPU]));
}

// ----- 1.6 alias expansion and relations ------------------------------------------

#[test]
fn runtime_dispatch_key_sets() {
    assert_eq!(
        get_runtime_dispatch_key_set(K::Autograd),
        AUTOGRAD_DISPATCH_KEYSET | BACKEND_BITSET_MASK
    );
    assert_eq!(
        get_runtime_dispatch_key_set(K::CompositeImplicitAutograd),
        MATH_DISPATCH_KEYSET
    );
    assert_eq!(
        get_runtime_dispatch_key_set(K::CompositeImplicitAutogradNestedTensor),
        NESTED_DISPATCH_KEYSET
    );
    assert_eq!(
        get_runtime_dispatch_key_set(K::CompositeExplicitAutograd),
        BACKEND_DISPATCH_KEYSET
    );
    assert_eq!(
        get_runtime_dispatch_key_set(K::CompositeExplicitAutogradNonFunctional),
        NON_FUNCTIONAL_BACKEND_DISPATCH_KEYSET
    );
    assert_eq!(
        get_runtime_dispatch_key_set(K::FuncTorchBatchedDecomposition),
        ks(&[K::FuncTorchBatched])
    );
    assert_eq!(get_runtime_dispatch_key_set(K::CPU), ks(&[K::CPU]));
    let autograd: Vec<K> = get_runtime_dispatch_key_set(K::Autograd).iter().collect();
    assert_eq!(autograd.len(), 1 + 16 + 1);
    assert_eq!(autograd[0], K::AutogradOther);
    assert_eq!(autograd[17], K::AutogradNestedTensor);
}

#[test]
fn alias_membership() {
    let cases: &[(K, K, bool)] = &[
        (K::AutogradCPU, K::Autograd, true),
        (K::AutogradOther, K::Autograd, true),
        (K::AutogradNestedTensor, K::Autograd, true),
        (K::CPU, K::Autograd, false),
        (K::ADInplaceOrView, K::Autograd, false),
        (K::CPU, K::CompositeImplicitAutograd, true),
        (K::AutogradXLA, K::CompositeImplicitAutograd, true),
        (K::NestedTensorCPU, K::CompositeImplicitAutograd, true),
        (K::Functionalize, K::CompositeImplicitAutograd, false),
        (K::Python, K::CompositeImplicitAutograd, false),
        (K::CPU, K::CompositeExplicitAutograd, true),
        (K::SparseCUDA, K::CompositeExplicitAutograd, true),
        (K::FPGA, K::CompositeExplicitAutograd, true),
        (K::NestedTensorCPU, K::CompositeExplicitAutograd, false),
        (K::NestedTensor, K::CompositeExplicitAutograd, false),
        (K::AutogradCPU, K::CompositeExplicitAutograd, false),
        (K::CPU, K::CompositeExplicitAutogradNonFunctional, true),
        (K::XLA, K::CompositeExplicitAutogradNonFunctional, false),
        (K::Lazy, K::CompositeExplicitAutogradNonFunctional, false),
        (
            K::SparseCPU,
            K::CompositeExplicitAutogradNonFunctional,
            false,
        ),
        (
            K::NestedTensorCPU,
            K::CompositeImplicitAutogradNestedTensor,
            true,
        ),
        (
            K::AutogradNestedTensor,
            K::CompositeImplicitAutogradNestedTensor,
            true,
        ),
        (K::CPU, K::CompositeImplicitAutogradNestedTensor, false),
        (K::FuncTorchBatched, K::FuncTorchBatchedDecomposition, true),
        (K::Batched, K::FuncTorchBatchedDecomposition, false),
        (K::CPU, K::CPU, true),
        (K::CPU, K::CUDA, false),
        (K::Undefined, K::CompositeImplicitAutograd, false),
        (K::Undefined, K::Autograd, false),
    ];
    for &(k, alias, expect) in cases {
        assert_eq!(is_included_in_alias(k, alias), expect, "{k:?} in {alias:?}");
    }
    assert!(runtime_dispatch_key_set_has(K::CPU, K::CPU));
    assert!(!runtime_dispatch_key_set_has(
        K::CompositeExplicitAutograd,
        K::NestedTensor
    ));
    // Alias membership agrees with the expanded runtime set for every runtime key
    // (NestedTensor* excluded from CompositeExplicit* by the special case).
    for &alias in K::ALIASES {
        let set = get_runtime_dispatch_key_set(alias);
        for &k in &runtime_keys_in_table_order()[1..] {
            let in_set = set.has(k);
            let nested_exception = matches!(
                alias,
                K::CompositeExplicitAutograd | K::CompositeExplicitAutogradNonFunctional
            ) && k == K::NestedTensor;
            assert_eq!(
                is_included_in_alias(k, alias),
                in_set && !nested_exception,
                "{k:?} {alias:?}"
            );
        }
    }
}

#[test]
fn backend_dispatch_keys() {
    let got: Vec<K> = K::ALL
        .iter()
        .copied()
        .filter(|k| k.is_backend_dispatch_key() && k.is_runtime())
        .collect();
    let mut expect = vec![
        K::FPGA,
        K::Vulkan,
        K::Metal,
        K::CustomRNGKeyId,
        K::MkldnnCPU,
    ];
    for f in [K::Dense, K::Quantized, K::Sparse, K::SparseCsr] {
        for &b in &B::ALL[1..] {
            expect.push(to_runtime_per_backend_functionality_key(f, b));
        }
    }
    let mut got_sorted = got.clone();
    got_sorted.sort();
    expect.sort();
    assert_eq!(got_sorted, expect);
    assert!(!K::Undefined.is_backend_dispatch_key());
    assert!(!K::NestedTensor.is_backend_dispatch_key());
    assert!(!K::NestedTensorCPU.is_backend_dispatch_key());
    assert!(!K::CompositeExplicitAutograd.is_backend_dispatch_key());
    assert!(!K::AutogradCPU.is_backend_dispatch_key());
    assert!(!K::Python.is_backend_dispatch_key());
}

#[test]
fn backend_key_set_from_autograd() {
    let with = [
        (K::AutogradCPU, K::CPU),
        (K::AutogradCUDA, K::CUDA),
        (K::AutogradXLA, K::XLA),
        (K::AutogradLazy, K::Lazy),
        (K::AutogradMeta, K::Meta),
        (K::AutogradMPS, K::MPS),
        (K::AutogradHPU, K::HPU),
        (K::AutogradIPU, K::IPU),
        (K::AutogradXPU, K::XPU),
        (K::AutogradMAIA, K::MAIA),
        (K::AutogradPrivateUse1, K::PrivateUse1),
        (K::AutogradPrivateUse2, K::PrivateUse2),
        (K::AutogradPrivateUse3, K::PrivateUse3),
    ];
    for (a, b) in with {
        assert_eq!(get_backend_key_set_from_autograd(a), ks(&[b]), "{a:?}");
    }
    for a in [
        K::AutogradHIP,
        K::AutogradVE,
        K::AutogradMTIA,
        K::CPU,
        K::Autograd,
        K::Undefined,
    ] {
        assert!(get_backend_key_set_from_autograd(a).is_empty(), "{a:?}");
    }
    assert_eq!(
        get_backend_key_set_from_autograd(K::AutogradNestedTensor),
        ks(&[K::NestedTensor]) | BACKEND_BITSET_MASK
    );
    assert_eq!(
        get_backend_key_set_from_autograd(K::AutogradOther),
        AUTOGRADOTHER_BACKENDS
    );
}

#[test]
fn autograd_and_autocast_from_backend() {
    for &b in B::ALL {
        let own = !matches!(b, B::InvalidBit | B::HIPBit | B::VEBit);
        let expect = if own {
            to_runtime_per_backend_functionality_key(K::AutogradFunctionality, b)
        } else {
            K::AutogradOther
        };
        assert_eq!(get_autograd_key_from_backend(b), expect, "{b:?}");
        assert_eq!(
            get_autograd_related_key_set_from_backend(b),
            ks(&[K::ADInplaceOrView, expect])
        );
    }
    let autocast = [
        (B::CPUBit, K::AutocastCPU),
        (B::MTIABit, K::AutocastMTIA),
        (B::MAIABit, K::AutocastMAIA),
        (B::XPUBit, K::AutocastXPU),
        (B::IPUBit, K::AutocastIPU),
        (B::HPUBit, K::AutocastHPU),
        (B::CUDABit, K::AutocastCUDA),
        (B::XLABit, K::AutocastXLA),
        (B::PrivateUse1Bit, K::AutocastPrivateUse1),
        (B::MPSBit, K::AutocastMPS),
    ];
    for &b in B::ALL {
        let expect = autocast
            .iter()
            .find(|(x, _)| *x == b)
            .map(|(_, k)| ks(&[*k]))
            .unwrap_or_default();
        assert_eq!(
            get_autocast_related_key_set_from_backend(b),
            expect,
            "{b:?}"
        );
    }
}

#[test]
fn highest_backend_type_id() {
    let s = ks(&[K::CPU, K::ADInplaceOrView, K::AutogradCPU, K::AutocastCPU]);
    assert_eq!(highest_priority_backend_type_id(s), K::CPU);
    let s = ks(&[K::SparseCUDA, K::AutogradCUDA, K::Python]);
    assert_eq!(highest_priority_backend_type_id(s), K::SparseCUDA);
    assert_eq!(
        highest_priority_backend_type_id(ks(&[K::Python])),
        K::Undefined
    );
}
