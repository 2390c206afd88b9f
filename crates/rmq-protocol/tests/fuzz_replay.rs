//! Row A10 on stable: replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`)
//! through every fuzz target body, plus bounded random and mutated inputs from a
//! fixed-seed generator. Any panic is a finding: minimise it, add the input to the
//! corpus, and fix the decoder.

use std::path::PathBuf;

use rmq_protocol::fuzzing;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("frame_decode", fuzzing::frame_decode),
    ("json_header", fuzzing::json_header),
    ("binary_header", fuzzing::binary_header),
    ("properties", fuzzing::properties),
    ("route_parse", fuzzing::route_parse),
    ("stored_message", fuzzing::stored_message),
];

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_file() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.push((name, std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

/// xorshift64*: a fixed-seed generator so every run checks the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                let interesting = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, b'"', b'{', b':'];
                v.insert(i, interesting[rng.below(interesting.len())]);
            }
            _ if v.len() >= 4 => {
                // overwrite a 32-bit word with a boundary value
                let i = rng.below(v.len() - 3);
                let words = [0i32, -1, i32::MAX, i32::MIN, 4, 21, 0x0100_0000];
                v[i..i + 4].copy_from_slice(&words[rng.below(words.len())].to_be_bytes());
            }
            _ => {}
        }
    }
    v
}

#[test]
fn corpus_replay_and_bounded_random() {
    for (name, target) in TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "{name}: empty corpus");
        for (file, data) in &seeds {
            let result = std::panic::catch_unwind(|| target(data));
            assert!(result.is_ok(), "{name}: corpus file {file} panicked");
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
        for i in 0..3000 {
            let input = if i % 3 == 0 {
                (0..rng.below(300)).map(|_| rng.next() as u8).collect()
            } else {
                let (_, seed) = &seeds[rng.below(seeds.len())];
                mutate(&mut rng, seed)
            };
            let result = std::panic::catch_unwind(|| target(&input));
            assert!(result.is_ok(), "{name}: input #{i} panicked: {input:02x?}");
        }
    }
}
