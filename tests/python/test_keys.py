"""DispatchKey / DispatchKeySet surface, TLS sets and guards (dispatcher.md 1.4, 3.1 and the appendix)."""

from __future__ import annotations

import pickle
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opdispatch import _C as C

DK = C.DispatchKey
KS = C.DispatchKeySet

DEFAULT_INCLUDE = "DispatchKeySet(BackendSelect, ADInplaceOrView)"
DEFAULT_EXCLUDE = (
    "DispatchKeySet(AutocastCPU, AutocastMTIA, AutocastMAIA, AutocastXPU, AutocastIPU, AutocastHPU, AutocastXLA, "
    "AutocastMPS, AutocastCUDA, AutocastPrivateUse1)"
)
NUM_BACKENDS = 16
BACKEND_MASK = (1 << NUM_BACKENDS) - 1


def on_fresh_thread(fn):
    out = []
    err = []

    def run():
        try:
            out.append(fn())
        except BaseException as e:  # pragma: no cover - reported below
            err.append(e)

    th = threading.Thread(target=run)
    th.start()
    th.join()
    if err:
        raise err[0]
    return out[0]


# ---------------------------------------------------------------------------------------------
# DispatchKey
# ---------------------------------------------------------------------------------------------


def test_dispatch_key_str_repr_name_value():
    assert str(DK.CPU) == "DispatchKey.CPU"
    assert repr(DK.CPU) == "<DispatchKey.CPU: 49>"
    assert DK.CPU.name == "CPU"
    assert DK.CPU.value == 49
    assert DK.CPU == DK.CPU and DK.CPU != DK.CUDA
    assert hash(DK.CPU) == hash(DK.CPU)


@pytest.mark.parametrize(
    "name,value",
    [
        ("Undefined", 0),
        ("CPU", 49),
        ("AutogradCPU", 134),
        ("Autograd", 150),
        ("CompositeImplicitAutograd", 151),
        ("FuncTorchBatchedDecomposition", 152),
        ("CompositeImplicitAutogradNestedTensor", 153),
        ("CompositeExplicitAutograd", 154),
        ("CompositeExplicitAutogradNonFunctional", 155),
    ],
)
def test_dispatch_key_values(name, value):
    k = getattr(DK, name)
    assert k.value == value
    assert k.name == name
    assert repr(k) == f"<DispatchKey.{name}: {value}>"


def test_dispatch_key_members_round_trip():
    members = DK.__members__
    assert "CPU" in members and members["CPU"] == DK.CPU
    for name, k in members.items():
        assert getattr(DK, name) == k
    assert C._dispatch_key_name(DK.AutogradCPU) == "AutogradCPU"
    assert C._dispatch_key_parse("AutogradCPU") == DK.AutogradCPU
    assert C._parse_dispatch_key("AutogradCPU") == DK.AutogradCPU
    assert C._parse_dispatch_key("NotAKey") is None
    with pytest.raises(RuntimeError) as ei:
        C._dispatch_key_parse("NotAKey")
    assert str(ei.value) == "could not parse dispatch key: NotAKey"


def test_alias_key_helpers():
    assert C._dispatch_is_alias_key(DK.Autograd)
    assert C._dispatch_is_alias_key(DK.CompositeImplicitAutograd)
    assert not C._dispatch_is_alias_key(DK.CPU)
    assert C._dispatch_is_included_in_alias(DK.AutogradCPU, DK.Autograd)
    assert not C._dispatch_is_included_in_alias(DK.CPU, DK.Autograd)
    assert repr(C._dispatch_get_backend_keyset_from_autograd(DK.AutogradCPU)) == "DispatchKeySet(CPU)"
    assert C._dispatch_num_backends() == NUM_BACKENDS


# ---------------------------------------------------------------------------------------------
# DispatchKeySet
# ---------------------------------------------------------------------------------------------


