//! The GGUF writer against the format as the spec lays it out byte by byte, quantization against hand-computed
//! blocks, a round trip through the reader, and bad input.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

use std::path::Path;

use sft_gguf::{GgmlType, GgufError, GgufFile, GgufWriter, Value, decode, encode};

fn push_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

#[test]
fn the_header_is_laid_out_as_the_spec_says() {
    // One string metadata value, one [2, 3] F32 tensor: written by hand from the GGUF v3 layout (magic, version,
    // counts, key + type 8 + string, name + 2 dims listed innermost first + type 0 + offset 0, zero padding to 32,
    // the data).
    let mut expected = Vec::new();
    expected.extend(b"GGUF");
    expected.extend(3u32.to_le_bytes());
    expected.extend(1u64.to_le_bytes());
    expected.extend(1u64.to_le_bytes());
    push_string(&mut expected, "general.architecture");
    expected.extend(8u32.to_le_bytes());
    push_string(&mut expected, "llama");
    push_string(&mut expected, "a");
    expected.extend(2u32.to_le_bytes());
    expected.extend(3u64.to_le_bytes());
    expected.extend(2u64.to_le_bytes());
    expected.extend(0u32.to_le_bytes());
    expected.extend(0u64.to_le_bytes());
    assert_eq!(expected.len(), 4 + 4 + 8 + 8 + 28 + 4 + 13 + 9 + 4 + 16 + 4 + 8);
    expected.resize(128, 0); // 110 bytes, padded to the next multiple of 32
    for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
        expected.extend(v.to_le_bytes());
    }
    expected.resize(160, 0);

    let mut writer = GgufWriter::new();
    writer.metadata("general.architecture", Value::string("llama")).unwrap();
    writer.tensor("a", &[2, 3], GgmlType::F32).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.gguf");
    writer.write(&path, |_| Ok::<_, std::io::Error>(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), expected);
}

#[test]
fn q8_0_blocks_as_computed_by_hand() {
    // One block 0, 1, …, 31 scaled by 0.5: max |x| = 15.5, d = 15.5 / 127 (stored as f16: 0.12207031),
    // q = round(x · (1 / d)) with the f32 d; x = 15.5 gives 127, x = 0.5 gives round(4.0968) = 4.
    let values: Vec<f32> = (0..32).map(|i| i as f32 * 0.5).collect();
    let bytes = encode(&values, GgmlType::Q8_0);
    assert_eq!(bytes.len(), 34);
    let d = half::f16::from_le_bytes([bytes[0], bytes[1]]);
    assert_eq!(d, half::f16::from_f32(15.5 / 127.0));
    let q: Vec<i8> = bytes[2..].iter().map(|&b| b as i8).collect();
    let by_hand: Vec<i8> = values.iter().map(|&x| (x * (1.0 / (15.5f32 / 127.0))).round() as i8).collect();
    assert_eq!(q, by_hand);
    assert_eq!((q[0], q[1], q[31]), (0, 4, 127));
    // Dequantized: d × q, within half a step (plus the f16 rounding of d).
    let back = decode(&bytes, GgmlType::Q8_0);
    let step = d.to_f32();
    for (x, y) in values.iter().zip(&back) {
        assert!((x - y).abs() <= step * 0.5 + 127.0 * (step - 15.5 / 127.0).abs() + 1e-6, "{x} vs {y}");
    }
    // An all-zero block has scale 0 and zero quants.
    assert_eq!(encode(&[0.0; 32], GgmlType::Q8_0), vec![0; 34]);
    // A negative half rounds away from zero, as gguf-py's np_roundf.
    let halves: Vec<f32> = [127.0f32, -0.5].into_iter().chain(std::iter::repeat_n(0.0, 30)).collect();
    assert_eq!(encode(&halves, GgmlType::Q8_0)[3] as i8, -1);
    // x · (1 / d), not x / d: with max|x| = 1, x = 4.5 · d gives x / d = 4.5 (→ 5) but x · (1 / d) = 4.4999995
    // (→ 4), which is what ggml's reference quantizer (and llama.cpp's quantize) writes.
    let d = 1.0f32 / 127.0;
    let tie: Vec<f32> = [1.0f32, 4.5 * d].into_iter().chain(std::iter::repeat_n(0.0, 30)).collect();
    assert_eq!((tie[1] / d, encode(&tie, GgmlType::Q8_0)[3] as i8), (4.5, 4));
}

