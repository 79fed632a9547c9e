//! The bodies of the fuzz targets. Each takes raw bytes and panics on a finding; cargo-fuzz
//! (`fuzz/`, nightly, `make fuzz`) drives them coverage-guided, and `tests/bounded.rs` drives
//! the same bodies on stable over the committed seed corpus plus random inputs (`make test`).

mod bytes;
pub mod keys;
pub mod registration;
pub mod schema;
