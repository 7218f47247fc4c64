//! libFuzzer entry of [`upsoak_fuzz::sim::sim_config`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| upsoak_fuzz::sim::sim_config(data));
