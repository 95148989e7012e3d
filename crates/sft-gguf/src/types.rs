//! Tensor types (`ggml_type`) and their byte encodings: F32, F16, BF16, Q8_0, Q4_0, Q5_0, and the K-quants Q4_K,
//! Q5_K and Q6_K ([`crate::kquants`]).

use half::{bf16, f16};

/// A tensor type this crate writes and reads, with ggml's id.
#[allow(non_camel_case_types, reason = "llama.cpp's names: Q4_K, Q5_K, Q6_K")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// 32-bit float (id 0).
    F32,
    /// IEEE half (id 1), rounded to nearest even.
    F16,
    /// Blocks of 32 values: an f16 scale `d = max|x| / 127` and 32 signed bytes `round(x · (1 / d))` (id 8), as
    /// ggml's reference and gguf-py quantize (`d` and its inverse in f32, `d` stored as f16; halves round away from
    /// zero).
    Q8_0,
    /// bfloat16 (id 30), rounded to nearest even.
    Bf16,
    /// Blocks of 32 values (id 2): an f16 scale `d = m / -8`, where `m` is the value of largest magnitude (the
    /// first, on ties), and 16 bytes of 4-bit codes `q = min(15, trunc(x / d + 8.5))`, value `j` in the low nibble of
    /// byte `j` and value `16 + j` in its high nibble; decoded as `d · (q - 8)`. As ggml's reference quantizes
    /// (`llama-quantize`): `1 / d`, the product and the offset all in f32 (gguf-py computes the last two in f64,
    /// which gives another code where the f32 sum rounds up to a whole number: 2 blocks of 8.4 million here).
    Q4_0,
    /// Blocks of 32 values (id 6): an f16 scale `d = m / -16` and 5-bit codes (their fifth bits in a u32 first),
    /// decoded as `d · (q - 16)`; llama.cpp's stand-in for Q4_K where a row is not a whole number of 256.
    Q5_0,
    /// Super-blocks of 256 values (id 12): eight sub-blocks of 32 with 6-bit scales and minimums and 4-bit codes.
    Q4_K,
    /// Super-blocks of 256 values (id 13): as Q4_K with 5-bit codes.
    Q5_K,
    /// Super-blocks of 256 values (id 14): sixteen groups of 16 with i8 scales and 6-bit codes.
    Q6_K,
}

impl GgmlType {
    /// Every type, for error messages.
    pub const ALL: [Self; 9] =
        [Self::F32, Self::F16, Self::Bf16, Self::Q8_0, Self::Q4_0, Self::Q5_0, Self::Q4_K, Self::Q5_K, Self::Q6_K];

    /// ggml's id (`GGML_TYPE_*`).
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q8_0 => 8,
            Self::Bf16 => 30,
            Self::Q4_0 => 2,
            Self::Q5_0 => 6,
            Self::Q4_K => 12,
            Self::Q5_K => 13,
            Self::Q6_K => 14,
        }
    }

    /// The type of ggml id `id`, if this crate handles it.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    /// llama.cpp's name (`F32`, `F16`, `BF16`, `Q8_0`, `Q4_0`, `Q5_0`, `Q4_K`, `Q5_K`, `Q6_K`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q8_0 => "Q8_0",
            Self::Bf16 => "BF16",
            Self::Q4_0 => "Q4_0",
            Self::Q5_0 => "Q5_0",
            Self::Q4_K => "Q4_K",
            Self::Q5_K => "Q5_K",
            Self::Q6_K => "Q6_K",
        }
    }

    /// The type named `name` (case-insensitive), if this crate writes it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Values per block (32 for Q8_0, Q4_0 and Q5_0, 256 for the K-quants, else 1); a tensor's contiguous axis
    /// must be a multiple of it.
    pub fn block_size(self) -> usize {
        match self {
            Self::Q8_0 | Self::Q4_0 | Self::Q5_0 => 32,
            Self::Q4_K | Self::Q5_K | Self::Q6_K => crate::kquants::QK_K,
            Self::F32 | Self::F16 | Self::Bf16 => 1,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::Bf16 => 2,
            Self::Q8_0 => 2 + 32,
            Self::Q4_0 => 2 + 16,
            Self::Q5_0 => 2 + 4 + 16,
            Self::Q4_K => 2 + 2 + 12 + 128,
            Self::Q5_K => 2 + 2 + 12 + 32 + 128,
            Self::Q6_K => 128 + 64 + 16 + 2,
        }
    }

    /// Bytes of `elements` values (a whole number of blocks).
    pub fn bytes(self, elements: usize) -> usize {
        elements / self.block_size() * self.block_bytes()
    }
}

