#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pushgate_fuzzing::oauth_token_response(data));
