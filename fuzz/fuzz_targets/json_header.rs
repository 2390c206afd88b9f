//! libFuzzer target `json_header`: the body is `rmq_protocol::fuzzing::json_header`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rmq_protocol::fuzzing::json_header(data);
});
