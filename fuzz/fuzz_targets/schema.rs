#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opdispatch_fuzz::schema::fuzz(data));
