//! libFuzzer entry of [`upsoak_fuzz::agent::webhook`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| upsoak_fuzz::agent::webhook(data));
