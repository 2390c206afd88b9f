//! libFuzzer target `stored_message`: the body is `rmq_protocol::fuzzing::stored_message`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rmq_protocol::fuzzing::stored_message(data);
});