def test_keyset_repr_and_raw_repr():
    ks = KS(DK.AutogradCPU)
    assert repr(ks) == "DispatchKeySet(AutogradCPU)"
    assert ks.raw_repr() == 68719476737
    assert KS.from_raw_repr(68719476737) == ks
    assert repr(KS(DK.CPU)) == "DispatchKeySet(CPU)"
    assert KS(DK.CPU).raw_repr() == (1 << 16) | 1
    assert repr(KS(DK.Undefined)) == "DispatchKeySet()"
    assert KS(DK.Undefined).empty()
    # Alias keys give the empty set.
    assert KS(DK.Autograd).raw_repr() == 0
    assert C._dispatch_keyset_to_string(KS(DK.CPU)) == "DispatchKeySet(CPU)"


def test_keyset_union_is_cross_product():
    ks = KS(DK.CPU) | KS(DK.AutogradCUDA)
    assert repr(ks) == "DispatchKeySet(CPU, CUDA, AutogradCPU, AutogradCUDA)"
    assert ks.highestPriorityTypeId() == DK.AutogradCUDA
    assert ks.has(DK.CUDA) and ks.has(DK.AutogradCPU)


def test_keyset_eq():
    a, b, c = KS(DK.AutogradCPU), KS(DK.AutogradCPU), KS(DK.CPU)
    assert a == b
    assert not (a != b)
    assert a != c


def test_keyset_add_remove_has():
    ks = KS(DK.CPU).add(DK.XLA)
    assert repr(ks) == "DispatchKeySet(CPU, XLA)"
    assert ks.has(DK.XLA) and ks.has(DK.CPU)
    assert repr(KS(DK.CPU).remove(DK.CPU)) == "DispatchKeySet()"
    # remove() only clears functionality bits: every backend of Dense goes.
    assert not ks.remove(DK.CPU).has(DK.XLA)
    assert KS(DK.Python).remove(DK.Python).raw_repr() == 0


def test_keyset_difference_keeps_backend_bits():
    d = KS(DK.CPU) - KS(DK.CPU)
    assert repr(d) == "DispatchKeySet()"
    assert d.raw_repr() == 1  # the CPU backend bit stays
    assert repr(KS(DK.CPU) & KS(DK.CUDA)) == "DispatchKeySet()"


def test_highest_priority():
    assert KS(DK.CPU).highestPriorityTypeId() == DK.CPU
    assert (KS(DK.CPU) | KS(DK.Meta)).highestPriorityTypeId() == DK.Meta
    assert (KS(DK.CPU) | KS(DK.Python)).highestPriorityTypeId() == DK.Python
    assert KS(DK.Undefined).highestPriorityTypeId() == DK.Undefined


def test_full_and_full_after():
    full = C._dispatch_keyset_full()
    # 16 backend bits + 46 functionality bits (Dense=1 .. PythonDispatcher=46 in the 2.15 enum).
    assert full.raw_repr() == (1 << 62) - 1
    after = C._dispatch_keyset_full_after(DK.AutogradOther)
    assert after.has(DK.CPU) and after.has(DK.ADInplaceOrView)
    assert not after.has(DK.AutogradCPU)


def test_keys_of_tensors():
    import opdispatch

    keys = C._dispatch_keys(opdispatch.ones(2))
    assert repr(keys) == "DispatchKeySet(CPU, ADInplaceOrView, AutogradCPU, AutocastCPU)"
    assert repr(C._dispatch_keys(opdispatch.empty(2, device="meta"))) == (
        "DispatchKeySet(Meta, ADInplaceOrView, AutogradMeta)"
    )


@pytest.mark.parametrize("key", ["AutogradCPU", "CPU", "Meta", "Python", "Undefined"])
def test_keyset_pickle_round_trip(key):
    ks = KS(getattr(DK, key))
    back = pickle.loads(pickle.dumps(ks))
    assert back == ks
    assert back.raw_repr() == ks.raw_repr()
    assert repr(back) == repr(ks)
    big = KS(DK.CPU) | KS(DK.AutogradCUDA) | KS(DK.Python)
    assert pickle.loads(pickle.dumps(big, protocol=pickle.HIGHEST_PROTOCOL)) == big


# ---------------------------------------------------------------------------------------------
# Set algebra, property-based
# ---------------------------------------------------------------------------------------------

