"""The seed walkthrough: define an operator, register CPU / CUDA / Meta kernels from Python,
call it, show the dispatch table, and show PyObject preservation vs hermetic mode.

Run: `make demo` (builds the extension into .venv first).
"""

import os
import tempfile

import opdispatch
from opdispatch import _C
from opdispatch.library import Library, impl


def banner(title: str) -> None:
    print("\n== " + title + " " + "=" * max(0, 70 - len(title)))


# --- Snippet 1: the raw binding, impl before def -------------------------------------------
banner("1. _C._dispatch_library('DEF', 'my_library', '')")
m = _C._dispatch_library("DEF", "my_library", "")
m.impl("my_op", "CPU", lambda: print("  my_op: CPU kernel ran"))  # an impl may come before its def
m.def_("my_op() -> ()")
try:
    opdispatch.ops.my_library.my_op()
except NotImplementedError as e:
    lines = str(e).splitlines()
    print("  calling my_op() raised NotImplementedError:")
    print("   ", lines[0][:150] + "...")
    print("   ", lines[-1])
# my_op has no tensor arguments, so it dispatches on the Undefined key, which only the
# composite alias keys fill. Registering a CompositeExplicitAutograd kernel fixes the call.
m.impl("my_op", "CompositeExplicitAutograd", lambda: print("  my_op: CompositeExplicitAutograd kernel ran"))
opdispatch.ops.my_library.my_op()

# --- Snippet 2: torch.library style ----------------------------------------------------------
banner("2. Library('my_lib', 'DEF') with CPU, CUDA and Meta kernels")
my_lib = Library("my_lib", "DEF")
my_lib.define("my_func(Tensor self) -> None")


@impl(my_lib, "my_func", "CPU")
def my_func_cpu(x):
    print(f"  my_func: CPU kernel ran on a tensor of shape {tuple(x.shape)} on {x.device}")


@impl(my_lib, "my_func", "CUDA")
def my_func_cuda(x):
    print(f"  my_func: CUDA kernel ran on {x.device}")
    print("in my_func_cuda!!!")


@impl(my_lib, "my_func", "Meta")
def my_func_meta(x):
    print(f"  my_func: Meta kernel ran (shape {tuple(x.shape)}, no data)")


opdispatch.ops.my_lib.my_func(opdispatch.ones(2, 3))
opdispatch.ops.my_lib.my_func(opdispatch.empty(4, device="meta"))
try:
    opdispatch.ops.my_lib.my_func(opdispatch.ones(2).cuda())
except RuntimeError as e:
    print(f"  CUDA call: {e}")

banner("dispatch state: _C._dispatch_dump('my_lib::my_func')")
print(_C._dispatch_dump("my_lib::my_func"), end="")
banner("computed table (selected keys): _C._dispatch_dump_table('my_lib::my_func')")
keys = {
    "Undefined",
    "CPU",
    "CUDA",
    "Meta",
    "BackendSelect",
    "ADInplaceOrView",
    "AutogradCPU",
    "AutogradCUDA",
    "AutogradMeta",
}
for line in _C._dispatch_dump_table("my_lib::my_func").splitlines():
    if line.split(":", 1)[0] in keys:
        print("  " + line)
print("  keys of a CPU tensor: ", _C._dispatch_keys(opdispatch.ones(1)))
print("  keys of a Meta tensor:", _C._dispatch_keys(opdispatch.empty(1, device="meta")))

# --- Why does (or doesn't) a kernel run? ---------------------------------------------------
banner("explain: what a call would run and why (nothing runs)")
for label, arg in [("CPU", opdispatch.ones(2, 3)), ("Meta", opdispatch.empty(4, device="meta"))]:
    e = opdispatch.library.explain(opdispatch.ops.my_lib.my_func, arg)
    print(f"  {label} call -> {e.key}: {e.chosen.kind} kernel, {e.chosen.description}")
my_lib.define("no_tensors(int n) -> ()")
print("  " + str(opdispatch.library.explain(opdispatch.ops.my_lib.no_tensors, 3)).replace("\n", "\n  "))
table_page = os.path.join(tempfile.gettempdir(), "my_lib_my_func_table.html")
with open(table_page, "w", encoding="utf-8") as f:
    f.write(opdispatch.library.dispatch_table("my_lib::my_func").to_html())
print(f"  the table picture of my_lib::my_func: {table_page} (or: python -m opdispatch table my_lib::my_func)")

banner("trace: every dispatcher entry of a region, as it happened")
x = opdispatch.ones(2, 3)
with opdispatch.library.trace() as t:
    opdispatch.ops.my_lib.my_func(x)
    (x * 2).sum()
print("  " + str(t).replace("\n", "\n  "))
trace_file = os.path.join(tempfile.gettempdir(), "my_lib_trace.json")
t.save_chrome_trace(trace_file)
print(f"  Chrome trace-event JSON (chrome://tracing, Perfetto): {trace_file}")

# --- PyObject preservation vs hermetic mode -----------------------------------------------
banner("3. PyObject preservation vs hermetic mode")
my_lib.define("ident(Tensor self) -> Tensor")
seen = {}


def ident_cpu(x):
    seen["inside_is_caller_object"] = x is t
    seen["hermetic_flag_inside"] = _C._is_hermetic_pyobject_enabled()
    return x


my_lib.impl("ident", ident_cpu, "CPU")
t = opdispatch.ones(2)
t.note = "kept on the Python object"
r = opdispatch.ops.my_lib.ident(t)
print(f"  the caller gets its own object back: {r is t}; attribute survives: {r.note!r}")
print(f"  inside the kernel (hermetic): same object? {seen['inside_is_caller_object']}; "
      f"hermetic flag: {seen['hermetic_flag_inside']}")
print(f"  storage preserved: {t.untyped_storage() is t.untyped_storage()}")
with _C._EnableHermeticPyObject():
    print(f"  under _EnableHermeticPyObject, t.contiguous() is t: {t.contiguous() is t}")
print(f"  after it, t.contiguous() is t: {t.contiguous() is t}")

# --- The seed's last line: a CUDA tensor reaches the CUDA kernel ---------------------------
banner("4. torch.ops.my_lib.my_func(torch.tensor([]).cuda())")
try:
    opdispatch.ops.my_lib.my_func(opdispatch.tensor([]).cuda())
except RuntimeError as e:
    print(f"  no CUDA device here: {e}")
