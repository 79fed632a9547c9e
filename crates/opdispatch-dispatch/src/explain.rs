//! `explain`: what a call would do and why, without running any kernel, and the computed table
//! as rows. PyTorch answers these questions only with text dumps read against the precedence
//! rules; the dispatcher knows the rule behind every slot, so it can say it.

use std::fmt::{self, Write as _};

use opdispatch_keys::{DispatchKey, DispatchKeySet};

use crate::operator::{CallWalk, SlotExplanation};
use crate::{Dispatcher, IValue, OperatorHandle, Provenance};

/// One schema argument as dispatch sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentKeys {
    pub name: String,
    /// Whether the schema makes the argument take part in key extraction (tensor-like types).
    pub dispatch_relevant: bool,
    /// The argument's key set (dispatch-relevant arguments only).
    pub key_set: Option<DispatchKeySet>,
}

/// The answer of [`Dispatcher::explain`].
#[derive(Debug, Clone)]
pub struct Explanation {
    /// `ns::name` or `ns::name.overload`.
    pub operator: String,
    pub schema: Option<String>,
    pub arguments: Vec<ArgumentKeys>,
    /// Runtime keys whose slot holds a fallthrough (the operator's fallthrough mask drops them).
    pub fallthrough_keys: Vec<DispatchKey>,
    pub walk: CallWalk,
}

impl Dispatcher {
    /// Explains a boxed call of `op` with `stack` (every argument, defaults filled in, as for
    /// [`OperatorHandle::call_boxed`]) on this thread, without running anything.
    pub fn explain(&self, op: &OperatorHandle, stack: &[IValue]) -> Option<Explanation> {
        let schema = op.schema();
        let mut arguments = Vec::new();
        let mut argument_keys = DispatchKeySet::EMPTY;
        if let Some(s) = &schema {
            for (a, v) in s.arguments.iter().zip(stack) {
                let relevant = a.ty.is_tensor_like();
                let ks = relevant.then(|| v.key_set());
                if let Some(ks) = ks {
                    argument_keys |= ks;
                }
                arguments.push(ArgumentKeys {
                    name: a.name.clone(),
                    dispatch_relevant: relevant,
                    key_set: ks,
                });
            }
        }
        let fallthrough_keys = self.fallthrough_keys(op);
        let walk = self.with_fallbacks(|fb| op.0.explain_call(fb, argument_keys))?;
        Some(Explanation {
            operator: op.operator_name().to_string(),
            schema: schema.map(|s| s.to_string()),
            arguments,
            fallthrough_keys,
            walk,
        })
    }

    /// Every valid slot of `op`'s table, in dispatch-table order, with the rule behind it.
    pub fn explain_table(&self, op: &OperatorHandle) -> Vec<SlotExplanation> {
        self.with_fallbacks(|fb| op.0.explain_table(fb))
    }
}

/// What a rule means, for people.
pub fn describe_rule(slot: &SlotExplanation) -> String {
    let k = slot.key.name();
    let alias = slot.alias.map_or("", |a| a.name());
    let mut s = match slot.rule {
        Provenance::Kernel => format!("a kernel registered directly at {k}"),
        Provenance::DefaultBackendKernel => {
            format!("the {alias} kernel, which fills every backend slot without its own kernel")
        }
        Provenance::NestedKernel => format!("the {alias} kernel"),
        Provenance::MathKernel => format!(
            "the {alias} kernel (no backend kernel for this slot's backend, so the decomposition runs)"
        ),
        Provenance::AmbiguousAutogradOther => format!(
            "ambiguous: a {alias} kernel and a kernel for a backend that maps to AutogradOther"
        ),
        Provenance::AutogradKernel => format!("the {alias} alias kernel"),
        Provenance::BatchedKernel => format!("the {alias} kernel"),
        Provenance::BackendFallback => format!("the backend fallback for {k}"),
        Provenance::Missing => format!("nothing is registered that fills {k}"),
    };
    if !slot.current {
        s.push_str(
            " (left by an earlier registration: incremental table updates, as PyTorch's, did not recompute this slot)",
        );
    }
    s
}

/// What to register so a call that found `slot` missing runs.
pub fn fix_hint(operator: &str, slot: &SlotExplanation) -> String {
    if slot.key == DispatchKey::Undefined {
        format!(
            "the call has no tensor arguments, so it dispatches on Undefined: register a CompositeExplicitAutograd (or CompositeImplicitAutograd) kernel for {operator}, which fills that slot"
        )
    } else {
        format!(
            "register a kernel for {operator} at '{}' (or a CompositeExplicitAutograd kernel, which covers every backend)",
            slot.key.name()
        )
    }
}

fn slot_line(out: &mut String, slot: &SlotExplanation) {
    let _ = write!(
        out,
        "{}: {} kernel, {}",
        slot.key.name(),
        slot.kind,
        describe_rule(slot)
    );
    if !slot.debug.is_empty() {
        let _ = write!(out, "; {}", slot.debug);
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.schema.as_deref().unwrap_or(&self.operator));
        for a in &self.arguments {
            match a.key_set {
                Some(ks) => {
                    let _ = writeln!(s, "  argument {}: {ks}", a.name);
                }
                None => {
                    let _ = writeln!(s, "  argument {}: not a dispatch argument", a.name);
                }
            }
        }
        let w = &self.walk;
        let _ = writeln!(
            s,
            "  thread-local: included {}, excluded {}",
            w.tls_included, w.tls_excluded
        );
        if !self.fallthrough_keys.is_empty() {
            let names: Vec<&str> = self.fallthrough_keys.iter().map(|k| k.name()).collect();
            let _ = writeln!(s, "  fallthrough (skipped): {}", names.join(", "));
        }
        let _ = writeln!(s, "  dispatch key set: {}", w.dispatch_keys);
        for p in &w.passed {
            s.push_str("  passes ");
            slot_line(&mut s, p);
            s.push('\n');
        }
        s.push_str("  runs ");
        slot_line(&mut s, &w.chosen);
        s.push('\n');
        if w.chosen.kind == "missing" {
            let _ = writeln!(s, "  to fix: {}", fix_hint(&self.operator, &w.chosen));
        }
        if !w.below.is_empty() {
            let names: Vec<&str> = w.below.iter().map(|b| b.key.name()).collect();
            let _ = writeln!(s, "  a redispatch from there visits: {}", names.join(", "));
        }
        f.write_str(s.trim_end())
    }
}
