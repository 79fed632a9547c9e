//! The custom classes (`__torch__.torch.classes.<ns>.<Name>`) a schema may name.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Classes a stock PyTorch 2.15 CPU build registers, as `<ns>.<Name>`.
const BUILTIN: &[&str] = &[
    "c10d.ProcessGroup",
    "c10d.ReduceOp",
    "c10d.SymmetricMemory",
    "c10d.Work",
    "c10d.Backend",
    "c10d.Store",
    "c10d.FakeWork",
    "c10d.FakeProcessGroup",
    "cuda.Stream",
    "cuda.Event",
    "dist_rpc.WorkerInfo",
    "mkldnn.ConvOpContext",
    "mkldnn.LinearOpContext",
    "profiler._RecordFunction",
    "quantized.Conv2dPackedParamsBase",
    "quantized.Conv3dPackedParamsBase",
    "quantized.EmbeddingPackedParamsBase",
    "quantized.LinearPackedParamsBase",
    "rnn.CellParamsBase",
    "sparse.LinearPackedParamsBase",
    "xnnpack.Conv2dOpContext",
    "xnnpack.LinearOpContext",
    "xnnpack.TransposeConv2dOpContext",
];

fn registry() -> &'static Mutex<HashSet<String>> {
    static REG: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    REG.get_or_init(|| Mutex::new(BUILTIN.iter().map(ToString::to_string).collect()))
}

/// Make `__torch__.torch.classes.<ns>.<name>` known to the schema parser.
pub fn register_custom_class(ns: &str, name: &str) {
    let mut reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
    reg.insert(format!("{ns}.{name}"));
}

/// Whether `__torch__.torch.classes.<ns>.<name>` is known.
pub fn is_custom_class_registered(ns: &str, name: &str) -> bool {
    let reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
    reg.contains(&format!("{ns}.{name}"))
}