RUNTIME_KEYS = [
    DK.CPU, DK.CUDA, DK.XLA, DK.Meta, DK.Lazy, DK.QuantizedCPU, DK.SparseCPU, DK.PrivateUse1, DK.BackendSelect,
    DK.Python, DK.Functionalize, DK.Conjugate, DK.ADInplaceOrView, DK.AutogradOther, DK.AutogradCPU,
    DK.AutogradCUDA, DK.AutogradMeta, DK.AutocastCPU, DK.PythonTLSSnapshot, DK.PreDispatch, DK.PythonDispatcher,
]  # fmt: skip


def make(keys):
    ks = KS(DK.Undefined)
    for k in keys:
        ks = ks | KS(k)
    return ks


key_subsets = st.lists(st.sampled_from(RUNTIME_KEYS), max_size=6)


@settings(max_examples=150, deadline=None)
@given(key_subsets, key_subsets, key_subsets)
def test_set_algebra_laws(xs, ys, zs):
    a, b, c = make(xs), make(ys), make(zs)
    empty = KS(DK.Undefined)
    full = C._dispatch_keyset_full()
    assert a | b == b | a
    assert a & b == b & a
    assert (a | b) | c == a | (b | c)
    assert (a & b) & c == a & (b & c)
    assert a | a == a and a & a == a
    assert a | empty == a
    assert (a & empty).raw_repr() == 0
    assert a & full == a
    assert (a | b).raw_repr() == a.raw_repr() | b.raw_repr()
    assert (a & b).raw_repr() == a.raw_repr() & b.raw_repr()
    assert (a - b).raw_repr() == a.raw_repr() & (BACKEND_MASK | ~b.raw_repr())
    assert (a - empty) == a
    assert KS.from_raw_repr(a.raw_repr()) == a
    for k in xs:
        assert a.has(k)
        assert (a | b).has(k)


@settings(max_examples=150, deadline=None)
@given(key_subsets, st.sampled_from(RUNTIME_KEYS))
def test_has_after_add(xs, k):
    a = make(xs)
    added = a.add(k)
    assert added.has(k)
    assert added == a | KS(k)
    for old in xs:
        assert added.has(old)
    assert not added.remove(k).has(k)


# ---------------------------------------------------------------------------------------------
# Thread-local include / exclude sets and the guards
# ---------------------------------------------------------------------------------------------


def tls():
    return repr(C._dispatch_tls_local_include_set()), repr(C._dispatch_tls_local_exclude_set())


def tls_raw():
    return C._dispatch_tls_local_include_set().raw_repr(), C._dispatch_tls_local_exclude_set().raw_repr()


def test_fresh_thread_tls():
    assert on_fresh_thread(tls) == (DEFAULT_INCLUDE, DEFAULT_EXCLUDE)
    assert tls() == (DEFAULT_INCLUDE, DEFAULT_EXCLUDE)


def test_include_guard():
    def body():
        before = tls_raw()
        with C._IncludeDispatchKeyGuard(DK.Meta):
            inside = tls()
            assert C._dispatch_tls_is_dispatch_key_included(DK.Meta)
        assert tls_raw() == before
        return inside

    assert on_fresh_thread(body) == ("DispatchKeySet(Meta, BackendSelect, ADInplaceOrView)", DEFAULT_EXCLUDE)


@pytest.mark.parametrize("key", ["Meta", "CUDA", "CPU"])
def test_exclude_guard_restores_tls_exactly(key):
    before = C._dispatch_tls_local_exclude_set().raw_repr()
    with C._ExcludeDispatchKeyGuard(KS(getattr(DK, key))):
        assert C._dispatch_tls_is_dispatch_key_excluded(getattr(DK, key))
    assert C._dispatch_tls_local_exclude_set().raw_repr() == before


def test_include_guard_restores_tls_exactly():
    before = C._dispatch_tls_local_include_set().raw_repr()
    with C._IncludeDispatchKeyGuard(DK.Meta):
        pass
    assert C._dispatch_tls_local_include_set().raw_repr() == before


def test_exclude_guard_repr():
    def body():
        with C._ExcludeDispatchKeyGuard(KS(DK.CPU)):
            return tls()

    assert on_fresh_thread(body) == (
        DEFAULT_INCLUDE,
        "DispatchKeySet(CPU, AutocastCPU, AutocastMTIA, AutocastMAIA, AutocastXPU, AutocastIPU, AutocastHPU, "
        "AutocastXLA, AutocastMPS, AutocastCUDA, AutocastPrivateUse1)",
    )