#[test]
fn q4_0_blocks_as_computed_by_hand() {
    // One block -8, -7.5, …, 7.5: the largest magnitude is -8 (the first), d = -8 / -8 = 1, codes
    // min(15, trunc(x + 8.5)); 7.5 → 16 → 15. Value j in byte j's low nibble, value 16 + j in its high nibble.
    let values: Vec<f32> = (0..32).map(|i| -8.0 + i as f32 * 0.5).collect();
    let bytes = encode(&values, GgmlType::Q4_0);
    assert_eq!(bytes.len(), 18);
    assert_eq!(half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f32(), 1.0);
    let codes: Vec<u8> = values.iter().map(|&x| ((x + 8.5).trunc() as u8).min(15)).collect();
    assert_eq!((codes[0], codes[1], codes[2], codes[31]), (0, 1, 1, 15));
    let packed: Vec<u8> = (0..16).map(|j| codes[j] | (codes[16 + j] << 4)).collect();
    assert_eq!(bytes[2..], packed[..]);
    assert_eq!(bytes[2], 0x80, "value 0 (code 0) low, value 16 (0.0 → code 8) high");
    // Decoded: d · (q - 8): -8, -7, -7, …; every value within one step (d = 1) of the original.
    let back = decode(&bytes, GgmlType::Q4_0);
    assert_eq!(back[..3], [-8.0, -7.0, -7.0]);
    assert!(values.iter().zip(&back).all(|(x, y)| (x - y).abs() <= 1.0), "{back:?}");
    // A positive largest value gives a negative scale; an all-zero block, scale -0 (0 / -8) and codes 8.
    let positive: Vec<f32> = (0..32).map(|i| i as f32 * 0.25).collect();
    let bytes = encode(&positive, GgmlType::Q4_0);
    assert_eq!(half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f32(), -7.75 / 8.0);
    assert_eq!(bytes[2] & 0x0F, 8, "0.0 → code 8");
    let zeros = encode(&[0.0; 32], GgmlType::Q4_0);
    assert_eq!(zeros, [[0x00, 0x80].as_slice(), &[0x88; 16]].concat());
}

#[test]
fn every_type_round_trips_through_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.gguf");
    let values: Vec<f32> = (0..256 * 3).map(|i| ((i as f32) * 0.37).sin() * 3.0).collect();
    let mut writer = GgufWriter::new();
    writer
        .metadata("general.architecture", Value::string("llama"))
        .unwrap()
        .metadata("llama.block_count", Value::U32(2))
        .unwrap()
        .metadata("llama.rope.freq_base", Value::F32(10000.0))
        .unwrap()
        .metadata("tokenizer.ggml.tokens", Value::strings(["<s>", "a", "é"]))
        .unwrap()
        .metadata("tokenizer.ggml.token_type", Value::i32s([3, 1, 1]))
        .unwrap()
        .metadata("tokenizer.ggml.add_bos_token", Value::Bool(true))
        .unwrap();
    for ty in GgmlType::ALL {
        writer.tensor(&format!("t.{}", ty.name()), &[3, 256], ty).unwrap();
    }
    let mut asked = Vec::new();
    writer
        .write(&path, |info| {
            asked.push(info.name.clone());
            Ok::<_, std::io::Error>(values.clone())
        })
        .unwrap();
    let names: Vec<String> = GgmlType::ALL.iter().map(|ty| format!("t.{}", ty.name())).collect();
    assert_eq!(asked, names, "asked once each, in order");
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(file.get("general.architecture").and_then(Value::as_str), Some("llama"));
    assert_eq!(file.get("llama.block_count").and_then(Value::as_u64), Some(2));
    assert_eq!(file.get("tokenizer.ggml.tokens"), Some(&Value::strings(["<s>", "a", "é"])));
    assert_eq!(file.get("tokenizer.ggml.add_bos_token"), Some(&Value::Bool(true)));
    for ty in GgmlType::ALL {
        let name = format!("t.{}", ty.name());
        let info = file.info(&name).unwrap();
        assert_eq!((info.shape.as_slice(), info.ty), ([3, 256].as_slice(), ty));
        let back = file.tensor_f32(&name).unwrap();
        let worst = values.iter().zip(&back).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        // F32 exact; F16 within 2^-11 relative (|x| ≤ 3: 1.5e-3); BF16 2^-8 (1.2e-2); Q8_0 half a step of
        // max|x| / 127 per block (1.2e-2) plus the f16 scale's rounding; Q4_0 one step of max|x| / 8 (truncation
        // after + 8.5 is rounding, save for the clamped top code) plus the scale's rounding; Q5_0 the same with
        // max|x| / 16; the K-quants one step of a sub-block's range (6 / 15, 6 / 31) or of max|x| / 32 (Q6_K), the
        // step of their 6- or 8-bit quantized scales included (ggml's own encodings: the fixture test below).
        let bound = match ty {
            GgmlType::F32 => 0.0,
            GgmlType::F16 => 3.0 / 2048.0,
            GgmlType::Bf16 => 3.0 / 256.0,
            GgmlType::Q8_0 => 3.0 / 127.0 * 0.5 + 3.0 / 1024.0,
            GgmlType::Q4_0 => 3.0 / 8.0 + 3.0 / 1024.0 * 8.0,
            GgmlType::Q5_0 => 3.0 / 16.0 + 3.0 / 1024.0 * 16.0,
            GgmlType::Q4_K => 6.0 / 15.0,
            GgmlType::Q5_K => 6.0 / 31.0,
            GgmlType::Q6_K => 3.0 / 32.0,
        };
        assert!(worst <= bound, "{name}: {worst} > {bound}");
        assert_eq!(back, decode(&encode(&values, ty), ty), "{name}: the reader returns what the encoder wrote");
    }
}

