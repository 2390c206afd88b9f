//! Unit tests of compression (every codec compiled in).

use super::*;

const KINDS: [CompressionType; 3] = [
    CompressionType::Zlib,
    CompressionType::Zstd,
    CompressionType::Lz4,
];

fn with_kind(kind: CompressionType) -> Compression {
    Compression {
        kind,
        ..Compression::default()
    }
}

/// Compressible but not trivial: a repeating text with a counter.
fn sample(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 32);
    let mut i = 0u32;
    while v.len() < len {
        v.extend_from_slice(format!("message body line {i}; ").as_bytes());
        i = i.wrapping_add(1);
    }
    v.truncate(len);
    v
}

#[test]
fn defaults_are_javas() {
    let c = Compression::default();
    assert!(c.enabled);
    assert_eq!(c.kind, CompressionType::Zlib);
    assert_eq!(c.level, 5);
    assert_eq!(c.threshold, 4096);
    assert!(c.validate().is_ok());
}

#[test]
fn round_trip_each_codec_below_at_and_above_threshold() {
    for kind in KINDS {
        let c = with_kind(kind);
        for len in [1, 4095, 4096, 4097, 100_000, 5 << 20] {
            let body = sample(len);
            let before = body.clone();
            let out = c.compress(&body).unwrap();
            assert_eq!(body, before, "input untouched");
            if len < 4096 {
                assert!(out.is_none(), "{kind} {len}");
                continue;
            }
            let (compressed, bits) = out.unwrap();
            assert_eq!(bits, 1 | kind.bits());
            let flag = SysFlag(SysFlag::TRANSACTION_PREPARED | bits);
            let back = decompress(flag, &compressed, len).unwrap();
            assert_eq!(back.as_ref(), body.as_slice(), "{kind} {len}");
            // One byte less than the real size is over the limit.
            assert!(matches!(
                decompress(flag, &compressed, len - 1),
                Err(CompressError::TooLarge { max_len, .. }) if max_len == len - 1
            ));
        }
    }
}

#[test]
fn flag_bits_match_java() {
    let body = sample(5000);
    let bits = |kind| with_kind(kind).compress(&body).unwrap().unwrap().1;
    assert_eq!(bits(CompressionType::Zlib), 0x301);
    assert_eq!(bits(CompressionType::Zstd), 0x201);
    assert_eq!(bits(CompressionType::Lz4), 0x101);
    assert_eq!(SysFlag::default().with(0x301).0, 769);
}

#[test]
fn output_used_even_when_larger() {
    // Incompressible input (a xorshift stream) at the threshold.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let body: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for kind in KINDS {
        let (out, _) = with_kind(kind).compress(&body).unwrap().unwrap();
        assert!(out.len() > body.len(), "{kind}: {}", out.len());
    }
}

#[test]
fn threshold_and_disabled() {
    let c = Compression {
        threshold: 10,
        ..Compression::default()
    };
    assert!(c.compress(&[7; 9]).unwrap().is_none());
    assert!(c.compress(&[7; 10]).unwrap().is_some(), ">= threshold");
    let zero = Compression {
        threshold: 0,
        ..Compression::default()
    };
    assert!(zero.applies_to(0));
    let off = Compression::disabled();
    assert!(off.compress(&sample(1 << 20)).unwrap().is_none());
}

#[test]
fn zlib_format_and_levels() {
    let body = sample(50_000);
    let mut sizes = Vec::new();
    for level in 0..=9 {
        let c = Compression {
            level,
            ..Compression::default()
        };
        let (out, _) = c.compress(&body).unwrap().unwrap();
        // zlib header: CM = 8 (deflate), and (CMF*256 + FLG) % 31 == 0.
        assert_eq!(out[0] & 0x0F, 8);
        assert_eq!((u16::from(out[0]) << 8 | u16::from(out[1])) % 31, 0);
        // Adler-32 trailer of the input.
        let adler = {
            let (mut a, mut b) = (1u32, 0u32);
            for &byte in &body {
                a = (a + u32::from(byte)) % 65521;
                b = (b + a) % 65521;
            }
            (b << 16) | a
        };
        assert_eq!(out[out.len() - 4..], adler.to_be_bytes());
        sizes.push(out.len());
    }
    assert!(sizes[0] > body.len(), "level 0 stores");
    assert!(sizes[1..].iter().all(|&n| n < body.len() / 2), "{sizes:?}");
    for level in [-1, 10] {
        let c = Compression {
            level,
            ..Compression::default()
        };
        assert!(matches!(
            c.compress(&body),
            Err(CompressError::InvalidLevel { min: 0, max: 9, .. })
        ));
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            format!("compression level {level} for ZLIB must be in 0..=9")
        );
    }
}

