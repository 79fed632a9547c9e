//! Concurrency: calls never take the registration lock, so typed and boxed calls must keep
//! returning results of registered kernels while other threads register and deregister
//! kernels (of the same operator at other keys, and of other operators), and nothing may
//! deadlock. Bounded: the workers stop after a fixed time and a watchdog fails the test if they
//! do not finish.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use common::{tensor, unique_ns};
use opdispatch_dispatch::{
    CppFunction, DispatchKey as K, DispatchKeySet, Dispatcher, IValue, IncludeDispatchKeyGuard,
    Library, LibraryKind, OperatorName, TensorRef,
};

fn cpu_kernel(_x: TensorRef, n: i64) -> i64 {
    n + 1
}
fn autograd_kernel(_x: TensorRef, n: i64) -> i64 {
    n + 10
}
fn cuda_kernel(_x: TensorRef, n: i64) -> i64 {
    n + 20
}
fn python_kernel(_x: TensorRef, n: i64) -> i64 {
    n + 30
}
type Sig = fn(TensorRef, i64) -> i64;

const RUN_FOR: Duration = Duration::from_millis(1500);
const WATCHDOG: Duration = Duration::from_secs(20);

#[test]
fn calls_while_registering_and_deregistering() {
    let ns = unique_ns("stress");
    let other_ns = unique_ns("stress_other");
    let mut base = Library::new(LibraryKind::Fragment, &ns, None, file!(), line!()).unwrap();
    base.def("f(Tensor x, int n) -> int", None).unwrap();
    base.impl_("f", CppFunction::typed(cpu_kernel as Sig).dispatch(K::CPU))
        .unwrap();
    // A base Python kernel (same result as CPU) that registrar 1 overrides now and then (the
    // override warns once). Not a fallthrough: see `fallthrough_toggled_during_calls`.
    opdispatch_dispatch::set_warning_handler(|_| {});
    base.impl_(
        "f",
        CppFunction::typed(cpu_kernel as Sig).dispatch(K::Python),
    )
    .unwrap();
    let op = Dispatcher::singleton()
        .find_schema_or_throw(&format!("{ns}::f"), "")
        .unwrap();
    let typed = op.typed::<Sig>().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    // How many calls ran the autograd kernel / the Python kernel (for the log only: the
    // interleaving decides).
    let outcomes = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let registrations = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(4 + 3));
    let (done_tx, done_rx) = mpsc::channel::<Result<(), String>>();
    let mut handles = Vec::new();

    // 4 callers: typed and boxed calls with a CPU + AutogradCPU tensor. The AutogradCPU entry
    // flips between a registered kernel (n + 10) and the autograd fallback (redispatch to the
    // CPU kernel, n + 1). A caller that includes Python in its TLS reaches the base Python
    // kernel (n + 1) or registrar 1's override of it (n + 30).
    for c in 0..4 {
        let (typed, op, stop, calls, start, done) = (
            typed.clone(),
            op.clone(),
            stop.clone(),
            calls.clone(),
            start.clone(),
            done_tx.clone(),
        );
        let outcomes = outcomes.clone();
        handles.push(std::thread::spawn(move || {
            start.wait();
            let r = (|| -> Result<(), String> {
                let x = tensor(&[K::CPU, K::AutogradCPU, K::ADInplaceOrView]);
                let mut i: i64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let with_python = c % 2 == 1 && i % 3 == 0;
                    let _g = with_python
                        .then(|| IncludeDispatchKeyGuard::new(DispatchKeySet::from_key(K::Python)));
                    let v = if i % 2 == 0 {
                        typed
                            .call(x.clone(), i)
                            .map_err(|e| format!("typed call failed: {e}"))?
                    } else {
                        let mut stack =
                            opdispatch_dispatch::stack![IValue::Tensor(x.clone()), IValue::Int(i)];
                        op.call_boxed(&mut stack)
                            .map_err(|e| format!("boxed call failed: {e}"))?;
                        match stack[..] {
                            [IValue::Int(v)] => v,
                            _ => return Err(format!("bad boxed result {stack:?}")),
                        }
                    };
                    let ok = v == i + 1 || v == i + 10 || (with_python && v == i + 30);
                    if !ok {
                        return Err(format!(
                            "call {i} returned {v}, which no registered kernel produces"
                        ));
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    if v == i + 10 {
                        outcomes[0].fetch_add(1, Ordering::Relaxed);
                    } else if v == i + 30 {
                        outcomes[1].fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            })();
            let _ = done.send(r);
        }));
    }

    // Registrar 1: the same operator, other keys (AutogradCPU, CUDA, Python), created and dropped.
    {
        let (ns, stop, regs, start, done) = (
            ns.clone(),
            stop.clone(),
            registrations.clone(),
            start.clone(),
            done_tx.clone(),
        );
        handles.push(std::thread::spawn(move || {
            start.wait();
            let r = (|| -> Result<(), String> {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let mut lib = Library::new(LibraryKind::Fragment, &ns, None, file!(), line!())
                        .map_err(|e| e.to_string())?;
                    lib.impl_(
                        "f",
                        CppFunction::typed(cuda_kernel as Sig).dispatch(K::CUDA),
                    )
                    .map_err(|e| e.to_string())?;
                    // Alternate: the autograd kernel hides everything below it.
                    if i & 1 == 0 {
                        lib.impl_(
                            "f",
                            CppFunction::typed(autograd_kernel as Sig).dispatch(K::AutogradCPU),
                        )
                        .map_err(|e| e.to_string())?;
                    } else {
                        lib.impl_(
                            "f",
                            CppFunction::typed(python_kernel as Sig).dispatch(K::Python),
                        )
                        .map_err(|e| e.to_string())?;
                    }
                    regs.fetch_add(1, Ordering::Relaxed);
                    std::thread::yield_now();
                    drop(lib);
                }
                Ok(())
            })();
            let _ = done.send(r);
        }));
    }

    // Registrar 2: other operators: def + kernels + a fallthrough, called once, then dropped.
    {
        let (ns, stop, regs, start, done) = (
            other_ns.clone(),
            stop.clone(),
            registrations.clone(),
            start.clone(),
            done_tx.clone(),
        );
        handles.push(std::thread::spawn(move || {
            start.wait();
            let r = (|| -> Result<(), String> {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let name = format!("g{}", i % 7);
                    let mut lib = Library::new(LibraryKind::Fragment, &ns, None, file!(), line!())
                        .map_err(|e| e.to_string())?;
                    lib.def(&format!("{name}(Tensor x, int n) -> int"), None)
                        .map_err(|e| e.to_string())?;
                    lib.impl_(
                        &name,
                        CppFunction::typed(cpu_kernel as Sig).dispatch(K::CPU),
                    )
                    .map_err(|e| e.to_string())?;
                    lib.impl_(&name, CppFunction::fallthrough().dispatch(K::AutogradCPU))
                        .map_err(|e| e.to_string())?;
                    let g = Dispatcher::singleton()
                        .find_schema_or_throw(&format!("{ns}::{name}"), "")
                        .map_err(|e| e.to_string())?;
                    let v = g
                        .typed::<Sig>()
                        .map_err(|e| e.to_string())?
                        .call(tensor(&[K::CPU, K::AutogradCPU]), 5)
                        .map_err(|e| e.to_string())?;
                    if v != 6 {
                        return Err(format!("{name} returned {v}"));
                    }
                    regs.fetch_add(1, Ordering::Relaxed);
                    drop(lib);
                    let gone = Dispatcher::singleton()
                        .find_op(&OperatorName::new(format!("{ns}::{name}"), ""));
                    if gone.is_some() {
                        return Err(format!(
                            "{name} still registered after its library was dropped"
                        ));
                    }
                }
                Ok(())
            })();
            let _ = done.send(r);
        }));
    }

    // Inspector: dumps and invariant checks take the registration lock concurrently.
    {
        let (op, stop, start, done) = (op.clone(), stop.clone(), start.clone(), done_tx.clone());
        handles.push(std::thread::spawn(move || {
            start.wait();
            let r = (|| -> Result<(), String> {
                while !stop.load(Ordering::Relaxed) {
                    op.check_invariants()
                        .map_err(|e| format!("invariants: {e}"))?;
                    let state = op.dump_state();
                    if !state.contains("CPU: registered at") {
                        return Err(format!("the CPU kernel disappeared:\n{state}"));
                    }
                    let _ = op.dump_computed_table();
                    let _ = Dispatcher::singleton().all_op_names();
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(())
            })();
            let _ = done.send(r);
        }));
    }
    drop(done_tx);

    let started = Instant::now();
    std::thread::sleep(RUN_FOR);
    stop.store(true, Ordering::Relaxed);
    let mut finished = 0;
    while finished < handles.len() {
        let left = WATCHDOG.saturating_sub(started.elapsed());
        match done_rx.recv_timeout(left) {
            Ok(Ok(())) => finished += 1,
            Ok(Err(e)) => panic!("worker failed: {e}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("deadlock: workers still running after {WATCHDOG:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("a worker panicked"),
        }
    }
    for h in handles {
        h.join().expect("worker thread panicked");
    }
    eprintln!(
        "stress: {} calls ({} autograd kernel, {} python kernel), {} registration rounds",
        calls.load(Ordering::Relaxed),
        outcomes[0].load(Ordering::Relaxed),
        outcomes[1].load(Ordering::Relaxed),
        registrations.load(Ordering::Relaxed)
    );
    assert!(
        calls.load(Ordering::Relaxed) > 100,
        "callers made too little progress"
    );
    assert!(
        registrations.load(Ordering::Relaxed) > 10,
        "registrars made too little progress"
    );

    // Everything the registrars added is gone again; the operator is as it was.
    op.check_invariants().unwrap();
    assert!(!op.has_kernel_for_dispatch_key(K::AutogradCPU));
    assert!(!op.has_kernel_for_dispatch_key(K::CUDA));
    assert!(
        op.dump_state().contains("Python: registered at"),
        "the base Python kernel is active again"
    );
    assert!(!op.dump_state().contains("(inactive)"));
    assert_eq!(typed.call(tensor(&[K::CPU, K::AutogradCPU]), 1).unwrap(), 2);
    assert!(Dispatcher::singleton()
        .all_op_names()
        .iter()
        .all(|n| !n.starts_with(&format!("{other_ns}::"))));
    drop(base);
    assert!(Dispatcher::singleton()
        .find_op(op.operator_name())
        .is_none());
}

/// Many threads defining and dropping their own operators at once.
#[test]
fn concurrent_registration_of_distinct_operators() {
    let ns = unique_ns("stress_defs");
    let start = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (ns, start) = (ns.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for round in 0..50 {
                    let mut lib =
                        Library::new(LibraryKind::Fragment, &ns, None, file!(), line!()).unwrap();
                    for j in 0..5 {
                        let name = format!("op_{t}_{j}");
                        lib.def(&format!("{name}(Tensor x, int n) -> int"), None)
                            .unwrap();
                        lib.impl_(
                            &name,
                            CppFunction::typed(cpu_kernel as Sig).dispatch(K::CPU),
                        )
                        .unwrap();
                    }
                    let op = Dispatcher::singleton()
                        .find_schema_or_throw(&format!("{ns}::op_{t}_{}", round % 5), "")
                        .unwrap();
                    assert_eq!(
                        op.typed::<Sig>()
                            .unwrap()
                            .call(tensor(&[K::CPU]), round)
                            .unwrap(),
                        round + 1
                    );
                    drop(lib);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(Dispatcher::singleton()
        .all_op_names()
        .iter()
        .all(|n| !n.starts_with(&format!("{ns}::"))));
}

/// Reentrant repro of a race: a call computes its key set against one table snapshot (a
/// per-operator fallthrough masks its key out only if the entry is a fallthrough *then*), and a
/// kernel redispatches with that key set against the *current* snapshot. If a fallthrough
/// became active in between, the redispatch runs the fallthrough kernel, which fails with
/// "fallthrough_kernel was executed ...". Here the AutogradCPU kernel itself removes the
/// library whose Python kernel overrode a per-operator Python fallthrough, then redispatches
/// below autograd; concurrently, any thread can cause the same (see
/// `fallthrough_toggled_during_calls`, which catches it only probabilistically). Expected: redispatch skips keys whose current entry is
/// a fallthrough (as a fresh call would), reaching the CPU kernel.
#[test]
fn redispatch_skips_a_fallthrough_that_became_active() {
    use opdispatch_dispatch::{OperatorHandle, Stack};
    use std::sync::Mutex;
    static OVERRIDE: Mutex<Option<Library>> = Mutex::new(None);
    let ns = unique_ns("stress_reentrant");
    let mut base = Library::new(LibraryKind::Fragment, &ns, None, file!(), line!()).unwrap();
    base.def("f(Tensor x, int n) -> int", None).unwrap();
    base.impl_("f", CppFunction::typed(cpu_kernel as Sig).dispatch(K::CPU))
        .unwrap();
    base.impl_("f", CppFunction::fallthrough().dispatch(K::Python))
        .unwrap();
    base.impl_(
        "f",
        CppFunction::boxed(
            |op: &OperatorHandle, ks: DispatchKeySet, stack: &mut Stack| {
                // Deregister the Python override: Python's entry is a fallthrough again.
                drop(OVERRIDE.lock().unwrap().take());
                op.redispatch_boxed(ks & DispatchKeySet::full_after(K::AutogradCPU), stack)
            },
        )
        .dispatch(K::AutogradCPU),
    )
    .unwrap();
    opdispatch_dispatch::set_warning_handler(|_| {});
    let mut over = Library::new(LibraryKind::Fragment, &ns, None, file!(), line!()).unwrap();
    over.impl_(
        "f",
        CppFunction::typed(python_kernel as Sig).dispatch(K::Python),
    )
    .unwrap();
    *OVERRIDE.lock().unwrap() = Some(over);
    let op = Dispatcher::singleton()
        .find_schema_or_throw(&format!("{ns}::f"), "")
        .unwrap();
    let _g = IncludeDispatchKeyGuard::new(DispatchKeySet::from_key(K::Python));
    let mut stack = opdispatch_dispatch::stack![
        IValue::Tensor(tensor(&[K::CPU, K::AutogradCPU])),
        IValue::Int(1),
    ];
    op.call_boxed(&mut stack)
        .expect("redispatch must not run a fallthrough kernel");
    assert!(matches!(stack[..], [IValue::Int(2)]), "{stack:?}");
}

/// The concurrent form of `redispatch_skips_a_fallthrough_that_became_active`: callers go
/// through the autograd fallback's redispatch while another thread toggles a Python kernel over
/// a per-operator Python fallthrough.
#[test]
fn fallthrough_toggled_during_calls() {
    let ns = unique_ns("stress_ft");
    let mut base = Library::new(LibraryKind::Fragment, &ns, None, file!(), line!()).unwrap();
    base.def("f(Tensor x, int n) -> int", None).unwrap();
    base.impl_("f", CppFunction::typed(cpu_kernel as Sig).dispatch(K::CPU))
        .unwrap();
    base.impl_("f", CppFunction::fallthrough().dispatch(K::Python))
        .unwrap();
    opdispatch_dispatch::set_warning_handler(|_| {});
    let op = Dispatcher::singleton()
        .find_schema_or_throw(&format!("{ns}::f"), "")
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let (ns, stop) = (ns.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut lib =
                    Library::new(LibraryKind::Fragment, &ns, None, file!(), line!()).unwrap();
                lib.impl_(
                    "f",
                    CppFunction::typed(python_kernel as Sig).dispatch(K::Python),
                )
                .unwrap();
                std::thread::yield_now();
                drop(lib);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_millis(1000);
    let _g = IncludeDispatchKeyGuard::new(DispatchKeySet::from_key(K::Python));
    let x = tensor(&[K::CPU, K::AutogradCPU]);
    let mut failure = None;
    while Instant::now() < deadline && failure.is_none() {
        let mut stack = opdispatch_dispatch::stack![IValue::Tensor(x.clone()), IValue::Int(1)];
        if let Err(e) = op.call_boxed(&mut stack) {
            failure = Some(e.to_string());
        }
    }
    stop.store(true, Ordering::Relaxed);
    toggler.join().unwrap();
    assert_eq!(failure, None);
}

/// A kernel deregistered while one of its calls is still running stays alive until that call
/// returns (the call's table snapshot owns it), and is released soon after.
#[test]
fn kernel_outlives_its_deregistration_while_running() {
    struct Slow {
        entered: mpsc::SyncSender<()>,
        resume: std::sync::Mutex<mpsc::Receiver<()>>,
        dropped: Arc<AtomicBool>,
        calls: AtomicU64,
    }
    impl Drop for Slow {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }
    impl opdispatch_dispatch::BoxedKernel for Slow {
        fn call(
            &self,
            _op: &opdispatch_dispatch::OperatorHandle,
            _ks: DispatchKeySet,
            stack: &mut opdispatch_dispatch::Stack,
        ) -> opdispatch_dispatch::Result<()> {
            stack.clear();
            // The first call only publishes the table snapshot that the second one reads.
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                stack.push(IValue::Bool(true));
                return Ok(());
            }
            self.entered.send(()).unwrap();
            self.resume.lock().unwrap().recv().unwrap();
            // Deregistered meanwhile, yet not released: this call still uses it.
            let alive = !self.dropped.load(Ordering::SeqCst);
            stack.push(IValue::Bool(alive));
            Ok(())
        }
    }

    let ns = unique_ns("outlive");
    let mut def = Library::new(LibraryKind::Def, &ns, None, file!(), line!()).unwrap();
    def.def("f(Tensor x) -> bool", None).unwrap();
    let (entered_tx, entered_rx) = mpsc::sync_channel(1);
    let (resume_tx, resume_rx) = mpsc::channel();
    let dropped = Arc::new(AtomicBool::new(false));
    let mut imp = Library::new(LibraryKind::Impl, &ns, Some(K::CPU), file!(), line!()).unwrap();
    imp.impl_(
        "f",
        CppFunction::boxed(Slow {
            entered: entered_tx,
            resume: std::sync::Mutex::new(resume_rx),
            dropped: dropped.clone(),
            calls: AtomicU64::new(0),
        }),
    )
    .unwrap();
    let op = Dispatcher::singleton()
        .find_schema_or_throw(&format!("{ns}::f"), "")
        .unwrap();
    let caller = std::thread::spawn(move || {
        let mut stack = opdispatch_dispatch::stack![IValue::Tensor(tensor(&[K::CPU]))];
        op.call_boxed(&mut stack).unwrap();
        let mut stack = opdispatch_dispatch::stack![IValue::Tensor(tensor(&[K::CPU]))];
        op.call_boxed(&mut stack).unwrap();
        matches!(stack[..], [IValue::Bool(true)])
    });
    entered_rx.recv_timeout(WATCHDOG).expect("kernel entered");
    drop(imp);
    assert!(!dropped.load(Ordering::SeqCst), "freed while running");
    resume_tx.send(()).unwrap();
    assert!(
        caller.join().unwrap(),
        "kernel saw itself released mid-call"
    );
    let deadline = Instant::now() + WATCHDOG;
    while !dropped.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "kernel never released");
        std::thread::sleep(Duration::from_millis(1));
    }
}
