#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pushgate_fuzzing::gateway_config(data));
