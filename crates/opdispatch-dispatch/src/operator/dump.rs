//! PyTorch's dumps (`dumpState`, `dumpComputedTable`, `listAllDispatchKeys`) and `checkInvariants`.

use std::fmt::Write as _;

use opdispatch_keys::{
    dispatch_table_index_for_key, runtime_keys_in_table_order, DispatchKey, NUM_RUNTIME_ENTRIES,
};

use super::compute::{build_table, compute_entry};
use super::{DispatchTable, Fallbacks, OpState, OperatorEntry};
use crate::kernel::KernelFunction;

impl OperatorEntry {
    /// PyTorch's `dumpState()`: the canonical (non-derived) registration state.
    pub fn dump_state(&self) -> String {
        self.dump_state_of(&self.state.lock())
    }

    fn dump_state_of(&self, st: &OpState) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "name: {}", self.name);
        match &st.schema {
            Some(a) => {
                let _ = writeln!(s, "schema: {}", a.schema);
                let _ = writeln!(s, "debug: {}", a.debug);
                let _ = writeln!(
                    s,
                    "alias analysis kind: {}{}",
                    a.schema.alias_analysis(),
                    if a.schema.is_default_alias_analysis_kind() {
                        " (default)"
                    } else {
                        ""
                    }
                );
            }
            None => s.push_str("schema: (none)\n"),
        }
        for (k, kern, active) in st.kernels.iter() {
            let _ = writeln!(
                s,
                "{}{}{}: {} :: {} [ {}]",
                k.name(),
                if k.is_alias() { "[alias]" } else { "" },
                if active { "" } else { " (inactive)" },
                kern.debug,
                kern.inferred_schema
                    .as_ref()
                    .map_or_else(|| "(none)".to_owned(), std::string::ToString::to_string),
                kern.kernel.dump_state()
            );
        }
        s
    }

    /// PyTorch's `dumpComputedTable()`, given the backend fallbacks (registry lock held).
    pub(crate) fn dump_computed_table(&self, fallbacks: &Fallbacks) -> String {
        self.dump_computed_table_with(&self.state.lock(), fallbacks)
    }

    /// The computed entry for `k` with its debug string and provenance.
    pub(crate) fn computed_entry(
        &self,
        fallbacks: &Fallbacks,
        k: DispatchKey,
    ) -> (KernelFunction, String, &'static str) {
        let st = self.state.lock();
        let (a, p) = compute_entry(&st, fallbacks, k);
        (a.kernel.clone(), a.debug.to_string(), p.as_str())
    }

    /// `checkInvariants()`, given the backend fallbacks (registry lock held).
    pub(crate) fn check_invariants(&self, fallbacks: &Fallbacks) -> crate::Result<()> {
        self.check_invariants_with(&self.state.lock(), fallbacks)
    }

    fn dump_computed_table_with(&self, st: &OpState, fallbacks: &Fallbacks) -> String {
        let mut s = String::new();
        for &k in runtime_keys_in_table_order() {
            let (kern, prov) = compute_entry(st, fallbacks, k);
            if kern.kernel.is_valid() {
                let _ = writeln!(
                    s,
                    "{}: {}{} [{}]",
                    k.name(),
                    if kern.kernel.is_fallthrough() {
                        "fallthrough "
                    } else {
                        ""
                    },
                    kern.debug,
                    prov.as_str()
                );
            }
        }
        s
    }

    /// `listAllDispatchKeys()`: keys (table order, Undefined excluded) whose stored entry is valid.
    pub(crate) fn list_all_dispatch_keys(table: &DispatchTable) -> String {
        let names: Vec<&str> = runtime_keys_in_table_order()[1..]
            .iter()
            .filter(|&&k| table.entries[dispatch_table_index_for_key(k)].is_valid())
            .map(|k| k.name())
            .collect();
        format!("[{}]", names.join(", "))
    }

    /// `checkInvariants()`: the stored table (when built) equals a recomputation.
    fn check_invariants_with(&self, st: &OpState, fallbacks: &Fallbacks) -> crate::Result<()> {
        let mut failed: Vec<String> = Vec::new();
        let mut check = |what: &str, holds: bool| {
            if !holds {
                failed.push(what.to_owned());
            }
        };
        if let Some(a) = &st.schema {
            check("schema name", a.schema.operator_name() == &self.name);
        }
        check(
            "no Undefined kernel",
            !st.kernels.contains(DispatchKey::Undefined),
        );
        if let Some(table) = st.master.as_deref() {
            let fresh = build_table(st, fallbacks);
            let (fm, tm) = (&fresh.meta, &table.meta);
            check(
                "dispatch argument indices",
                fm.dispatch_arg_indices_reverse == tm.dispatch_arg_indices_reverse,
            );
            check(
                "non-fallthrough keys per backend",
                fm.non_fallthrough_keys_per_backend == tm.non_fallthrough_keys_per_backend,
            );
            check(
                "requires bitset per backend",
                fm.requires_bitset_per_backend == tm.requires_bitset_per_backend,
            );
            check(
                "slots owned by registrations",
                table.slots_owned_by(st, fallbacks),
            );
            if let Some(snapshot) = self.table.load_full() {
                check("snapshot owners match slots", snapshot.owners_match_slots());
            }
            // The shared mask is only consulted while the per-backend masks agree; then it must
            // mask exactly what they mask.
            if !tm.requires_bitset_per_backend {
                let func = !opdispatch_keys::FULL_BACKEND_MASK;
                check(
                    "shared fallthrough mask",
                    tm.non_fallthrough_keys.raw_repr() & func
                        == tm.non_fallthrough_keys_per_backend[0].raw_repr() & func,
                );
            }
            for i in 0..NUM_RUNTIME_ENTRIES {
                let what = format!("slot of {}", runtime_keys_in_table_order()[i].name());
                check(&what, fresh.slot(i).same_as(table.slot(i)));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(crate::DispatchError::Internal(format!(
                "Failed: {}\nCanonical state\n~~~~~~~~~~~\n{}\n\nComputed table:\n~~~~~~~~~~~\n{}",
                failed.join(", "),
                self.dump_state_of(st),
                self.dump_computed_table_with(st, fallbacks)
            )))
        }
    }
}