#[test]
fn bad_input_is_refused_and_nothing_is_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = GgufWriter::new();
    writer.metadata("k", Value::U8(1)).unwrap();
    assert!(matches!(writer.metadata("k", Value::U8(2)), Err(GgufError::Invalid { .. })));
    let mixed = Value::Array { element: sft_gguf::ValueType::I32, items: vec![Value::I32(1), Value::U8(2)] };
    assert!(writer.metadata("mixed", mixed).unwrap_err().to_string().contains("must all be I32"));
    let err = writer.tensor("w", &[4, 48], GgmlType::Q8_0).unwrap_err().to_string();
    assert_eq!(err, "tensor `w`: its last axis (48) is not a multiple of Q8_0's block of 32");
    writer.tensor("w", &[2, 32], GgmlType::F16).unwrap();

    // An existing output is not overwritten.
    let existing = dir.path().join("exists.gguf");
    std::fs::write(&existing, b"keep").unwrap();
    let err = writer.write(&existing, |_| Ok::<_, std::io::Error>(vec![0.0; 64])).unwrap_err();
    assert!(matches!(err, GgufError::Exists { .. }), "{err}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep");

    // A failing source or a wrong count leaves no file behind.
    let out = dir.path().join("out.gguf");
    let err = writer.write(&out, |_| Err(std::io::Error::other("disk on fire"))).unwrap_err();
    assert_eq!(err.to_string(), "tensor `w`: disk on fire");
    let err = writer.write(&out, |_| Ok::<_, std::io::Error>(vec![0.0; 10])).unwrap_err();
    assert!(err.to_string().contains("10 values given for shape [2, 32]"), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["exists.gguf"], "no output and no temporary file");

    // A truncated file, a foreign file and a type this crate does not read: errors naming the file.
    writer.write(&out, |_| Ok::<_, std::io::Error>(vec![0.5; 64])).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let err = GgufFile::open(&cut).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: tensor `w` runs past the end", cut.display())), "{err}");
    let foreign = dir.path().join("foreign.gguf");
    std::fs::write(&foreign, b"PK\x03\x04 not gguf").unwrap();
    assert!(GgufFile::open(&foreign).unwrap_err().to_string().contains("no `GGUF` magic"));
    let q4 = dir.path().join("q4.gguf");
    let mut patched = bytes.clone();
    let at = find_type_field(&patched, "w");
    patched[at..at + 4].copy_from_slice(&3u32.to_le_bytes()); // Q4_1
    std::fs::write(&q4, &patched).unwrap();
    let err = GgufFile::open(&q4).unwrap_err().to_string();
    assert!(
        err.contains("tensor `w`: ggml type 3 is not read here (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K)"),
        "{err}"
    );
    patched[at..at + 4].copy_from_slice(&12u32.to_le_bytes()); // Q4_K: 256-value super-blocks, `w` has rows of 32
    std::fs::write(&q4, &patched).unwrap();
    let err = GgufFile::open(&q4).unwrap_err().to_string();
    assert!(err.contains("tensor `w`: its last axis (32) is not a multiple of Q4_K's block of 256"), "{err}");
    assert!(GgmlType::parse("q4_k_m").is_none() && GgmlType::parse("q4_0") == Some(GgmlType::Q4_0));
    assert!(GgufFile::open(Path::new("/nonexistent/x.gguf")).is_err());
}

