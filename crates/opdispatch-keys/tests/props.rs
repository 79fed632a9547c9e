//! Property tests for the DispatchKeySet algebra and the key/index maps.

use opdispatch_keys::*;
use proptest::prelude::*;

/// Any valid set: arbitrary backend bits and functionality bits (bit 63 clear,
/// and no bit past PythonDispatcher).
fn any_set() -> impl Strategy<Value = DispatchKeySet> {
    any::<u64>().prop_map(|x| DispatchKeySet::from_raw_repr(x & DispatchKeySet::FULL.raw_repr()))
}

/// Sparse sets built from a few keys, closer to what tensors carry.
fn key_built_set() -> impl Strategy<Value = DispatchKeySet> {
    prop::collection::vec(any_key(), 0..6).prop_map(|ks| DispatchKeySet::from_keys(&ks))
}

fn any_key() -> impl Strategy<Value = DispatchKey> {
    prop::sample::select(DispatchKey::ALL)
}

fn any_backend() -> impl Strategy<Value = BackendComponent> {
    prop::sample::select(BackendComponent::ALL)
}

fn some_set() -> impl Strategy<Value = DispatchKeySet> {
    prop_oneof![any_set(), key_built_set()]
}

proptest! {
    #[test]
    fn union_intersection_laws(a in some_set(), b in some_set(), c in some_set()) {
        prop_assert_eq!(a | b, b | a);
        prop_assert_eq!(a & b, b & a);
        prop_assert_eq!((a | b) | c, a | (b | c));
        prop_assert_eq!((a & b) & c, a & (b & c));
        prop_assert_eq!(a & (b | c), (a & b) | (a & c));
        prop_assert_eq!(a | a, a);
        prop_assert_eq!(a ^ a, DispatchKeySet::EMPTY);
        prop_assert!((a | b).is_superset_of(a));
        prop_assert!(a.is_superset_of(a & b));
        prop_assert_eq!(a.add_set(b), a | b);
    }

    #[test]
    fn difference_keeps_backend_bits(a in some_set(), b in some_set()) {
        let d = a - b;
        prop_assert_eq!(d.backend_bits(), a.backend_bits());
        prop_assert_eq!(d.functionality_bits().raw_repr(), a.functionality_bits().raw_repr() & !b.raw_repr());
        prop_assert!(!d.functionality_bits().has_any(b.functionality_bits()));
    }

    #[test]
    fn remove_only_functionality(a in some_set(), k in any_key()) {
        let r = a.remove(k);
        prop_assert_eq!(r.backend_bits(), a.backend_bits());
        let f = k.to_functionality_key();
        if f != DispatchKey::Undefined {
            prop_assert!(!r.has_any(DispatchKeySet::from_key(f)));
        }
        prop_assert_eq!(r, a - DispatchKeySet::from_key(k));
    }

    #[test]
    fn add_then_has(a in some_set(), k in any_key()) {
        prop_assert!(a.add(k).has(k));
        prop_assert!(DispatchKeySet::from_key(k).has(k));
    }

    #[test]
    fn backend_add_remove(a in some_set(), b in any_backend()) {
        let with = a | DispatchKeySet::from_backend(b);
        prop_assert_eq!(with.has_backend(b), b != BackendComponent::InvalidBit);
        prop_assert!(!with.remove_backend(b).has_backend(b));
        prop_assert_eq!(with.remove_backend(b).functionality_bits(), a.functionality_bits());
    }

    #[test]
    fn iteration_ascending_members(a in some_set()) {
        let keys: Vec<DispatchKey> = a.iter().collect();
        // Ascending priority = ascending table index (not enum value: CPU > FPGA
        // as a value, but Dense is the lowest functionality).
        for w in keys.windows(2) {
            prop_assert!(w[0].to_functionality_key() <= w[1].to_functionality_key());
            prop_assert!(dispatch_table_index_for_key(w[0]) < dispatch_table_index_for_key(w[1]));
        }
        for k in &keys {
            prop_assert!(a.has(*k));
            prop_assert!(k.is_runtime() && *k != DispatchKey::Undefined);
        }
        // Rebuilding from the keys gives back the set whenever nothing is lost
        // (no orphan per-backend functionality or backend bits).
        let rebuilt = DispatchKeySet::from_keys(&keys);
        prop_assert!(a.is_superset_of(rebuilt));
        // Every runtime key that is a member is yielded.
        for &k in &runtime_keys_in_table_order()[1..] {
            prop_assert_eq!(a.has(k), keys.contains(&k));
        }
    }

    #[test]
    fn highest_priority_is_last_of_iter(a in some_set()) {
        let f = a.highest_functionality_key();
        let last = a.iter().last();
        let nonempty_top = f != DispatchKey::Undefined
            && (!f.is_per_backend_functionality() || !a.backend_bits().is_empty());
        if nonempty_top {
            prop_assert_eq!(Some(a.highest_priority_type_id()), last);
            prop_assert_eq!(a.dispatch_table_index(), dispatch_table_index_for_key(last.unwrap()));
        }
        if a.functionality_bits().is_empty() {
            prop_assert_eq!(a.highest_priority_type_id(), DispatchKey::Undefined);
            prop_assert_eq!(a.dispatch_table_index(), 0);
            prop_assert_eq!(last, None);
        }
    }

    #[test]
    fn display_matches_iter(a in some_set()) {
        let names: Vec<&str> = a.iter().map(DispatchKey::name).collect();
        prop_assert_eq!(a.to_string(), format!("DispatchKeySet({})", names.join(", ")));
        prop_assert_eq!(format!("{a:?}"), a.to_string());
    }

    #[test]
    fn key_set_index_agrees(k in any_key()) {
        prop_assert_eq!(DispatchKeySet::from_key(k).dispatch_table_index(), dispatch_table_index_for_key(k));
        let i = dispatch_table_index_for_key(k);
        prop_assert!(i < NUM_RUNTIME_ENTRIES);
        if k.is_runtime() {
            prop_assert_eq!(runtime_key_for_index(i), k);
        }
        if k.is_alias() {
            prop_assert_eq!(i, 0);
        }
    }

    #[test]
    fn raw_index_in_bounds(x in any::<u64>()) {
        prop_assert!(DispatchKeySet::from_raw_repr(x).dispatch_table_index() < NUM_RUNTIME_ENTRIES);
    }

    #[test]
    fn name_parse_roundtrip(k in any_key()) {
        if !k.is_start_of_backends() {
            prop_assert_eq!(DispatchKey::parse(k.name()), Ok(k));
            prop_assert_eq!(k.to_string().parse::<DispatchKey>(), Ok(k));
        } else {
            prop_assert!(DispatchKey::parse(k.variant_name()).is_err());
        }
        prop_assert_eq!(DispatchKey::from_u16(k.as_u16()), Some(k));
    }

    #[test]
    fn per_backend_decomposition(k in any_key()) {
        let f = k.to_functionality_key();
        let b = k.to_backend_component();
        if f.is_per_backend_functionality() && k != f {
            prop_assert_eq!(to_runtime_per_backend_functionality_key(f, b), k);
        } else {
            prop_assert_eq!(b, BackendComponent::InvalidBit);
        }
        prop_assert_eq!(
            DispatchKeySet::from_key(k),
            if k.is_alias() { DispatchKeySet::EMPTY }
            else { DispatchKeySet::from_key(f) | DispatchKeySet::from_backend(b) }
        );
    }

    #[test]
    fn backend_index_is_highest_backend(a in some_set()) {
        let hb = a.highest_backend_key();
        let expect = if hb == BackendComponent::InvalidBit { 0 } else { hb as usize - 1 };
        prop_assert_eq!(a.get_backend_index(), expect);
    }

    #[test]
    fn alias_expansion_consistent(k in any_key(), alias in prop::sample::select(DispatchKey::ALIASES)) {
        if k.is_runtime() && k != DispatchKey::Undefined && k != DispatchKey::NestedTensor {
            prop_assert_eq!(is_included_in_alias(k, alias), get_runtime_dispatch_key_set(alias).has(k));
        }
    }

    #[test]
    fn full_after_bounds(k in any_key()) {
        let f = k.to_functionality_key();
        if f != DispatchKey::Undefined {
            let s = DispatchKeySet::full_after(f);
            prop_assert!(s.has(DispatchKey::PythonDispatcher));
            prop_assert!(s.has_all(BACKEND_BITSET_MASK));
            for key in s {
                let kf = key.to_functionality_key();
                prop_assert!(kf < f || kf == DispatchKey::PythonDispatcher);
            }
        }
    }
}
