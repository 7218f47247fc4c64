//! libFuzzer entry of [`upsoak_fuzz::agent::inbox`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| upsoak_fuzz::agent::inbox(data));
