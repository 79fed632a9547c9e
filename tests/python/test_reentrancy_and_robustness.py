"""Re-entrancy (Python code running while the dispatcher releases kernels), overload
resolution that never runs the wrong kernel, and failure paths that must not panic."""

import subprocess
import sys
import textwrap

import pytest

import opdispatch as o
from opdispatch import _C
from opdispatch.library import Library, _scoped_library


def run_isolated(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter; a deadlock shows up as a timeout, not a hung suite."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )


def test_kernel_finalizer_may_call_the_dispatcher():
    r = run_isolated(
        """
        from opdispatch import _C
        from opdispatch.library import Library
        class K:
            def __call__(self, x):
                return x
            def __del__(self):
                # Runs when the registration drops the kernel: the dispatcher must not hold locks.
                _C._dispatch_dump("reent1::f")
        lib = Library("reent1", "DEF")
        lib.define("f(Tensor x) -> Tensor")
        lib.impl("f", K(), "CPU")
        lib._destroy()
        print("ok")
        """
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_kernel_owning_a_library_can_be_released():
    r = run_isolated(
        """
        import opdispatch
        from opdispatch.library import Library
        def make():
            helper = Library("reent2h", "DEF")
            helper.define("g(Tensor x) -> Tensor")
            return lambda x: helper and x
        lib = Library("reent2", "DEF")
        lib.define("f(Tensor x) -> Tensor")
        lib.impl("f", make(), "CPU")
        opdispatch.ops.reent2.f(opdispatch.ones(1))
        lib._destroy()   # drops the closure, whose helper library deregisters in turn
        print("ok", opdispatch._C._dispatch_dump("reent2h::g") == "")
        """
    )
    assert r.returncode == 0 and "ok True" in r.stdout, r.stderr


def test_warning_hook_may_register():
    r = run_isolated(
        """
        import warnings
        from opdispatch import _C
        m = _C._dispatch_library("FRAGMENT", "reent3", "")
        m.def_("f(Tensor x) -> Tensor")
        def hook(*a, **k):
            m.impl("f", "Meta", lambda x: x)    # re-enters the same module from the hook
        warnings.showwarning = hook
        m.impl("f", "CPU", lambda x: x)
        m.impl("f", "CPU", lambda x: x)          # override: warns
        print("ok")
        """
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_override_warning_can_be_turned_into_an_error():
    r = run_isolated(
        """
        import warnings
        from opdispatch import _C
        m = _C._dispatch_library("FRAGMENT", "reent4", "")
        m.def_("f(Tensor x) -> Tensor")
        m.impl("f", "CPU", lambda x: x)
        warnings.simplefilter("error")
        try:
            m.impl("f", "CPU", lambda x: x)
        except UserWarning as e:
            print("raised", str(e).splitlines()[0])
        """
    )
    assert "raised Warning only once for all operators" in r.stdout, r.stdout + r.stderr


def test_overload_resolution_does_not_retry_after_a_kernel_error(ns):
    calls = []
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("f(Tensor x) -> Tensor")
        lib.define("f.b(Tensor x, int k=0) -> Tensor")

        def bad(x):
            calls.append("default")
            return 3  # wrong return type

        def good(x, k=0):
            calls.append("b")
            return x

        lib.impl("f", bad, "CPU")
        lib.impl("f.b", good, "CPU")
        with pytest.raises(RuntimeError, match="Unable to cast"):
            getattr(o.ops, ns).f(o.ones(1))
        assert calls == ["default"]
        # A real binding mismatch still selects the other overload.
        getattr(o.ops, ns).f(o.ones(1), 2)
        assert calls == ["default", "b"]
        with pytest.raises(TypeError, match="failed to match any schema"):
            getattr(o.ops, ns).f("not a tensor")


def test_subclass_that_skips_super_init_still_dispatches_and_is_preserved(ns):
    seen = []

    class Sub(o.Tensor):
        def __init__(self, data):  # no super().__init__()
            self.extra = 1

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return args[0]

    s = Sub(o.ones(2))
    assert _C._dispatch_keys(s).has(_C.DispatchKey.Python)
    assert o.ops.aten.neg(s) is s and seen == ["aten.neg.default"]

    class Plain(o.Tensor):
        def __init__(self, data):
            pass

    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("f(Tensor x) -> Tensor")
        lib.impl("f", lambda x: x, "CompositeExplicitAutograd")
        p = Plain(o.ones(2))
        assert getattr(o.ops, ns).f(p) is p


def test_huge_allocations_raise_instead_of_aborting():
    with pytest.raises(RuntimeError, match="not enough memory|overflow"):
        o.UntypedStorage(2**63)
    with pytest.raises(RuntimeError):
        o.empty(2**40, 2**40)


def test_kernel_released_once_its_library_is_destroyed(ns):
    """Calls read published table snapshots; destroying the library retires the snapshot that
    holds the kernel, and the kernel is released as soon as no call can still be using it."""
    import gc
    import weakref

    class K:
        def __call__(self, x):
            return x

    lib = Library(ns, "DEF")
    lib.define("f(Tensor x) -> Tensor")
    k = K()
    w = weakref.ref(k)
    lib.impl("f", k, "CPU")
    del k
    t = o.ones(2)
    assert getattr(o.ops, ns).f(t) is t  # publishes a snapshot holding the kernel
    lib._destroy()
    gc.collect()
    assert w() is None


def test_kernel_destroying_its_own_library_mid_call_is_released_after_the_call(ns):
    import gc
    import weakref

    lib = Library(ns, "DEF")
    lib.define("g(Tensor x) -> Tensor")
    seen = []

    class K:
        def __call__(self, x):
            lib._destroy()
            seen.append(True)  # still running: the snapshot keeps this kernel alive
            return x

    k = K()
    w = weakref.ref(k)
    lib.impl("g", k, "CPU")
    del k
    t = o.ones(2)
    assert getattr(o.ops, ns).g(t) is t
    gc.collect()
    assert seen == [True]
    assert w() is None


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_forked_child_releases_kernels_it_deregisters():
    """The snapshot reclaimer's memory barriers keep working in a forked child (a child that
    could not prove readers gone would keep retired kernels alive)."""
    r = run_isolated(
        """
        import gc, os, weakref
        import opdispatch
        from opdispatch.library import Library
        t = opdispatch.ones(2)
        lib0 = Library("fork_parent_ns", "DEF")
        lib0.define("f(Tensor x) -> Tensor")
        lib0.impl("f", lambda x: x, "CPU")
        opdispatch.ops.fork_parent_ns.f(t)
        lib0._destroy()
        pid = os.fork()
        if pid == 0:
            class K:
                def __call__(self, x):
                    return x
            lib = Library("fork_child_ns", "DEF")
            lib.define("g(Tensor x) -> Tensor")
            k = K()
            w = weakref.ref(k)
            lib.impl("g", k, "CPU")
            del k
            opdispatch.ops.fork_child_ns.g(t)
            lib._destroy()
            gc.collect()
            os._exit(0 if w() is None else 3)
        _, status = os.waitpid(pid, 0)
        print("child exit", os.WEXITSTATUS(status))
        """
    )
    assert r.returncode == 0, r.stderr
    assert "child exit 0" in r.stdout
