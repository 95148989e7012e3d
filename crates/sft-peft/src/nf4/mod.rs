//! 4-bit NormalFloat quantization, bit-compatible with bitsandbytes (QLoRA's frozen base).

pub mod codebook;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cube;
pub mod fused;
mod linear;
mod weight;

pub use linear::Nf4Linear;
pub use weight::{Absmax, BLOCKSIZE, NESTED_BLOCKSIZE, Nf4Weight, double_quantize};
