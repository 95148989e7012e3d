//! Writes a sample GGUF file, for checking the writer with independent readers
//! (`scripts/gguf/check_sample.py` reads it with llama.cpp's Python `gguf` package):
//!
//! ```sh
//! cargo run -p sft-gguf --example gguf_sample -- /tmp/sample.gguf
//! ```
//!
//! Metadata of every value type, one `[3, 256]` tensor per tensor type holding `3 sin(0.37 i)`, and per quantized
//! type a `[256, 512]` tensor `big.<TYPE>` of hashed values in [-1, 1) (value `i`: `(i · 2654435761 mod 2³²) / 2³¹ - 1`)
//! whose first block is zero and whose second, halved, holds a tie of its largest magnitudes (+0.9 before -0.9), for comparing the bytes
//! with gguf's own quantizer.

use sft_gguf::{GgmlType, GgufWriter, Value, ValueType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: gguf_sample OUT.gguf")?;
    let mut writer = GgufWriter::new();
    writer
        .metadata("general.architecture", Value::string("llama"))?
        .metadata("sample.u8", Value::U8(200))?
        .metadata("sample.i8", Value::I8(-5))?
        .metadata("sample.u16", Value::U16(60000))?
        .metadata("sample.i16", Value::I16(-30000))?
        .metadata("sample.u32", Value::U32(4_000_000_000))?
        .metadata("sample.i32", Value::I32(-2_000_000_000))?
        .metadata("sample.f32", Value::F32(0.1))?
        .metadata("sample.bool", Value::Bool(true))?
        .metadata("sample.string", Value::string("naïve ☕"))?
        .metadata("sample.u64", Value::U64(1 << 40))?
        .metadata("sample.i64", Value::I64(-(1 << 40)))?
        .metadata("sample.f64", Value::F64(0.1))?
        .metadata("sample.strings", Value::strings(["<s>", "Ġthe", ""]))?
        .metadata("sample.i32s", Value::i32s([1, 3, 6]))?
        .metadata("sample.empty", Value::Array { element: ValueType::U32, items: vec![] })?;
    for ty in GgmlType::ALL {
        writer.tensor(&format!("t.{}", ty.name()), &[3, 256], ty)?;
    }
    for ty in GgmlType::ALL.into_iter().filter(|ty| ty.block_size() > 1) {
        writer.tensor(&format!("big.{}", ty.name()), &[256, 512], ty)?;
    }
    let values: Vec<f32> = (0..3 * 256).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    let mut big: Vec<f32> =
        (0..256u64 * 512).map(|i| ((i * 2_654_435_761) % (1 << 32)) as f32 / (1u64 << 31) as f32 - 1.0).collect();
    big[..32].fill(0.0);
    big[32..64].iter_mut().for_each(|v| *v *= 0.5);
    big[40] = 0.9;
    big[50] = -0.9;
    writer.write(std::path::Path::new(&path), |info| {
        Ok::<_, std::io::Error>(if info.name.starts_with("big.") { big.clone() } else { values.clone() })
    })?;
    Ok(())
}
