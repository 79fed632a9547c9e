//! Port of PyTorch's test/test_dispatch.py `commute` scenarios, checked against the states and
//! computed tables PyTorch 2.15 printed for every subset of registrations.
//!
//! The harness mirrors `TestDispatch.run_ops` / `commute`: each registration runs in its own
//! FRAGMENT library (file "/dev/null", line 0, as `C._dispatch_library` defaults), libraries are
//! created in every ctor permutation and dropped in every dtor permutation, and after every
//! step `dump_state()` and `dump_computed_table()` of the operator must equal what PyTorch printed
//! for the set of registrations in effect. Failed registrations must report PyTorch's exact error
//! and leave the dispatcher as it was.
//!
//! Golden data: `data/test_dispatch_golden_2.15.filtered.json`, produced from
//! `/work/shared/spec/test_dispatch_golden_2.15.json` by `data/filter_golden.py`, which keeps the
//! table lines of the keys opdispatch models (see [`TABLE_KEYS`]). Built-in fallbacks print their
//! own source location, which differs between PyTorch and opdispatch; both sides replace
//! `registered at <path>:<line>` (any path except /dev/null) by a placeholder.
//!
//! Scenarios with four or five registrations have 24 x 24 or 120 x 120 ctor/dtor orders. By
//! default every ctor order runs with three dtor orders (reverse, same, and a rotating one, so
//! every dtor permutation is still used); set `OPDISPATCH_FULL_COMMUTE=1` to run all
//! combinations, as PyTorch does (about a minute in a debug build).

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use opdispatch_dispatch::testing::t_t_kernel;
use opdispatch_dispatch::{
    parse_alias_analysis_kind, DispatchKey, Dispatcher, Library, LibraryKind, OperatorName, Result,
};

/// Keys whose computed-table lines are compared (the others are PyTorch-only fallbacks).
const TABLE_KEYS: &[&str] = &[
    "Undefined",
    "CPU",
    "CUDA",
    "XLA",
    "Meta",
    "FPGA",
    "QuantizedCPU",
    "SparseCPU",
    "PrivateUse1",
    "AutogradOther",
    "AutogradCPU",
    "AutogradCUDA",
    "AutogradXLA",
    "AutogradPrivateUse1",
    "AutogradMeta",
    "BackendSelect",
    "ADInplaceOrView",
    "AutocastCPU",
    "AutocastCUDA",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Golden {
    state: String,
    table: String,
}

type GoldenFile = HashMap<String, HashMap<String, Golden>>;

fn golden_file() -> &'static GoldenFile {
    static G: OnceLock<GoldenFile> = OnceLock::new();
    G.get_or_init(|| {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("data/test_dispatch_golden_2.15.filtered.json"))
                .unwrap();
        let mut out = GoldenFile::new();
        for (test, subsets) in v.as_object().unwrap() {
            let m = out.entry(test.clone()).or_default();
            for (subset, r) in subsets.as_object().unwrap() {
                m.insert(
                    subset.clone(),
                    Golden {
                        state: r["state"].as_str().unwrap().to_owned(),
                        table: r["table"].as_str().unwrap().to_owned(),
                    },
                );
            }
        }
        out
    })
}

/// Replaces the location of a built-in fallback ("registered at <path>:<line>" with a path other
/// than /dev/null) by a placeholder.
fn normalize_line(line: &str) -> String {
    const AT: &str = "registered at ";
    let Some(p) = line.find(AT) else {
        return line.to_owned();
    };
    let rest = &line[p + AT.len()..];
    if rest.starts_with("/dev/null:") {
        return line.to_owned();
    }
    let end = rest.find(" [").unwrap_or(rest.len());
    format!("{}{AT}<builtin>{}", &line[..p], &rest[end..])
}

/// Keeps the lines of [`TABLE_KEYS`] (in table order) and normalizes built-in locations.
fn filter_table(table: &str) -> String {
    table
        .lines()
        .filter(|l| {
            l.split_once(": ")
                .is_some_and(|(k, _)| TABLE_KEYS.contains(&k))
        })
        .map(|l| normalize_line(l) + "\n")
        .collect()
}

/// One registration of a scenario, run inside its own FRAGMENT library.
type Reg = Box<dyn Fn(&mut Library) -> Result<()> + Send + Sync>;

fn opt_key(k: &str) -> Option<DispatchKey> {
    (!k.is_empty()).then(|| k.parse::<DispatchKey>().unwrap())
}

