//! Enum contents and numbering against PyTorch 2.15 (brief + golden files).

use opdispatch_keys::*;
use std::path::PathBuf;

fn spec_file(name: &str) -> Option<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spec")
        .join(name);
    std::fs::read_to_string(p).ok()
}

fn enum_txt_entries() -> Option<Vec<(String, u16)>> {
    let txt = spec_file("dispatchkey_enum_2.15.txt")?;
    Some(
        txt.trim()
            .split(',')
            .map(|e| {
                let (n, v) = e.trim().split_once('=').expect("name=value");
                (n.trim().to_owned(), v.trim().parse().expect("value"))
            })
            .collect(),
    )
}

#[test]
fn counts() {
    assert_eq!(NUM_BACKENDS, 16);
    assert_eq!(NUM_FUNCTIONALITY_KEYS, 47);
    assert_eq!(NUM_PER_BACKEND_FUNCTIONALITIES, 6);
    assert_eq!(NUM_RUNTIME_ENTRIES, 137);
    assert_eq!(NUM_RUNTIME_ENTRIES, 47 + 6 * 15);
    assert_eq!(BackendComponent::ALL.len(), 17);
    // 47 functionality keys + 6 blocks of 17 + 6 aliases.
    assert_eq!(DispatchKey::ALL.len(), 47 + 6 * 17 + 6);
}

#[test]
fn key_values_match_brief() {
    use DispatchKey as K;
    let expect: &[(K, u16)] = &[
        (K::Undefined, 0),
        (K::Dense, 1),
        (K::FPGA, 2),
        (K::Quantized, 5),
        (K::MkldnnCPU, 7),
        (K::Sparse, 8),
        (K::NestedTensor, 10),
        (K::BackendSelect, 11),
        (K::Fake, 12),
        (K::Python, 13),
        (K::Functionalize, 15),
        (K::ADInplaceOrView, 19),
        (K::AutogradOther, 20),
        (K::AutogradFunctionality, 21),
        (K::Tracer, 23),
        (K::AutocastCPU, 24),
        (K::AutocastPrivateUse1, 33),
        (K::FuncTorchBatched, 34),
        (K::PythonDispatcher, 46),
        (K::StartOfDenseBackends, 48),
        (K::CPU, 49),
        (K::Meta, 64),
        (K::StartOfQuantizedBackends, 65),
        (K::QuantizedCPU, 66),
        (K::QuantizedMeta, 81),
        (K::StartOfSparseBackends, 82),
        (K::SparseCPU, 83),
        (K::SparseMeta, 98),
        (K::StartOfSparseCsrBackends, 99),
        (K::SparseCsrCPU, 100),
        (K::SparseCsrMeta, 115),
        (K::StartOfNestedTensorBackends, 116),
        (K::NestedTensorCPU, 117),
        (K::NestedTensorMeta, 132),
        (K::StartOfAutogradFunctionalityBackends, 133),
        (K::AutogradCPU, 134),
        (K::AutogradMeta, 149),
        (K::Autograd, 150),
        (K::CompositeImplicitAutograd, 151),
        (K::FuncTorchBatchedDecomposition, 152),
        (K::CompositeImplicitAutogradNestedTensor, 153),
        (K::CompositeExplicitAutograd, 154),
        (K::CompositeExplicitAutogradNonFunctional, 155),
    ];
    for &(k, v) in expect {
        assert_eq!(k.as_u16(), v, "{k:?}");
        assert_eq!(k as u16, v, "{k:?}");
        assert_eq!(DispatchKey::from_u16(v), Some(k));
    }
}

#[test]
fn all_is_ascending_and_from_u16_roundtrips() {
    for w in DispatchKey::ALL.windows(2) {
        assert!(w[0] < w[1] && w[0].as_u16() < w[1].as_u16());
    }
    for &k in DispatchKey::ALL {
        assert_eq!(DispatchKey::from_u16(k.as_u16()), Some(k));
    }
    let present: std::collections::HashSet<u16> =
        DispatchKey::ALL.iter().map(|k| k.as_u16()).collect();
    for v in 0..=u16::MAX {
        assert_eq!(
            DispatchKey::from_u16(v).is_some(),
            present.contains(&v),
            "{v}"
        );
    }
    // The only gap is EndOfFunctionalityKeys.
    assert_eq!(DispatchKey::from_u16(47), None);
    assert_eq!(DispatchKey::from_u16(156), None);
    assert_eq!(
        (0..156u16)
            .filter(|v| DispatchKey::from_u16(*v).is_none())
            .count(),
        1
    );
}

