//! What a call would run and why, read off the master table: the walk a call makes through
//! its slots, each visited slot labelled with the precedence rule that filled it. Nothing runs.

use opdispatch_keys::{dispatch_table_index_for_key, DispatchKey, DispatchKeySet};

use super::compute::{compute_entry, front};
use super::{Fallbacks, MasterTable, OpState, OperatorEntry, Provenance};
use crate::kernel::{KernelFunction, KernelRef};
use crate::tls::tls_local_dispatch_key_set;

/// One table slot as a call sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotExplanation {
    /// The runtime key of the slot.
    pub key: DispatchKey,
    /// What the slot holds: "native" (a typed Rust kernel), "boxed", a front end's label for
    /// its boxed kernels (the Python package says "python"), "fallthrough", "redispatch" (a
    /// kernel that only passes the call on, such as the autograd fallback), "ambiguous"
    /// (the AutogradOther ambiguity marker) or "missing".
    pub kind: &'static str,
    /// The precedence rule that put the kernel there.
    pub rule: Provenance,
    /// The alias key whose registration fills the slot, for the alias rules.
    pub alias: Option<DispatchKey>,
    /// Where the kernel was registered (the registration's debug string).
    pub debug: String,
    /// False when the slot holds a kernel other than the one the rules would pick now: PyTorch's
    /// incremental table updates leave some slots stale, and a call runs what is stored.
    pub current: bool,
    /// For "redispatch" kernels: the mask applied to the key set before looking up again.
    pub redispatch_mask: Option<DispatchKeySet>,
}

/// The walk of one call through an operator's table.
#[derive(Debug, Clone)]
pub struct CallWalk {
    /// The union of the dispatch arguments' key sets.
    pub argument_keys: DispatchKeySet,
    pub tls_included: DispatchKeySet,
    pub tls_excluded: DispatchKeySet,
    /// After TLS and the operator's fallthrough mask: the set the call dispatches on.
    pub dispatch_keys: DispatchKeySet,
    /// Slots whose kernel only redispatched, in the order the call passes them.
    pub passed: Vec<SlotExplanation>,
    /// The slot whose kernel runs (or is missing).
    pub chosen: SlotExplanation,
    /// The key set the chosen kernel receives.
    pub chosen_keys: DispatchKeySet,
    /// The non-fallthrough slots below the chosen key that a redispatch would visit, in order.
    pub below: Vec<SlotExplanation>,
}

/// The alias key behind an alias rule.
fn alias_of(st: &OpState, prov: Provenance, kernel: &KernelFunction) -> Option<DispatchKey> {
    use DispatchKey as K;
    match prov {
        Provenance::DefaultBackendKernel => {
            let ceanf = front(st, K::CompositeExplicitAutogradNonFunctional);
            Some(if ceanf.is_some_and(|a| a.kernel.same_as(kernel)) {
                K::CompositeExplicitAutogradNonFunctional
            } else {
                K::CompositeExplicitAutograd
            })
        }
        Provenance::NestedKernel => Some(K::CompositeImplicitAutogradNestedTensor),
        Provenance::MathKernel | Provenance::AmbiguousAutogradOther => {
            Some(K::CompositeImplicitAutograd)
        }
        Provenance::AutogradKernel => Some(K::Autograd),
        Provenance::BatchedKernel => Some(K::FuncTorchBatchedDecomposition),
        Provenance::Kernel | Provenance::BackendFallback | Provenance::Missing => None,
    }
}

/// The rule that would have put `stored` in a slot, found from who registered it (for a slot
/// the incremental updates left behind).
fn origin_of(
    st: &OpState,
    fallbacks: &Fallbacks,
    stored: &KernelFunction,
) -> (Provenance, Option<DispatchKey>, String) {
    use DispatchKey as K;
    if let Some((key, a, _)) = st
        .kernels
        .iter()
        .find(|(_, a, _)| stored.same_as(&a.kernel))
    {
        let prov = match key {
            K::CompositeExplicitAutograd | K::CompositeExplicitAutogradNonFunctional => {
                Provenance::DefaultBackendKernel
            }
            K::CompositeImplicitAutograd => Provenance::MathKernel,
            K::CompositeImplicitAutogradNestedTensor => Provenance::NestedKernel,
            K::Autograd => Provenance::AutogradKernel,
            K::FuncTorchBatchedDecomposition => Provenance::BatchedKernel,
            _ => Provenance::Kernel,
        };
        let alias = key.is_alias().then_some(key);
        return (prov, alias, a.debug.to_string());
    }
    if let Some(fb) = fallbacks
        .iter()
        .flatten()
        .find(|f| stored.same_as(&f.kernel))
    {
        return (Provenance::BackendFallback, None, fb.debug.to_string());
    }
    if stored.is_valid() {
        (
            Provenance::AmbiguousAutogradOther,
            Some(K::CompositeImplicitAutograd),
            String::new(),
        )
    } else {
        (Provenance::Missing, None, String::new())
    }
}