/// `_DispatchModule.def_(schema, alias)`.
fn def_(schema: &'static str, alias: &'static str) -> Reg {
    Box::new(move |m| {
        m.def(schema, Some(parse_alias_analysis_kind(alias)?))
            .map(drop)
    })
}

/// `_DispatchModule.def_legacy(schema)`: alias analysis kind left unset.
fn def_legacy(schema: &'static str) -> Reg {
    Box::new(move |m| m.def(schema, None).map(drop))
}

/// `_DispatchModule.def_name_t_t(name, dispatch='', debug='default_def_name_t_t')`.
fn def_name_t_t(name: &'static str, dispatch: &'static str, debug: &'static str) -> Reg {
    Box::new(move |m| {
        let mut f = t_t_kernel().debug(debug);
        if let Some(k) = opt_key(dispatch) {
            f = f.dispatch(k);
        }
        m.def_with(name, None, f).map(drop)
    })
}

/// `_DispatchModule.impl_t_t(name, dispatch='', debug='impl_t_t')`.
fn impl_t_t(name: &'static str, dispatch: &'static str, debug: &'static str) -> Reg {
    Box::new(move |m| {
        let mut f = t_t_kernel().debug(debug);
        if let Some(k) = opt_key(dispatch) {
            f = f.dispatch(k);
        }
        m.impl_(name, f)
    })
}