#[test]
fn backend_components() {
    let names = [
        "InvalidBit",
        "CPUBit",
        "CUDABit",
        "HIPBit",
        "XLABit",
        "MPSBit",
        "IPUBit",
        "XPUBit",
        "HPUBit",
        "VEBit",
        "LazyBit",
        "MTIABit",
        "MAIABit",
        "PrivateUse1Bit",
        "PrivateUse2Bit",
        "PrivateUse3Bit",
        "MetaBit",
    ];
    for (i, n) in names.iter().enumerate() {
        let b = BackendComponent::from_u8(i as u8).unwrap();
        assert_eq!(b as u8, i as u8);
        assert_eq!(b.as_u8(), i as u8);
        assert_eq!(b.name(), *n);
        assert_eq!(b.to_string(), *n);
        assert_eq!(BackendComponent::ALL[i], b);
    }
    assert_eq!(BackendComponent::from_u8(17), None);
    assert_eq!(BackendComponent::from_u8(255), None);
    assert_eq!(BackendComponent::MetaBit as usize, NUM_BACKENDS);
}

#[test]
fn per_backend_blocks_follow_backend_order() {
    let prefixes = [
        "",
        "Quantized",
        "Sparse",
        "SparseCsr",
        "NestedTensor",
        "Autograd",
    ];
    let funcs = [
        DispatchKey::Dense,
        DispatchKey::Quantized,
        DispatchKey::Sparse,
        DispatchKey::SparseCsr,
        DispatchKey::NestedTensor,
        DispatchKey::AutogradFunctionality,
    ];
    for (p, f) in prefixes.iter().zip(funcs) {
        for &b in BackendComponent::ALL {
            let k = to_runtime_per_backend_functionality_key(f, b);
            assert_eq!(k.to_functionality_key(), f);
            assert_eq!(k.to_backend_component(), b);
            let short = b.name().strip_suffix("Bit").unwrap();
            if b == BackendComponent::InvalidBit {
                assert!(k.is_start_of_backends());
                assert_eq!(k.name(), format!("{p}Undefined"));
                assert_eq!(k.variant_name(), format!("StartOf{}Backends", f.name()));
            } else {
                assert_eq!(k.name(), format!("{p}{short}"));
                assert_eq!(k.variant_name(), k.name());
                assert!(k.is_per_backend_runtime_key());
            }
        }
    }
    assert_eq!(
        to_runtime_per_backend_functionality_key(DispatchKey::Python, BackendComponent::CPUBit),
        DispatchKey::Undefined
    );
}

#[test]
fn enum_txt_values_match() {
    let Some(entries) = enum_txt_entries() else {
        eprintln!("dispatchkey_enum_2.15.txt not found; skipping");
        return;
    };
    assert!(entries.len() > 100);
    for (name, v) in &entries {
        let k =
            DispatchKey::from_u16(*v).unwrap_or_else(|| panic!("no key with value {v} ({name})"));
        if let Some(f) = name
            .strip_prefix("EndOf")
            .and_then(|s| s.strip_suffix("Backends"))
        {
            // BC name for the block's last (Meta) key.
            assert_eq!(
                k.to_backend_component(),
                BackendComponent::MetaBit,
                "{name}"
            );
            assert_eq!(k.to_functionality_key().name(), f, "{name}");
        } else {
            assert_eq!(k.variant_name(), name, "value {v}");
        }
    }
}

#[test]
fn exposed_to_python_matches_txt() {
    let Some(entries) = enum_txt_entries() else {
        eprintln!("dispatchkey_enum_2.15.txt not found; skipping");
        return;
    };
    let names: std::collections::HashSet<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    for &k in DispatchKey::ALL {
        assert_eq!(
            k.is_exposed_to_python(),
            names.contains(k.variant_name()),
            "{k:?}"
        );
    }
    let ours: Vec<(String, u16)> = python_enum_entries()
        .iter()
        .map(|(n, k)| (n.to_string(), k.as_u16()))
        .collect();
    assert_eq!(ours, entries);
}

#[test]
fn hidden_keys_in_2_15() {
    use DispatchKey as K;
    let hidden: Vec<K> = DispatchKey::ALL
        .iter()
        .copied()
        .filter(|k| !k.is_exposed_to_python())
        .collect();
    assert_eq!(
        hidden,
        vec![
            K::FPGA,
            K::Vulkan,
            K::Metal,
            K::CustomRNGKeyId,
            K::MkldnnCPU,
            K::Fake,
            K::Tracer,
            K::AutocastMTIA,
            K::AutocastMAIA,
            K::AutocastXLA,
            K::BatchedNestedTensor,
            K::Batched,
            K::VmapMode,
            K::DeferredInit,
            K::TESTING_ONLY_GenericWrapper,
            K::TESTING_ONLY_GenericMode,
        ]
    );
}