#[test]
fn decompresses_java_zlib() {
    // java.util.zip.DeflaterOutputStream(new Deflater(5)), OpenJDK 17.
    let java = hex(
        "785e0bca4fce4e2df10d5408c2cd48cecf2d284a2d2e4e4d5148aa54c84a2c4bd42b2dc9ccd1abca2c50c8492d4bcd5130050099381985",
    );
    let text = b"RocketMQ RocketMQ RocketMQ RocketMQ compressed by java.util.zip level 5";
    for flag in [0x301, 0x1, 0x305] {
        assert_eq!(
            decompress(SysFlag(flag), &java, 1000).unwrap().as_ref(),
            text
        );
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn lz4_is_frame_format() {
    for len in [4096, 300_000, 5 << 20] {
        let (out, _) = with_kind(CompressionType::Lz4)
            .compress(&sample(len))
            .unwrap()
            .unwrap();
        assert_eq!(out[..4], [0x04, 0x22, 0x4D, 0x18]);
        // FLG: version 01, block independence set, no content checksum/size.
        assert_eq!(out[4] & 0b1100_0000, 0b0100_0000);
        assert_ne!(out[4] & 0b0010_0000, 0);
        assert_eq!(out[4] & 0b0000_1100, 0);
        // BD: a standard block size (64 KiB .. 4 MiB = 4..=7).
        assert!((4..=7).contains(&(out[5] >> 4)), "{:#x}", out[5]);
    }
}

#[test]
fn zstd_is_a_frame() {
    let (out, _) = with_kind(CompressionType::Zstd)
        .compress(&sample(5000))
        .unwrap()
        .unwrap();
    assert_eq!(out[..4], [0x28, 0xB5, 0x2F, 0xFD]);
}

#[test]
fn bomb_is_rejected_without_allocating_it() {
    const HUNDRED_MB: usize = 100 << 20;
    let zeros = vec![0u8; HUNDRED_MB];
    for kind in KINDS {
        let (bomb, bits) = with_kind(kind).compress(&zeros).unwrap().unwrap();
        assert!(bomb.len() < HUNDRED_MB / 100, "{kind}: {}", bomb.len());
        let err = decompress(SysFlag(bits), &bomb, 1 << 20).unwrap_err();
        assert!(
            matches!(err, CompressError::TooLarge { max_len, .. } if max_len == 1 << 20),
            "{kind}: {err}"
        );
    }
}

#[test]
fn zstd_window_larger_than_allowed_is_rejected() {
    // A streamed frame without a content size declares its window (64 MiB here)
    // in the header; the decoder must not allocate it for a 1 MiB limit.
    let body = sample(10_000);
    let frame = {
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        enc.window_log(26).unwrap();
        enc.write_all(&body).unwrap();
        enc.finish().unwrap()
    };
    let flag = SysFlag(0x201);
    let err = decompress(flag, &frame, 1 << 20).unwrap_err();
    assert!(matches!(err, CompressError::Codec { .. }), "{err}");
    assert_eq!(decompress(flag, &frame, 64 << 20).unwrap().as_ref(), body);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let mut x = 12345u64;
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x78],
        vec![0x78, 0x9c, 0xff, 0xff],
        vec![0x04, 0x22, 0x4D, 0x18],
        vec![
            0x04, 0x22, 0x4D, 0x18, 0x60, 0x70, 0x73, 0xff, 0xff, 0xff, 0x7f,
        ],
        vec![0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0],
        b"definitely not compressed".to_vec(),
    ];
    for len in [1, 7, 64, 4096] {
        inputs.push(
            (0..len)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (x >> 33) as u8
                })
                .collect(),
        );
    }
    // Truncated valid streams.
    for kind in KINDS {
        let (good, _) = with_kind(kind).compress(&sample(10_000)).unwrap().unwrap();
        inputs.push(good[..good.len() / 2].to_vec());
    }
    for kind in KINDS {
        for input in &inputs {
            let r = decompress(SysFlag(1 | kind.bits()), input, 1 << 20);
            assert!(
                matches!(r, Err(CompressError::Codec { .. })),
                "{kind} {input:02x?}: {r:?}"
            );
        }
    }
}

#[test]
fn unknown_type_and_uncompressed() {
    for v in 4..=7 {
        assert!(matches!(
            decompress(SysFlag((v << 8) | 1), b"x", 10),
            Err(CompressError::UnknownType(UnknownCompressionType(t))) if t == v
        ));
    }
    // Not compressed: returned as is, whatever the type bits say.
    assert_eq!(
        decompress(SysFlag(0x300), b"plain", 10).unwrap().as_ref(),
        b"plain"
    );
}

#[test]
fn serde_kind_names() {
    #[derive(Deserialize, Serialize)]
    struct W {
        compression: Compression,
    }
    let w: W = toml::from_str("[compression]\nkind = \"ZSTD\"\nlevel = 3\n").unwrap();
    assert_eq!(w.compression.kind, CompressionType::Zstd);
    assert_eq!(w.compression.threshold, 4096);
    let w: W = toml::from_str("[compression]\ntype = \"lz4\"\n").unwrap();
    assert_eq!(w.compression.kind, CompressionType::Lz4);
    let err = toml::from_str::<W>("[compression]\nkind = \"gzip\"\n")
        .err()
        .unwrap();
    assert!(
        err.message().contains("unknown compression kind \"gzip\""),
        "{err}"
    );
    let v = toml::Value::try_from(Compression::default()).unwrap();
    assert_eq!(v.get("kind").and_then(|k| k.as_str()), Some("zlib"));
    let back = Compression::deserialize(v).unwrap();
    assert_eq!(back, Compression::default());
}