fn explain_slot(
    st: &OpState,
    master: &MasterTable,
    fallbacks: &Fallbacks,
    k: DispatchKey,
) -> SlotExplanation {
    let stored = master.slot(dispatch_table_index_for_key(k));
    let (computed, prov) = compute_entry(st, fallbacks, k);
    let current = stored.same_as(&computed.kernel);
    let (rule, alias, debug) = if current {
        (prov, alias_of(st, prov, stored), computed.debug.to_string())
    } else {
        origin_of(st, fallbacks, stored)
    };
    SlotExplanation {
        key: k,
        kind: stored.kind(),
        rule,
        alias,
        debug,
        current,
        redispatch_mask: KernelRef::of(stored).redispatch_mask(),
    }
}

/// Drops leading fallthrough slots, as the call path does before a lookup.
fn skip_fallthroughs(master: &MasterTable, ks: DispatchKeySet) -> DispatchKeySet {
    crate::dispatcher::skip_fallthrough_slots(ks, |i| master.slot(i).is_fallthrough())
}

impl OperatorEntry {
    /// The walk a call with dispatch-argument keys `argument_keys` would make now, on this
    /// thread (its TLS included). `None` for an operator no longer in the registry.
    pub(crate) fn explain_call(
        &self,
        fallbacks: &Fallbacks,
        argument_keys: DispatchKeySet,
    ) -> Option<CallWalk> {
        let st = self.state.lock();
        let master = st.master.as_deref()?;
        let tls = tls_local_dispatch_key_set();
        let effective = (argument_keys | tls.included) - tls.excluded;
        let dispatch_keys = master.meta.drop_fallthroughs(effective);
        let mut ks = dispatch_keys;
        let mut passed = Vec::new();
        loop {
            let k = ks.highest_priority_type_id();
            let slot = explain_slot(&st, master, fallbacks, k);
            match slot.redispatch_mask {
                Some(m) => {
                    passed.push(slot);
                    ks = skip_fallthroughs(master, ks & m);
                }
                None => break,
            }
        }
        let chosen_key = ks.highest_priority_type_id();
        let chosen = explain_slot(&st, master, fallbacks, chosen_key);
        let mut below = Vec::new();
        let mut rest = ks.remove(chosen_key);
        while !rest.is_empty() {
            rest = skip_fallthroughs(master, rest);
            let k = rest.highest_priority_type_id();
            if k == DispatchKey::Undefined {
                break;
            }
            let slot = explain_slot(&st, master, fallbacks, k);
            if slot.kind != "fallthrough" {
                below.push(slot);
            }
            let next = rest.remove(k);
            if next == rest {
                break;
            }
            rest = next;
        }
        Some(CallWalk {
            argument_keys,
            tls_included: tls.included,
            tls_excluded: tls.excluded,
            dispatch_keys,
            passed,
            chosen,
            chosen_keys: ks,
            below,
        })
    }

    /// Every runtime slot whose stored kernel is valid, in table order, explained.
    pub(crate) fn explain_table(&self, fallbacks: &Fallbacks) -> Vec<SlotExplanation> {
        let st = self.state.lock();
        let Some(master) = st.master.as_deref() else {
            return Vec::new();
        };
        opdispatch_keys::runtime_keys_in_table_order()
            .iter()
            .filter(|&&k| master.slot(dispatch_table_index_for_key(k)).is_valid())
            .map(|&k| explain_slot(&st, master, fallbacks, k))
            .collect()
    }
}
