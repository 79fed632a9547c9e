//! Named key sets (spec 1.5) and alias expansion / backend-autograd
//! relations (spec 1.6). All sets are `const` so callers can build their own
//! constants from them.

use crate::key::to_runtime_per_backend_functionality_key;
use crate::keyset::{DispatchKeySet, FULL_BACKEND_MASK};
use crate::table::{BackendComponent as B, DispatchKey as K};

/// Every backend bit, no functionality bit.
pub const BACKEND_BITSET_MASK: DispatchKeySet = DispatchKeySet::from_raw_repr(FULL_BACKEND_MASK);

/// The autograd functionalities, without backend bits: combined with a
/// tensor's backend bits they select the right `Autograd<B>` key.
pub const AUTOGRAD_DISPATCH_KEYSET: DispatchKeySet = DispatchKeySet::from_keys(&[
    K::AutogradFunctionality,
    K::AutogradOther,
    K::AutogradNestedTensor,
]);

/// The ten autocast keys (also the default TLS exclude set).
pub const AUTOCAST_DISPATCH_KEYSET: DispatchKeySet = DispatchKeySet::from_keys(&[
    K::AutocastCPU,
    K::AutocastMPS,
    K::AutocastCUDA,
    K::AutocastXPU,
    K::AutocastIPU,
    K::AutocastHPU,
    K::AutocastXLA,
    K::AutocastPrivateUse1,
    K::AutocastMTIA,
    K::AutocastMAIA,
]);

/// Keys that are included by default (the TLS include set is stored XOR this).
pub const DEFAULT_INCLUDED_SET: DispatchKeySet =
    DispatchKeySet::from_keys(&[K::BackendSelect, K::ADInplaceOrView]);

/// Keys that are excluded by default (autocast is opt-in).
pub const DEFAULT_EXCLUDED_SET: DispatchKeySet = AUTOCAST_DISPATCH_KEYSET;

/// Autograd keys plus ADInplaceOrView, excluded together below autograd.
pub const AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW: DispatchKeySet =
    AUTOGRAD_DISPATCH_KEYSET.add(K::ADInplaceOrView);

/// The Python-subclass keys.
pub const PYTHON_KS: DispatchKeySet = DispatchKeySet::from_keys(&[K::Python, K::PythonTLSSnapshot]);

/// `{Sparse}`.
pub const SPARSE_KS: DispatchKeySet = DispatchKeySet::from_key(K::Sparse);
/// `{SparseCsr}`.
pub const SPARSE_CSR_KS: DispatchKeySet = DispatchKeySet::from_key(K::SparseCsr);
/// `{MkldnnCPU}`.
pub const MKLDNN_KS: DispatchKeySet = DispatchKeySet::from_key(K::MkldnnCPU);

/// Backends whose autograd goes through `AutogradOther` (they have no
/// autograd key of their own). All backend bits are set, so every
/// Sparse/SparseCsr/Quantized runtime key is a member.
pub const AUTOGRADOTHER_BACKENDS: DispatchKeySet = DispatchKeySet::from_keys(&[
    K::FPGA,
    K::Vulkan,
    K::Metal,
    K::CustomRNGKeyId,
    K::MkldnnCPU,
    K::Sparse,
    K::SparseCsr,
    K::Quantized,
])
.add_set(BACKEND_BITSET_MASK);

/// Everything that runs after autograd (used when redispatching below it).
pub const AFTER_AUTOGRAD_KEYSET: DispatchKeySet = DispatchKeySet::full_after(K::AutogradOther);
/// Everything that runs after ADInplaceOrView.
pub const AFTER_AD_INPLACE_OR_VIEW_KEYSET: DispatchKeySet =
    DispatchKeySet::full_after(K::ADInplaceOrView);
/// Everything that runs after Functionalize, minus ADInplaceOrView.
pub const AFTER_FUNC_KEYSET: DispatchKeySet =
    DispatchKeySet::full_after(K::Functionalize).remove(K::ADInplaceOrView);

/// The backend functionalities that `highest_priority_backend_type_id` considers.
pub const BACKEND_FUNCTIONALITY_KEYS: DispatchKeySet =
    DispatchKeySet::from_keys(&[K::Dense, K::Quantized, K::Sparse, K::SparseCsr])
        .add_set(BACKEND_BITSET_MASK);

/// The functorch transform keys.
pub const FUNCTORCH_TRANSFORMS_KS: DispatchKeySet = DispatchKeySet::from_keys(&[
    K::FuncTorchBatched,
    K::FuncTorchVmapMode,
    K::Batched,
    K::VmapMode,
    K::FuncTorchGradWrapper,
]);