/// The byte offset of the type field of tensor `name`'s descriptor (after its name and 2 dims).
fn find_type_field(bytes: &[u8], name: &str) -> usize {
    let mut needle = (name.len() as u64).to_le_bytes().to_vec();
    needle.extend(name.as_bytes());
    needle.extend(2u32.to_le_bytes());
    let at = bytes.windows(needle.len()).position(|w| w == needle.as_slice()).expect("the descriptor");
    at + needle.len() + 16
}

/// `tests/fixtures/kquants.gguf`: nine rows of 512 values and ggml's own encodings and decodings of them
/// (`make_kquants.py` there, llama-cpp-python 0.3.36's ggml).
fn kquants_fixture() -> GgufFile {
    GgufFile::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kquants.gguf")).unwrap()
}

#[test]
fn k_quants_and_q5_0_equal_ggml_byte_for_byte() {
    let file = kquants_fixture();
    let input = file.tensor_f32("input").unwrap();
    for (name, ty) in [
        ("q4_k", GgmlType::Q4_K),
        ("q5_k", GgmlType::Q5_K),
        ("q6_k", GgmlType::Q6_K),
        ("q5_0", GgmlType::Q5_0),
        ("q4_0", GgmlType::Q4_0),
    ] {
        assert_eq!(file.info(name).unwrap().ty, ty);
        let theirs = file.tensor_bytes(name).unwrap();
        let ours = encode(&input, ty);
        assert_eq!(ours.len(), ty.bytes(input.len()));
        let blocks = ours.chunks(ty.block_bytes()).zip(theirs.chunks(ty.block_bytes()));
        let differing: Vec<usize> = blocks.enumerate().filter(|(_, (a, b))| a != b).map(|(i, _)| i).collect();
        assert!(
            differing.is_empty(),
            "{name}: blocks {differing:?} of {} differ from ggml's",
            theirs.len() / ty.block_bytes()
        );
        // Repeated past one run of 64 super-blocks (encoded on several threads): the same bytes, repeated.
        let repeated: Vec<f32> = (0..8).flat_map(|_| input.iter().copied()).collect();
        assert_eq!(encode(&repeated, ty), theirs.repeat(8), "{name}: encoded in several runs");
    }
}

#[test]
fn k_quants_and_q5_0_decode_as_ggml_does() {
    let file = kquants_fixture();
    let input = file.tensor_f32("input").unwrap();
    for (name, bound) in [("q4_k", 0.2), ("q5_k", 0.1), ("q6_k", 0.05), ("q5_0", 0.1), ("q4_0", 0.2)] {
        // Read through the reader (dequantized), against ggml's dequantize_row_*: the same f32 values.
        let ours = file.tensor_f32(name).unwrap();
        let theirs = file.tensor_f32(&format!("{name}.decoded")).unwrap();
        assert_eq!(ours, theirs, "{name}");
        // And near the input: the largest error per row within `bound` of the row's largest magnitude; row 5's
        // values (about 1e-6) need scales below f16's smallest, so only ggml's own decoding checks it.
        for (row, (x, y)) in input.chunks(512).zip(ours.chunks(512)).enumerate().filter(|(row, _)| *row != 5) {
            let scale = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let error = x.iter().zip(y).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(error <= bound * scale, "{name} row {row}: error {error} of {scale}");
        }
    }
}