def test_force_guard():
    def body():
        before = tls_raw()
        with C._ForceDispatchKeyGuard(KS(DK.Meta), KS(DK.CPU)):
            inside = tls()
        assert tls_raw() == before
        return inside

    assert on_fresh_thread(body) == ("DispatchKeySet(Meta)", "DispatchKeySet(CPU)")


def test_preserve_guard():
    before = tls_raw()
    with C._PreserveDispatchKeyGuard():
        C._dispatch_tls_set_dispatch_key_included(DK.Python, True)
        C._dispatch_tls_set_dispatch_key_excluded(DK.AutogradCPU, True)
        assert C._dispatch_tls_is_dispatch_key_included(DK.Python)
        assert C._dispatch_tls_is_dispatch_key_excluded(DK.AutogradCPU)
    assert tls_raw() == before
    assert not C._dispatch_tls_is_dispatch_key_included(DK.Python)


def test_non_raii_setters():
    def body():
        C._dispatch_tls_set_dispatch_key_excluded(DK.Python, True)
        a = tls()
        C._dispatch_tls_set_dispatch_key_excluded(DK.Python, False)
        C._dispatch_tls_set_dispatch_key_included(DK.BackendSelect, False)
        b = tls()
        C._dispatch_tls_set_dispatch_key_included(DK.BackendSelect, True)
        return a, b, tls()

    a, b, c = on_fresh_thread(body)
    assert a[1].startswith("DispatchKeySet(Python, AutocastCPU")
    assert b[0] == "DispatchKeySet(ADInplaceOrView)"
    assert c == (DEFAULT_INCLUDE, DEFAULT_EXCLUDE)


def test_tls_is_per_thread():
    with C._IncludeDispatchKeyGuard(DK.Meta):
        with C._ExcludeDispatchKeyGuard(KS(DK.AutogradCPU)):
            assert on_fresh_thread(tls) == (DEFAULT_INCLUDE, DEFAULT_EXCLUDE)
            assert C._dispatch_tls_is_dispatch_key_included(DK.Meta)


@pytest.mark.parametrize(
    "make_guard",
    [
        lambda: C._IncludeDispatchKeyGuard(DK.Meta),
        lambda: C._ExcludeDispatchKeyGuard(KS(DK.AutogradCPU) | KS(DK.Python)),
        lambda: C._ForceDispatchKeyGuard(KS(DK.Meta), KS(DK.CPU)),
        lambda: C._PreserveDispatchKeyGuard(),
    ],
)
def test_guards_restore_on_exception(make_guard):
    before = tls_raw()
    with pytest.raises(ZeroDivisionError):
        with make_guard():
            1 / 0
    assert tls_raw() == before


def test_preserve_guard_restores_on_exception():
    before = tls_raw()
    with pytest.raises(ZeroDivisionError):
        with C._PreserveDispatchKeyGuard():
            C._dispatch_tls_set_dispatch_key_included(DK.Python, True)
            C._dispatch_tls_set_dispatch_key_excluded(DK.Meta, True)
            1 / 0
    assert tls_raw() == before


def test_guards_nest():
    before = tls_raw()
    with C._IncludeDispatchKeyGuard(DK.Meta):
        with C._IncludeDispatchKeyGuard(DK.Meta):  # already included: no-op, must not remove it on exit
            pass
        assert C._dispatch_tls_is_dispatch_key_included(DK.Meta)
        with C._ExcludeDispatchKeyGuard(KS(DK.Meta)):
            assert C._dispatch_tls_is_dispatch_key_excluded(DK.Meta)
        assert not C._dispatch_tls_is_dispatch_key_excluded(DK.Meta)
    assert tls_raw() == before


@pytest.mark.parametrize("bad", [(), (1, 2), 5])
def test_keyset_setstate_rejects_bad_state(bad):
    ks = KS(DK.CPU)
    with pytest.raises(RuntimeError) as ei:
        ks.__setstate__(bad)
    assert str(ei.value) == "__setstate__ expected tuple with one element"
