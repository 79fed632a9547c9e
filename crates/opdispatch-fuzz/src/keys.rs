//! Dispatch keys and key sets: names parse or fail cleanly and round-trip; any raw key-set
//! representation can be iterated, indexed and printed without panicking.

use opdispatch_keys::{DispatchKey, DispatchKeySet};

/// The target body: the input is a comma-separated list of key names, then (from byte 8 of
/// its raw bytes on) the raw representation of a key set.
pub fn fuzz(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parsed = Vec::new();
    for name in text.split(',') {
        if let Ok(k) = DispatchKey::parse(name) {
            assert_eq!(
                DispatchKey::parse(k.name()).ok(),
                Some(k),
                "{name:?} does not round-trip"
            );
            parsed.push(k);
        }
    }
    let set = DispatchKeySet::from_keys(&parsed);
    for k in set {
        assert!(set.has(k), "{set} iterates {k} but does not have it");
    }
    let _ = set.to_string();
    let mut raw = [0u8; 8];
    for (i, b) in data.iter().take(8).enumerate() {
        raw[i] = *b;
    }
    let any = DispatchKeySet::from_raw_repr(u64::from_le_bytes(raw));
    exercise(any);
    exercise(set);
}

fn exercise(set: DispatchKeySet) {
    let keys: Vec<DispatchKey> = set.iter().collect();
    for &k in &keys {
        assert!(set.has(k), "{set:?} iterates {k} but does not have it");
    }
    let _ = set.to_string();
    if !set.is_empty() {
        let _ = set.highest_priority_type_id();
        let _ = set.highest_functionality_key();
        let _ = set.highest_backend_key();
        let _ = set.dispatch_table_index();
    }
    // Rebuilding from the keys it iterates gives a set with the same keys.
    let rebuilt = DispatchKeySet::from_keys(&keys);
    assert_eq!(
        rebuilt.iter().collect::<Vec<_>>(),
        keys,
        "{set:?} does not rebuild"
    );
}
