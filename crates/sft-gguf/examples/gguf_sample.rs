//! Writes a sample GGUF file, for checking the writer with independent readers
//! (`scripts/gguf/check_sample.py` reads it with llama.cpp's Python `gguf` package):
//!
//! ```sh
//! cargo run -p sft-gguf --example gguf_sample -- /tmp/sample.gguf
//! ```
//!
//! Metadata of every value type, and one `[3, 64]` tensor per tensor type holding `3 sin(0.37 i)`.

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
        writer.tensor(&format!("t.{}", ty.name()), &[3, 64], ty)?;
    }
    let values: Vec<f32> = (0..3 * 64).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    writer.write(std::path::Path::new(&path), |_| Ok::<_, std::io::Error>(values.clone()))?;
    Ok(())
}
