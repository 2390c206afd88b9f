//! libFuzzer target `route_parse`: the body is `rmq_protocol::fuzzing::route_parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rmq_protocol::fuzzing::route_parse(data);
});
