//! libFuzzer target `properties`: the body is `rmq_protocol::fuzzing::properties`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rmq_protocol::fuzzing::properties(data);
});
