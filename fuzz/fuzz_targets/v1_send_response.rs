#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pushgate_fuzzing::v1_send_response(data));
