//! libFuzzer entry of [`upsoak_fuzz::sim::sim_body`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| upsoak_fuzz::sim::sim_body(data));
