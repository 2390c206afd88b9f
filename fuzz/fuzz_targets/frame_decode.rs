//! libFuzzer target `frame_decode`: the body is `rmq_protocol::fuzzing::frame_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rmq_protocol::fuzzing::frame_decode(data);
});
