//! Unit tests of crate internals (table helpers, offsets) that the public
//! API does not expose directly.

use crate::key::FUNCTIONALITY_BLOCK;
use crate::table::{
    BLOCKS, BLOCK_END_NAMES, BLOCK_LEN, BLOCK_PREFIXES, PER_BACKEND_FUNCTIONALITIES,
};
use crate::*;

#[test]
fn block_tables_are_consistent() {
    assert_eq!(BLOCK_LEN, 17);
    assert_eq!(
        BLOCK_PREFIXES,
        [
            "",
            "Quantized",
            "Sparse",
            "SparseCsr",
            "NestedTensor",
            "Autograd"
        ]
    );
    assert_eq!(BLOCK_END_NAMES[0], "EndOfDenseBackends");
    for (blk, f) in PER_BACKEND_FUNCTIONALITIES.iter().enumerate() {
        assert_eq!(FUNCTIONALITY_BLOCK[*f as usize] as usize, blk);
        for (b, k) in BLOCKS[blk].iter().enumerate() {
            assert_eq!(k.block_index(), Some(blk));
            assert_eq!(k.to_backend_component() as usize, b);
        }
    }
    let n_per_backend = FUNCTIONALITY_BLOCK
        .iter()
        .filter(|b| **b != u8::MAX)
        .count();
    assert_eq!(n_per_backend, NUM_PER_BACKEND_FUNCTIONALITIES);
}

#[test]
fn block_index_outside_blocks() {
    assert_eq!(DispatchKey::PythonDispatcher.block_index(), None);
    assert_eq!(DispatchKey::Autograd.block_index(), None);
    assert_eq!(DispatchKey::Undefined.block_index(), None);
    assert_eq!(DispatchKey::AutogradMeta.block_index(), Some(5));
}

#[test]
fn const_sets_usable_in_const_context() {
    const S: DispatchKeySet =
        DispatchKeySet::from_key(DispatchKey::CPU).add(DispatchKey::AutogradCPU);
    const I: bool = S.has(DispatchKey::AutogradCPU);
    const H: DispatchKey = S.highest_priority_type_id();
    const { assert!(I) };
    assert_eq!(H, DispatchKey::AutogradCPU);
}
