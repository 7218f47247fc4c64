//! libFuzzer entry of [`upsoak_fuzz::sim::sim_selector`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| upsoak_fuzz::sim::sim_selector(data));
