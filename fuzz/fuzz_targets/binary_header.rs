//! libFuzzer target `binary_header`: the body is `rmq_protocol::fuzzing::binary_header`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rmq_protocol::fuzzing::binary_header(data);
});