/// `{FuncTorchBatched}`.
pub const FUNCTORCH_BATCHED_KS: DispatchKeySet = DispatchKeySet::from_key(K::FuncTorchBatched);

/// Expansion of `CompositeExplicitAutograd`: every backend runtime key.
pub const BACKEND_DISPATCH_KEYSET: DispatchKeySet = AUTOGRADOTHER_BACKENDS.add(K::Dense);

/// Expansion of `CompositeExplicitAutogradNonFunctional`: backends without
/// Sparse, XLA and Lazy (functional-only backends).
pub const NON_FUNCTIONAL_BACKEND_DISPATCH_KEYSET: DispatchKeySet = BACKEND_DISPATCH_KEYSET
    .remove(K::Sparse)
    .remove_backend(B::XLABit)
    .remove_backend(B::LazyBit);

/// Expansion of `CompositeImplicitAutograd`. Functionalize is deliberately
/// absent: PyTorch 2.15 reaches it only through a fallback.
pub const MATH_DISPATCH_KEYSET: DispatchKeySet = BACKEND_DISPATCH_KEYSET
    .add_set(AUTOGRAD_DISPATCH_KEYSET)
    .add(K::NestedTensor);

/// Expansion of `CompositeImplicitAutogradNestedTensor`.
pub const NESTED_DISPATCH_KEYSET: DispatchKeySet =
    DispatchKeySet::from_keys(&[K::AutogradNestedTensor, K::NestedTensor])
        .add_set(BACKEND_BITSET_MASK);

/// Expansion of `FuncTorchBatchedDecomposition` (newest behaviour).
pub const FUNCTORCH_BATCHED_DISPATCH_KEYSET: DispatchKeySet = FUNCTORCH_BATCHED_KS;

/// `getRuntimeDispatchKeySet`: the runtime keys an alias stands for; any
/// other key maps to its own singleton set. `Undefined` (asserted against in
/// PyTorch) yields the empty set.
pub const fn get_runtime_dispatch_key_set(alias_or_key: K) -> DispatchKeySet {
    match alias_or_key {
        K::Autograd => AUTOGRAD_DISPATCH_KEYSET.add_set(BACKEND_BITSET_MASK),
        K::CompositeImplicitAutograd => MATH_DISPATCH_KEYSET,
        K::CompositeImplicitAutogradNestedTensor => NESTED_DISPATCH_KEYSET,
        K::CompositeExplicitAutograd => BACKEND_DISPATCH_KEYSET,
        K::CompositeExplicitAutogradNonFunctional => NON_FUNCTIONAL_BACKEND_DISPATCH_KEYSET,
        K::FuncTorchBatchedDecomposition => FUNCTORCH_BATCHED_DISPATCH_KEYSET,
        other => DispatchKeySet::from_key(other),
    }
}

/// `runtimeDispatchKeySetHas(t, k)`: whether alias (or key) `t` covers
/// runtime key `k`. NestedTensor is excluded from the CompositeExplicit
/// aliases. Note that keys mapping to the empty set (aliases) are vacuously
/// contained, as in PyTorch; callers pass runtime keys.
#[inline]
pub const fn runtime_dispatch_key_set_has(t: K, k: K) -> bool {
    match t {
        K::Autograd => AUTOGRAD_DISPATCH_KEYSET.has(k.to_functionality_key()),
        K::CompositeImplicitAutograd => MATH_DISPATCH_KEYSET.has(k),
        K::CompositeImplicitAutogradNestedTensor => NESTED_DISPATCH_KEYSET.has(k),
        K::CompositeExplicitAutograd => {
            !matches!(k, K::NestedTensor) && BACKEND_DISPATCH_KEYSET.has(k)
        }
        K::CompositeExplicitAutogradNonFunctional => {
            !matches!(k, K::NestedTensor) && NON_FUNCTIONAL_BACKEND_DISPATCH_KEYSET.has(k)
        }
        K::FuncTorchBatchedDecomposition => FUNCTORCH_BATCHED_KS.has(k),
        _ => t as u16 == k as u16,
    }
}

/// `isIncludedInAlias(k, alias)`.
#[inline]
pub const fn is_included_in_alias(k: K, alias: K) -> bool {
    !matches!(k, K::Undefined) && runtime_dispatch_key_set_has(alias, k)
}

