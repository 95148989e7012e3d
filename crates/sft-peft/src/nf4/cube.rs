//! The NF4 operations on the CubeCL backend (wgpu, CUDA): a dequantization kernel, then the backend's matmul.
//!
//! One unit decodes one I32 word of packed codes: four bytes, eight weights, all in one 64-element block (64 is a
//! multiple of 8), so it reads one scale and writes eight values. The 16 NF4 levels are passed as a small buffer.
//! The dense weight lives only in a buffer from the backend's memory pool, which reuses it across calls; for bf16
//! compute it is cast before the matmul.

use burn::backend::Cube;
use burn::backend::FloatDType;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::tensor::TensorData;
use burn_cubecl::cubecl;
use burn_cubecl::cubecl::prelude::*;
use burn_cubecl::cubecl::{CubeDim, calculate_cube_count_elemwise};
use burn_cubecl::kernel::into_contiguous;

use super::codebook::NF4;
use super::fused::{Nf4Backend, matmul_dequantized};

/// Weights decoded per unit: one I32 word of packed bytes.
const PER_WORD: usize = 8;

/// `output[8w + 2k] = code[byte_k >> 4] · absmax[w / 8]` and `output[8w + 2k + 1] = code[byte_k & 15] · …` for
/// the bytes `byte_k` (k = 0..4, little-endian) of word `w`; elements at or past `n` are not written.
#[cube(launch)]
fn nf4_dequantize_kernel(packed: &[i32], absmax: &[f32], code: &[f32], output: &mut [f32], n: usize) {
    let word = ABSOLUTE_POS;
    let first = word * 8;
    if first >= n {
        terminate!();
    }
    let bits = u32::cast_from(packed[word]);
    let scale = absmax[word / 8];
    #[unroll]
    for k in 0..4u32 {
        let byte = (bits >> (8 * k)) & 0xff;
        let at = first + 2 * k as usize;
        if at < n {
            output[at] = code[usize::cast_from(byte >> 4)] * scale;
        }
        if at + 1 < n {
            output[at + 1] = code[usize::cast_from(byte & 0xf)] * scale;
        }
    }
}

impl Nf4Backend for Cube {
    fn nf4_dequantize(packed: IntTensor<Self>, absmax: FloatTensor<Self>, shape: [usize; 2]) -> FloatTensor<Self> {
        let (packed, absmax) = (into_contiguous(packed), into_contiguous(absmax));
        let n = shape[0] * shape[1];
        let device = packed.device.clone();
        let code = Self::float_from_data(TensorData::new(NF4.to_vec(), [NF4.len()]), &device);
        let output = Self::float_empty(shape.into(), &device, FloatDType::F32);
        let client = output.client.clone();
        let units = n.div_ceil(PER_WORD);
        let cube_dim = CubeDim::new(&client, units);
        let cube_count = calculate_cube_count_elemwise(&client, units, cube_dim);
        nf4_dequantize_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            packed.into_buffer_arg(),
            absmax.into_buffer_arg(),
            code.into_buffer_arg(),
            output.clone().into_buffer_arg(),
            n,
        );
        output
    }

    fn nf4_matmul(
        x: FloatTensor<Self>,
        packed: IntTensor<Self>,
        absmax: FloatTensor<Self>,
        shape: [usize; 2],
    ) -> FloatTensor<Self> {
        matmul_dequantized::<Self>(x, packed, absmax, shape)
    }
}