/// One tensor of a file: its name, its shape in PyTorch order (`[rows, cols]`, the last axis contiguous), its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The name (`blk.0.attn_q.weight`).
    pub name: String,
    /// The shape, outermost axis first.
    pub shape: Vec<usize>,
    /// The stored type.
    pub ty: GgmlType,
}

impl TensorInfo {
    /// Number of values.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Bytes of its data.
    pub fn bytes(&self) -> usize {
        self.ty.bytes(self.elements())
    }
}

/// `values` (row-major) in `ty`'s encoding; `values.len()` must be a multiple of `ty.block_size()`.
pub fn encode(values: &[f32], ty: GgmlType) -> Vec<u8> {
    match ty {
        GgmlType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::F16 => values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect(),
        GgmlType::Bf16 => values.iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect(),
        GgmlType::Q8_0 => {
            let mut out = Vec::with_capacity(ty.bytes(values.len()));
            for block in values.chunks(32) {
                let d = block.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
                let inverse = if d == 0.0 { 0.0 } else { 1.0 / d };
                out.extend(f16::from_f32(d).to_le_bytes());
                // Times the f32 inverse, not divided by d (the two differ by an ulp at some halves); `round` rounds
                // halves away from zero, as ggml's `roundf` and gguf-py's `np_roundf` do.
                out.extend(block.iter().map(|&v| (v * inverse).round() as i8 as u8));
            }
            out
        }
        GgmlType::Q4_0 => {
            let mut out = Vec::with_capacity(ty.bytes(values.len()));
            for block in values.chunks(32) {
                let m = block.iter().fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                let d = m / -8.0;
                let inverse = if d == 0.0 { 0.0 } else { 1.0 / d };
                // In [0.5, 16.5]: truncation is the floor, 16 (the largest value's own code) is clamped to 15.
                let code = |v: f32| ((v * inverse + 8.5) as u8).min(15);
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend((0..16).map(|j| code(block[j]) | (code(block[16 + j]) << 4)));
            }
            out
        }
        GgmlType::Q5_0 => crate::kquants::encode_q5_0(values),
        GgmlType::Q4_K => crate::kquants::encode_q4_k(values),
        GgmlType::Q5_K => crate::kquants::encode_q5_k(values),
        GgmlType::Q6_K => crate::kquants::encode_q6_k(values),
    }
}

/// The values of `bytes` in `ty`'s encoding, as f32.
pub fn decode(bytes: &[u8], ty: GgmlType) -> Vec<f32> {
    match ty {
        GgmlType::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        GgmlType::F16 => bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        GgmlType::Bf16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        GgmlType::Q8_0 => bytes
            .chunks_exact(34)
            .flat_map(|block| {
                let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
                block[2..].iter().map(move |&q| d * f32::from(q as i8))
            })
            .collect(),
        GgmlType::Q4_0 => bytes
            .chunks_exact(18)
            .flat_map(|block| {
                let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
                let nibble = |q: u8| d * (f32::from(q) - 8.0);
                let low: Vec<f32> = block[2..].iter().map(|&q| nibble(q & 0x0F)).collect();
                let high: Vec<f32> = block[2..].iter().map(|&q| nibble(q >> 4)).collect();
                low.into_iter().chain(high)
            })
            .collect(),
        GgmlType::Q5_0 => crate::kquants::decode_q5_0(bytes),
        GgmlType::Q4_K => crate::kquants::decode_q4_k(bytes),
        GgmlType::Q5_K => crate::kquants::decode_q5_k(bytes),
        GgmlType::Q6_K => crate::kquants::decode_q6_k(bytes),
    }
}
