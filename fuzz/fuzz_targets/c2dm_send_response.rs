#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pushgate_fuzzing::c2dm_send_response(data));