fn subset_key(active: &BTreeSet<usize>) -> String {
    if active.is_empty() {
        "<empty>".to_owned()
    } else {
        active
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn go(cur: &mut Vec<usize>, used: &mut [bool], out: &mut Vec<Vec<usize>>) {
        if cur.len() == used.len() {
            out.push(cur.clone());
            return;
        }
        for i in 0..used.len() {
            if !used[i] {
                used[i] = true;
                cur.push(i);
                go(cur, used, out);
                cur.pop();
                used[i] = false;
            }
        }
    }
    let mut out = Vec::new();
    go(&mut Vec::new(), &mut vec![false; n], &mut out);
    out
}

static NS_COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Harness {
    test: &'static str,
    ns: String,
    op_name: OperatorName,
    golden: &'static HashMap<String, Golden>,
    ops: Vec<Reg>,
    expect_raises: bool,
    /// Subsets visited (each must have a golden entry).
    visited: BTreeSet<String>,
    checks: usize,
    /// Whether to run `check_invariants()` (stored table == recomputed table) at every step.
    check_invariants: bool,
    expected_cache: HashMap<String, Golden>,
    /// Raw (state, table) dumps already found equal to the golden entry, per subset.
    verified: HashMap<String, (String, String)>,
}

impl Harness {
    fn new(test: &'static str, ops: Vec<Reg>, expect_raises: bool) -> Self {
        // A namespace of its own per scenario and per run: tests share the global dispatcher.
        let n = NS_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ns = format!("__golden_{test}_{n}__");
        let op_name = OperatorName::new(format!("{ns}::foo"), "");
        let golden = golden_file()
            .get(test)
            .unwrap_or_else(|| panic!("no golden data for {test}"));
        Self {
            test,
            ns,
            op_name,
            golden,
            ops,
            expect_raises,
            visited: BTreeSet::new(),
            checks: 0,
            check_invariants: true,
            expected_cache: HashMap::new(),
            verified: HashMap::new(),
        }
    }

    /// The golden entry for `active`, with "test::" rewritten to this scenario's namespace.
    fn expected(&mut self, active: &BTreeSet<usize>) -> Golden {
        let key = subset_key(active);
        if let Some(g) = self.expected_cache.get(&key) {
            return g.clone();
        }
        let g = self
            .golden
            .get(&key)
            .unwrap_or_else(|| panic!("{}: no golden entry for subset {key}", self.test));
        let ns = format!("{}::", self.ns);
        let g = Golden {
            state: g.state.replace("test::", &ns),
            table: filter_table(&g.table.replace("test::", &ns)),
        };
        self.expected_cache.insert(key, g.clone());
        g
    }

    fn check(&mut self, active: &BTreeSet<usize>, provenance: &dyn Fn() -> String) {
        self.checks += 1;
        let key = subset_key(active);
        self.visited.insert(key.clone());
        let raw = match Dispatcher::singleton().find_op(&self.op_name) {
            None => (String::new(), String::new()),
            Some(op) => {
                if self.check_invariants {
                    op.check_invariants().unwrap_or_else(|e| {
                        panic!(
                            "{}: invariants broken after {}: {e}",
                            self.test,
                            provenance()
                        )
                    });
                }
                (op.dump_state(), op.dump_computed_table())
            }
        };
        // The same raw dumps were already checked against the golden entry for this subset.
        if self.verified.get(&key) == Some(&raw) {
            return;
        }
        let exp = self.expected(active);
        let act = Golden {
            state: raw.0.clone(),
            table: filter_table(&raw.1),
        };
        assert_eq!(
            act.state,
            exp.state,
            "{}: dump_state mismatch for subset {key} after {}",
            self.test,
            provenance()
        );
        assert_eq!(
            act.table,
            exp.table,
            "{}: dump_computed_table mismatch for subset {key} after {}",
            self.test,
            provenance()
        );
        self.verified.insert(key, raw);
    }

    /// `run_ops(name, ops, ctor_order, dtor_order, results, expect_raises)`.
    fn run_ops(&mut self, ctor_order: &[usize], dtor_order: &[usize]) {
        let n = self.ops.len();
        let mut refs: Vec<Option<Library>> = (0..n).map(|_| None).collect();
        let mut active = BTreeSet::new();
        self.check(&active, &|| "initial state".to_owned());
        let mut last_ctor = 0;
        for (i, &op_ix) in ctor_order.iter().enumerate() {
            last_ctor = i;
            let mut lib =
                Library::new(LibraryKind::Fragment, &self.ns, None, "/dev/null", 0).unwrap();
            active.insert(op_ix);
            let r = (self.ops[op_ix])(&mut lib);
            refs[op_ix] = Some(lib);
            match r {
                Ok(()) => self.check(&active, &|| {
                    format!("running ctors {:?}", &ctor_order[..=i])
                }),
                Err(e) => {
                    assert!(
                        self.expect_raises,
                        "{}: unexpected error after running ctors {:?}: {e}",
                        self.test,
                        &ctor_order[..=i]
                    );
                    let exp = self.expected(&active);
                    let actual = e.to_string();
                    let actual = actual.split("\nException raised from ").next().unwrap();
                    assert_eq!(
                        actual,
                        exp.state,
                        "{}: error text for subset {} (ctors {:?})",
                        self.test,
                        subset_key(&active),
                        &ctor_order[..=i]
                    );
                    self.checks += 1;
                    self.visited.insert(subset_key(&active));
                    active.remove(&op_ix);
                    // A failed registration must leave the dispatcher exactly as it was.
                    self.check(&active, &|| {
                        format!(
                            "running ctors {:?} and then failing to run ctor {op_ix} (wedged dispatcher?)",
                            &ctor_order[..i]
                        )
                    });
                    break;
                }
            }
        }
        if self.expect_raises && active.len() == n {
            panic!(
                "{}: expected an error, but none was raised (ctors {ctor_order:?})",
                self.test
            );
        }
        for (i, &op_ix) in dtor_order.iter().enumerate() {
            refs[op_ix] = None;
            if self.expect_raises {
                active.remove(&op_ix);
            } else {
                assert!(active.remove(&op_ix));
            }
            self.check(&active, &|| {
                format!(
                    "running ctors {:?}, then running dtors {:?}",
                    &ctor_order[..=last_ctor],
                    &dtor_order[..=i]
                )
            });
        }
        assert!(
            Dispatcher::singleton().find_op(&self.op_name).is_none(),
            "{}: operator still registered after every library was dropped",
            self.test
        );
    }
}

fn full_commute() -> bool {
    std::env::var("OPDISPATCH_FULL_COMMUTE").is_ok_and(|v| v == "1")
}

/// `commute(name, ops, ctor_order, expect_raises)`: returns the golden result for the full set
/// after checking every visited state.
fn commute(
    test: &'static str,
    ops: Vec<Reg>,
    ctor_order: Option<Vec<usize>>,
    expect_raises: bool,
) -> Golden {
    commute_with(test, ops, ctor_order, expect_raises, true)
}

/// [`commute`], optionally without the per-step `check_invariants()` (PyTorch's harness passes
/// the bare name "foo" to `_dispatch_check_invariants`, so it never checks them).
fn commute_with(
    test: &'static str,
    ops: Vec<Reg>,
    ctor_order: Option<Vec<usize>>,
    expect_raises: bool,
    check_invariants: bool,
) -> Golden {
    let n = ops.len();
    let mut h = Harness::new(test, ops, expect_raises);
    h.check_invariants = check_invariants;
    let perms = permutations(n);
    let ctor_orders = match ctor_order {
        Some(o) => vec![o],
        None => perms.clone(),
    };
    for (ci, ctor) in ctor_orders.iter().enumerate() {
        if n <= 3 || full_commute() {
            for dtor in &perms {
                h.run_ops(ctor, dtor);
            }
        } else {
            // Sample (debug builds are slow and n! x n! grows fast): reverse order, same order,
            // and the ci-th permutation, so that over all ctor orders every dtor permutation
            // still runs once and every subset is reached both by adding and by removing.
            let dtors: [Vec<usize>; 3] = [
                ctor.iter().rev().copied().collect(),
                ctor.clone(),
                perms[ci % perms.len()].clone(),
            ];
            for dtor in &dtors {
                h.run_ops(ctor, dtor);
            }
        }
    }
    // Every subset PyTorch recorded must have been visited here too, and vice versa.
    let golden_keys: BTreeSet<String> = h.golden.keys().cloned().collect();
    assert_eq!(
        h.visited, golden_keys,
        "{test}: visited subsets differ from PyTorch's"
    );
    assert!(h.checks > 0);
    let all: BTreeSet<usize> = (0..n).collect();
    let mut g = h.expected(&all);
    let ns = format!("{}::", h.ns);
    g.state = g.state.replace(&ns, "test::");
    g.table = g.table.replace(&ns, "test::");
    g
}

/// `extract_dispatch_table_with_keys(table, keys)` on an already filtered table, with built-in
/// locations shown as "registered in pytorch framework" like the Python harness does.
fn extract(table: &str, keys: &[&str]) -> String {
    table
        .lines()
        .filter(|l| {
            keys.iter()
                .any(|k| l.split_once(": ").is_some_and(|(lk, _)| lk == *k))
        })
        .map(|l| l.replace("registered at <builtin>", "registered in pytorch framework") + "\n")
        .collect()
}

const DEFAULT_KEYS: &[&str] = &[
    "Undefined",
    "CPU",
    "CUDA",
    "XLA",
    "AutogradOther",
    "AutogradCPU",
    "AutogradCUDA",
    "AutogradXLA",
];
const KEYS_WITH_FPGA: &[&str] = &[
    "Undefined",
    "CPU",
    "CUDA",
    "XLA",
    "AutogradOther",
    "AutogradCPU",
    "AutogradCUDA",
    "AutogradXLA",
    "FPGA",
];

/// PyTorch creates this unused global IMPL block in some tests; creating it must be harmless.
fn global_autogradcpu_block() -> Library {
    Library::new(
        LibraryKind::Impl,
        "_",
        Some(DispatchKey::AutogradCPU),
        "/dev/null",
        0,
    )
    .unwrap()
}

// ------------------------------------------------------------------------------ scenarios

#[test]
fn test_def() {
    let r = commute(
        "test_def",
        vec![
            def_("foo(Tensor x) -> Tensor", ""),
            impl_t_t("foo", "", "impl_t_t"),
            impl_t_t("foo", "CPU", "impl_t_t"),
            impl_t_t("foo", "Autograd", "impl_t_t"),
            impl_t_t("foo", "AutogradCPU", "impl_t_t"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor x) -> Tensor
debug: registered at /dev/null:0
alias analysis kind: FROM_SCHEMA
CPU: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
AutogradCPU: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
Autograd[alias]: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeImplicitAutograd[alias]: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
}

#[test]
fn test_def_impl_schema_mismatch() {
    let r = commute(
        "test_def_impl_schema_mismatch",
        vec![
            def_("foo(Tensor x, Tensor y) -> Tensor", ""),
            impl_t_t("foo", "", "impl_t_t"),
        ],
        None,
        true,
    );
    assert_eq!(
        r.state,
        "Inferred operator schema for a C++ kernel function doesn't match the expected function schema.
  operator: test::foo
  expected schema: test::foo(Tensor x, Tensor y) -> Tensor
    registered at /dev/null:0
  inferred schema: (Tensor _0) -> Tensor _0
    impl_t_t
  reason: The number of arguments is different. 2 vs 1."
    );
}

#[test]
fn test_def_with_inference() {
    let r = commute(
        "test_def_with_inference",
        vec![
            def_name_t_t("foo", "", "default_def_name_t_t"),
            impl_t_t("foo", "CPU", "impl_t_t"),
            impl_t_t("foo", "Autograd", "impl_t_t"),
            impl_t_t("foo", "AutogradCPU", "impl_t_t"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor _0) -> Tensor _0
debug: registered at /dev/null:0
alias analysis kind: CONSERVATIVE
CPU: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
AutogradCPU: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
Autograd[alias]: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeImplicitAutograd[alias]: default_def_name_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
}

#[test]
fn test_def_only() {
    let r = commute(
        "test_def_only",
        vec![def_("foo(Tensor x, Tensor y) -> Tensor", "")],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor x, Tensor y) -> Tensor
debug: registered at /dev/null:0
alias analysis kind: FROM_SCHEMA
"
    );
}

#[test]
fn test_impl_only() {
    let r = commute(
        "test_impl_only",
        vec![
            impl_t_t("foo", "", "impl_t_t"),
            impl_t_t("foo", "CPU", "impl_t_t"),
            impl_t_t("foo", "Autograd", "impl_t_t"),
            impl_t_t("foo", "AutogradCPU", "impl_t_t"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: (none)
CPU: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
AutogradCPU: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
Autograd[alias]: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeImplicitAutograd[alias]: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
}

#[test]
fn test_computed_table() {
    let r = commute(
        "test_computed_table",
        vec![
            def_name_t_t("foo", "", "default_def_name_t_t"),
            impl_t_t("foo", "CPU", "fn_cpu"),
            impl_t_t("foo", "XLA", "fn_xla"),
            impl_t_t("foo", "Autograd", "fn_autograd"),
            impl_t_t("foo", "AutogradCPU", "fn_autogradcpu"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor _0) -> Tensor _0
debug: registered at /dev/null:0
alias analysis kind: CONSERVATIVE
CPU: fn_cpu :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
XLA: fn_xla :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
AutogradCPU: fn_autogradcpu :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
Autograd[alias]: fn_autograd :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeImplicitAutograd[alias]: default_def_name_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
    assert_eq!(
        extract(&r.table, DEFAULT_KEYS),
        "Undefined: default_def_name_t_t [math kernel]
CPU: fn_cpu [kernel]
CUDA: default_def_name_t_t [math kernel]
XLA: fn_xla [kernel]
AutogradOther: default_def_name_t_t [math kernel]
AutogradCPU: fn_autogradcpu [kernel]
AutogradCUDA: default_def_name_t_t [math kernel]
AutogradXLA: fn_autograd [autograd kernel]
"
    );
}

#[test]
fn test_computed_table_with_cpu_math_autogradcpu_fallthrough() {
    let _global_m = global_autogradcpu_block();
    let r = commute(
        "test_computed_table_with_cpu_math_autogradcpu_fallthrough",
        vec![
            def_name_t_t("foo", "", "default_def_name_t_t"),
            impl_t_t("foo", "CPU", "impl_t_t"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor _0) -> Tensor _0
debug: registered at /dev/null:0
alias analysis kind: CONSERVATIVE
CPU: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeImplicitAutograd[alias]: default_def_name_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
    assert_eq!(
        extract(&r.table, &["CPU", "AutogradCPU"]),
        "CPU: impl_t_t [kernel]
AutogradCPU: registered in pytorch framework [backend fallback]
"
    );
}

#[test]
fn test_computed_table_with_math() {
    let _global_m = global_autogradcpu_block();
    let r = commute(
        "test_computed_table_with_math",
        vec![
            def_("foo(Tensor x) -> Tensor", ""),
            impl_t_t("foo", "CompositeImplicitAutograd", "impl_t_t"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor x) -> Tensor
debug: registered at /dev/null:0
alias analysis kind: FROM_SCHEMA
CompositeImplicitAutograd[alias]: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
    assert_eq!(
        extract(&r.table, DEFAULT_KEYS),
        "Undefined: impl_t_t [math kernel]
CPU: impl_t_t [math kernel]
CUDA: impl_t_t [math kernel]
XLA: impl_t_t [math kernel]
AutogradOther: impl_t_t [math kernel]
AutogradCPU: impl_t_t [math kernel]
AutogradCUDA: impl_t_t [math kernel]
AutogradXLA: impl_t_t [math kernel]
"
    );
}

#[test]
fn test_computed_table_with_cpu_math() {
    let _global_m = global_autogradcpu_block();
    let r = commute(
        "test_computed_table_with_cpu_math",
        vec![
            def_("foo(Tensor x) -> Tensor", ""),
            impl_t_t("foo", "CPU", "fn_cpu"),
            impl_t_t("foo", "CompositeImplicitAutograd", "fn_math"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor x) -> Tensor
debug: registered at /dev/null:0
alias analysis kind: FROM_SCHEMA
CPU: fn_cpu :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeImplicitAutograd[alias]: fn_math :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
    assert_eq!(
        extract(&r.table, DEFAULT_KEYS),
        "Undefined: fn_math [math kernel]
CPU: fn_cpu [kernel]
CUDA: fn_math [math kernel]
XLA: fn_math [math kernel]
AutogradOther: fn_math [math kernel]
AutogradCPU: registered in pytorch framework [backend fallback]
AutogradCUDA: fn_math [math kernel]
AutogradXLA: fn_math [math kernel]
"
    );
}

#[test]
fn test_computed_table_with_autograd() {
    let _global_m = global_autogradcpu_block();
    let r = commute(
        "test_computed_table_with_autograd",
        vec![
            def_("foo(Tensor x) -> Tensor", ""),
            impl_t_t("foo", "Autograd", "impl_t_t"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor x) -> Tensor
debug: registered at /dev/null:0
alias analysis kind: FROM_SCHEMA
Autograd[alias]: impl_t_t :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
    assert_eq!(
        extract(&r.table, DEFAULT_KEYS),
        "AutogradOther: impl_t_t [autograd kernel]
AutogradCPU: impl_t_t [autograd kernel]
AutogradCUDA: impl_t_t [autograd kernel]
AutogradXLA: impl_t_t [autograd kernel]
"
    );
}

#[test]
fn test_computed_table_with_cpu_autograd_math() {
    let r = commute(
        "test_computed_table_with_cpu_autograd_math",
        vec![
            def_("foo(Tensor x) -> Tensor", ""),
            impl_t_t("foo", "CPU", "fn_cpu"),
            impl_t_t("foo", "Autograd", "fn_autograd"),
            impl_t_t("foo", "CompositeImplicitAutograd", "fn_math"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor x) -> Tensor
debug: registered at /dev/null:0
alias analysis kind: FROM_SCHEMA
CPU: fn_cpu :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
Autograd[alias]: fn_autograd :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeImplicitAutograd[alias]: fn_math :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
    assert_eq!(
        extract(&r.table, DEFAULT_KEYS),
        "Undefined: fn_math [math kernel]
CPU: fn_cpu [kernel]
CUDA: fn_math [math kernel]
XLA: fn_math [math kernel]
AutogradOther: fn_math [math kernel]
AutogradCPU: fn_autograd [autograd kernel]
AutogradCUDA: fn_math [math kernel]
AutogradXLA: fn_math [math kernel]
"
    );
}

#[test]
fn test_computed_table_with_ambiguous_autogradother() {
    let r = commute(
        "test_computed_table_with_ambiguous_autogradother",
        vec![
            def_("foo(Tensor x) -> Tensor", ""),
            impl_t_t("foo", "CompositeImplicitAutograd", "fn_math"),
            impl_t_t("foo", "FPGA", "fn_fpga"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor x) -> Tensor
debug: registered at /dev/null:0
alias analysis kind: FROM_SCHEMA
FPGA: fn_fpga :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeImplicitAutograd[alias]: fn_math :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
    assert_eq!(
        extract(&r.table, KEYS_WITH_FPGA),
        "Undefined: fn_math [math kernel]
CPU: fn_math [math kernel]
CUDA: fn_math [math kernel]
XLA: fn_math [math kernel]
FPGA: fn_fpga [kernel]
AutogradOther: ambiguous_autogradother [ambiguous autogradother]
AutogradCPU: fn_math [math kernel]
AutogradCUDA: fn_math [math kernel]
AutogradXLA: fn_math [math kernel]
"
    );
}

#[test]
fn test_computed_table_with_cpu_defaultbackend() {
    let r = commute(
        "test_computed_table_with_cpu_defaultbackend",
        vec![
            def_("foo(Tensor x) -> Tensor", ""),
            impl_t_t("foo", "CPU", "fn_cpu"),
            impl_t_t("foo", "CompositeExplicitAutograd", "fn_defaultbackend"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor x) -> Tensor
debug: registered at /dev/null:0
alias analysis kind: FROM_SCHEMA
CPU: fn_cpu :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeExplicitAutograd[alias]: fn_defaultbackend :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
    assert_eq!(
        extract(&r.table, DEFAULT_KEYS),
        "Undefined: fn_defaultbackend [default backend kernel]
CPU: fn_cpu [kernel]
CUDA: fn_defaultbackend [default backend kernel]
XLA: fn_defaultbackend [default backend kernel]
AutogradOther: registered in pytorch framework [backend fallback]
AutogradCPU: registered in pytorch framework [backend fallback]
AutogradCUDA: registered in pytorch framework [backend fallback]
AutogradXLA: registered in pytorch framework [backend fallback]
"
    );
}

#[test]
fn test_computed_table_with_cpu_autograd_defaultbackend() {
    let r = commute(
        "test_computed_table_with_cpu_autograd_defaultbackend",
        vec![
            def_("foo(Tensor x) -> Tensor", ""),
            impl_t_t("foo", "CPU", "fn_cpu"),
            impl_t_t("foo", "Autograd", "fn_autograd"),
            impl_t_t("foo", "CompositeExplicitAutograd", "fn_defaultbackend"),
        ],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor x) -> Tensor
debug: registered at /dev/null:0
alias analysis kind: FROM_SCHEMA
CPU: fn_cpu :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
Autograd[alias]: fn_autograd :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeExplicitAutograd[alias]: fn_defaultbackend :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
    assert_eq!(
        extract(&r.table, KEYS_WITH_FPGA),
        "Undefined: fn_defaultbackend [default backend kernel]
CPU: fn_cpu [kernel]
CUDA: fn_defaultbackend [default backend kernel]
XLA: fn_defaultbackend [default backend kernel]
FPGA: fn_defaultbackend [default backend kernel]
AutogradOther: fn_autograd [autograd kernel]
AutogradCPU: fn_autograd [autograd kernel]
AutogradCUDA: fn_autograd [autograd kernel]
AutogradXLA: fn_autograd [autograd kernel]
"
    );
}

#[test]
fn test_computed_table_with_cpu_autograd_math_defaultbackend() {
    // Invariants are not checked per step here: registering CompositeExplicitAutograd after
    // CompositeImplicitAutograd + Autograd leaves the stored Autograd<Backend> entries stale
    // (see calls.rs `stale_autograd_entries_after_composite_explicit_registration`).
    let r = commute_with(
        "test_computed_table_with_cpu_autograd_math_defaultbackend",
        vec![
            def_("foo(Tensor x) -> Tensor", ""),
            impl_t_t("foo", "CPU", "fn_cpu"),
            impl_t_t("foo", "Autograd", "fn_autograd"),
            impl_t_t("foo", "CompositeImplicitAutograd", "fn_math"),
            impl_t_t("foo", "CompositeExplicitAutograd", "fn_defaultbackend"),
        ],
        None,
        false,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor x) -> Tensor
debug: registered at /dev/null:0
alias analysis kind: FROM_SCHEMA
CPU: fn_cpu :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
Autograd[alias]: fn_autograd :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeImplicitAutograd[alias]: fn_math :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeExplicitAutograd[alias]: fn_defaultbackend :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
    assert_eq!(
        extract(&r.table, DEFAULT_KEYS),
        "Undefined: fn_defaultbackend [default backend kernel]
CPU: fn_cpu [kernel]
CUDA: fn_defaultbackend [default backend kernel]
XLA: fn_defaultbackend [default backend kernel]
AutogradOther: fn_autograd [autograd kernel]
AutogradCPU: fn_autograd [autograd kernel]
AutogradCUDA: fn_autograd [autograd kernel]
AutogradXLA: fn_autograd [autograd kernel]
"
    );
}

const DUPLICATE_DEF_FOO_XY: &str = "Tried to register an operator (test::foo(Tensor x, Tensor y) -> Tensor) with the same name and overload name multiple times. Each overload's schema should only be registered with a single call to def(). Duplicate registration: registered at /dev/null:0. Original registration: registered at /dev/null:0";
const DUPLICATE_DEF_FOO_X: &str = "Tried to register an operator (test::foo(Tensor x) -> Tensor) with the same name and overload name multiple times. Each overload's schema should only be registered with a single call to def(). Duplicate registration: registered at /dev/null:0. Original registration: registered at /dev/null:0";

#[test]
fn test_multiple_def_error() {
    let r = commute(
        "test_multiple_def_error",
        vec![
            def_("foo(Tensor x, Tensor y) -> Tensor", ""),
            def_("foo(Tensor x, Tensor y) -> Tensor", ""),
        ],
        None,
        true,
    );
    assert_eq!(r.state, DUPLICATE_DEF_FOO_XY);
}

#[test]
fn test_def_with_explicit_alias() {
    let r = commute(
        "test_def_with_explicit_alias",
        vec![def_("foo(Tensor x, Tensor y) -> Tensor", "PURE_FUNCTION")],
        None,
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: test::foo(Tensor x, Tensor y) -> Tensor
debug: registered at /dev/null:0
alias analysis kind: PURE_FUNCTION
"
    );
}

#[test]
fn test_multiple_def_alias_defaulting() {
    let r = commute(
        "test_multiple_def_alias_defaulting",
        vec![
            def_("foo(Tensor x) -> Tensor", "PURE_FUNCTION"),
            def_legacy("foo(Tensor x) -> Tensor"),
        ],
        None,
        true,
    );
    assert_eq!(r.state, DUPLICATE_DEF_FOO_X);
}

#[test]
fn test_multiple_def_alias_mismatch() {
    let r = commute(
        "test_multiple_def_alias_mismatch",
        vec![
            def_("foo(Tensor x) -> Tensor", "PURE_FUNCTION"),
            def_("foo(Tensor x) -> Tensor", "CONSERVATIVE"),
        ],
        None,
        true,
    );
    assert_eq!(r.state, DUPLICATE_DEF_FOO_X);
}

#[test]
fn test_overwrite_math() {
    let r = commute(
        "test_overwrite_math",
        vec![impl_t_t("foo", "", "fn1"), impl_t_t("foo", "", "fn2")],
        Some(vec![0, 1]),
        false,
    );
    assert_eq!(
        r.state,
        "name: test::foo
schema: (none)
CompositeImplicitAutograd[alias]: fn2 :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
CompositeImplicitAutograd[alias] (inactive): fn1 :: (Tensor _0) -> Tensor _0 [ boxed unboxed ]
"
    );
}

// ------------------------------------------------------------------- non-commute tests

/// Every scenario of the golden file has a test above.
#[test]
fn every_golden_scenario_is_ported() {
    let ported: BTreeSet<&str> = [
        "test_def",
        "test_def_impl_schema_mismatch",
        "test_def_with_inference",
        "test_def_only",
        "test_impl_only",
        "test_computed_table",
        "test_computed_table_with_cpu_math_autogradcpu_fallthrough",
        "test_computed_table_with_math",
        "test_computed_table_with_cpu_math",
        "test_computed_table_with_autograd",
        "test_computed_table_with_cpu_autograd_math",
        "test_computed_table_with_ambiguous_autogradother",
        "test_computed_table_with_cpu_defaultbackend",
        "test_computed_table_with_cpu_autograd_defaultbackend",
        "test_computed_table_with_cpu_autograd_math_defaultbackend",
        "test_multiple_def_error",
        "test_def_with_explicit_alias",
        "test_multiple_def_alias_defaulting",
        "test_multiple_def_alias_mismatch",
        "test_overwrite_math",
    ]
    .into_iter()
    .collect();
    let golden: BTreeSet<&str> = golden_file().keys().map(String::as_str).collect();
    assert_eq!(ported, golden);
}

#[test]
fn normalization_helpers() {
    assert_eq!(
        normalize_line(
            "AutogradCPU: registered at /a/b/VariableFallbackKernel.cpp:66 [backend fallback]"
        ),
        "AutogradCPU: registered at <builtin> [backend fallback]"
    );
    assert_eq!(
        normalize_line(
            "BackendSelect: fallthrough registered at src/fallbacks.rs:44 [backend fallback]"
        ),
        "BackendSelect: fallthrough registered at <builtin> [backend fallback]"
    );
    assert_eq!(
        normalize_line("CPU: registered at /dev/null:0 [kernel]"),
        "CPU: registered at /dev/null:0 [kernel]"
    );
    assert_eq!(
        normalize_line("CPU: fn_cpu [kernel]"),
        "CPU: fn_cpu [kernel]"
    );
    assert_eq!(
        filter_table("Python: x [backend fallback]\nCPU: y [kernel]\n"),
        "CPU: y [kernel]\n"
    );
}

#[test]
fn test_dispatch_print_registrations_for_dispatch_key_invalid() {
    let e = "invalid_key".parse::<DispatchKey>().unwrap_err();
    assert!(
        e.to_string()
            .contains("could not parse dispatch key: invalid_key"),
        "{e}"
    );
}

#[test]
fn dump_of_missing_operator_is_empty() {
    let name = OperatorName::new("__golden_never_registered__::foo", "");
    assert!(Dispatcher::singleton().find_op(&name).is_none());
}
