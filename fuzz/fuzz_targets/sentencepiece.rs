#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| stt_fuzz::sentencepiece(data));
