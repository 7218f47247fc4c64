//! libFuzzer entry of [`upsoak_fuzz::chaos::constraint`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| upsoak_fuzz::chaos::constraint(data));
