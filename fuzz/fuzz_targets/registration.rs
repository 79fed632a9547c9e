#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opdispatch_fuzz::registration::fuzz(data));