/// `getBackendKeySetFromAutograd`: the backend keys an autograd key guards.
/// Hand-written like PyTorch's switch: AutogradHIP, AutogradVE and
/// AutogradMTIA are missing and give the empty set.
pub const fn get_backend_key_set_from_autograd(k: K) -> DispatchKeySet {
    match k {
        K::AutogradCPU => DispatchKeySet::from_key(K::CPU),
        K::AutogradCUDA => DispatchKeySet::from_key(K::CUDA),
        K::AutogradXLA => DispatchKeySet::from_key(K::XLA),
        K::AutogradLazy => DispatchKeySet::from_key(K::Lazy),
        K::AutogradMeta => DispatchKeySet::from_key(K::Meta),
        K::AutogradMPS => DispatchKeySet::from_key(K::MPS),
        K::AutogradHPU => DispatchKeySet::from_key(K::HPU),
        K::AutogradIPU => DispatchKeySet::from_key(K::IPU),
        K::AutogradXPU => DispatchKeySet::from_key(K::XPU),
        K::AutogradMAIA => DispatchKeySet::from_key(K::MAIA),
        K::AutogradPrivateUse1 => DispatchKeySet::from_key(K::PrivateUse1),
        K::AutogradPrivateUse2 => DispatchKeySet::from_key(K::PrivateUse2),
        K::AutogradPrivateUse3 => DispatchKeySet::from_key(K::PrivateUse3),
        K::AutogradNestedTensor => {
            DispatchKeySet::from_key(K::NestedTensor).add_set(BACKEND_BITSET_MASK)
        }
        K::AutogradOther => AUTOGRADOTHER_BACKENDS,
        _ => DispatchKeySet::EMPTY,
    }
}

/// Whether backend `b` has an autograd key of its own (HIP and VE do not and
/// use AutogradOther).
const fn has_own_autograd_key(b: B) -> bool {
    matches!(
        b,
        B::CPUBit
            | B::IPUBit
            | B::MTIABit
            | B::MAIABit
            | B::XPUBit
            | B::CUDABit
            | B::XLABit
            | B::LazyBit
            | B::MetaBit
            | B::MPSBit
            | B::HPUBit
            | B::PrivateUse1Bit
            | B::PrivateUse2Bit
            | B::PrivateUse3Bit
    )
}

/// `getAutogradRelatedKeySetFromBackend`: `{ADInplaceOrView, Autograd<B>}`,
/// or `{ADInplaceOrView, AutogradOther}` for backends without their own key.
pub const fn get_autograd_related_key_set_from_backend(b: B) -> DispatchKeySet {
    let autograd = if has_own_autograd_key(b) {
        to_runtime_per_backend_functionality_key(K::AutogradFunctionality, b)
    } else {
        K::AutogradOther
    };
    DispatchKeySet::from_keys(&[K::ADInplaceOrView, autograd])
}

/// `getAutogradKeyFromBackend`: `Autograd<B>` or `AutogradOther`.
pub const fn get_autograd_key_from_backend(b: B) -> K {
    get_autograd_related_key_set_from_backend(b).highest_priority_type_id()
}

/// `getAutocastRelatedKeySetFromBackend`: `{Autocast<B>}` or empty.
pub const fn get_autocast_related_key_set_from_backend(b: B) -> DispatchKeySet {
    let k = match b {
        B::CPUBit => K::AutocastCPU,
        B::MTIABit => K::AutocastMTIA,
        B::MAIABit => K::AutocastMAIA,
        B::XPUBit => K::AutocastXPU,
        B::IPUBit => K::AutocastIPU,
        B::HPUBit => K::AutocastHPU,
        B::CUDABit => K::AutocastCUDA,
        B::XLABit => K::AutocastXLA,
        B::PrivateUse1Bit => K::AutocastPrivateUse1,
        B::MPSBit => K::AutocastMPS,
        _ => return DispatchKeySet::EMPTY,
    };
    DispatchKeySet::from_key(k)
}

/// `highestPriorityBackendTypeId`: the highest backend key of `ks`, ignoring
/// autograd, autocast and other wrapper functionalities.
pub const fn highest_priority_backend_type_id(ks: DispatchKeySet) -> K {
    ks.intersect(BACKEND_FUNCTIONALITY_KEYS)
        .highest_priority_type_id()
}

impl K {
    /// `isBackendDispatchKey`: true for keys whose kernels are backend
    /// kernels (CompositeExplicitAutograd targets), NestedTensor excluded.
    pub const fn is_backend_dispatch_key(self) -> bool {
        !matches!(self, K::Undefined | K::NestedTensor)
            && !self.is_alias()
            && BACKEND_DISPATCH_KEYSET.has(self)
    }
}
