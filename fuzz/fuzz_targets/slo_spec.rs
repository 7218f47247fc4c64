//! libFuzzer entry of [`upsoak_fuzz::agent::slo_spec`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| upsoak_fuzz::agent::slo_spec(data));
