//! The fuzz target bodies on stable: every file of the committed seed corpus (`fuzz/corpus/`,
//! also what `make fuzz` starts from), then random inputs from proptest. The number of random
//! cases per target is `OPDISPATCH_FUZZ_CASES` (default 256, a few seconds in a debug build).

use std::path::PathBuf;
use std::sync::Mutex;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// The registration bodies share the process-wide dispatcher (and fallbacks): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no seed corpus at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty seed corpus {}", dir.display());
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn cases(scale: u32) -> u32 {
    std::env::var("OPDISPATCH_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
        * scale
}

fn drive(target: &str, body: fn(&[u8]), strategy: impl Strategy<Value = Vec<u8>>, scale: u32) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let seeds = corpus(target);
    for s in &seeds {
        body(s);
    }
    let n = cases(scale);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |data| {
            body(&data);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{target}: {e}"));
    eprintln!(
        "fuzz {target}: {} seeds + {n} random inputs, no finding",
        seeds.len()
    );
}

/// Bytes that are mostly schema-like text, sometimes anything.
fn schema_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-zA-Z_0-9:.()\\[\\]?!|*=,\\- >\"'\n]{0,80}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..80),
    ]
}

fn key_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(
            proptest::sample::select(vec![
                "CPU",
                "CUDA",
                "AutogradCPU",
                "Python",
                "Dense",
                "Sparse",
                "Autograd",
                "Undefined",
                "PrivateUse1",
                "AutocastCPU",
                "Meta",
                "cpu",
                "",
                " CPU"
            ]),
            0..6
        )
        .prop_map(|v| v.join(",").into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

fn registration_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..160)
}

#[test]
fn schema_parser() {
    drive("schema", opdispatch_fuzz::schema::fuzz, schema_text(), 8);
}

#[test]
fn dispatch_keys() {
    drive("keys", opdispatch_fuzz::keys::fuzz, key_text(), 8);
}

#[test]
fn registration_sequences() {
    drive(
        "registration",
        opdispatch_fuzz::registration::fuzz,
        registration_bytes(),
        1,
    );
}

#[test]
fn registration_sequences_threads() {
    drive(
        "registration",
        opdispatch_fuzz::registration::fuzz_threads,
        registration_bytes(),
        1,
    );
}
