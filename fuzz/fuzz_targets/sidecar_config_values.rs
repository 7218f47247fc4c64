//! libFuzzer entry of [`upsoak_fuzz::chaos::sidecar_config_values`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| upsoak_fuzz::chaos::sidecar_config_values(data));
