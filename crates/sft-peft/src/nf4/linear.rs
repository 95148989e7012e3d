//! `Nf4Linear`: a frozen projection whose weight is held in NF4 and dequantized for each matmul.

use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::DType;
use sft_model::Projection;

use super::codebook::dynamic_map;
use super::fused::{Nf4Backend, byte_pairs};
use super::weight::{Absmax, BLOCKSIZE, NESTED_BLOCKSIZE, Nf4Weight};
use crate::error::{PeftError, Result};

/// Double-quantized absmax on the device: `DYNAMIC[codes] · nested[block / 256] + offset`.
#[derive(Module, Debug)]
pub struct DoubleQuantAbsmax {
    /// 8-bit codes, one per block, four to an I32 word (little-endian).
    pub codes: Tensor<1, Int>,
    /// Number of codes (blocks).
    pub count: usize,
    /// f32 scale per 256 blocks.
    pub nested: Tensor<1>,
    /// The dynamic map (256 f32).
    pub map: Tensor<1>,
    /// The mean subtracted before quantizing.
    pub offset: f64,
}

/// A bias-free projection `[in] → [out]` whose weight is stored as bitsandbytes NF4 (packed codes and per-block
/// scales, all constants: no gradient reaches the weight; gradients flow to the input). `forward` dequantizes the
/// weight to `compute_dtype` and multiplies: fused ([`Nf4Backend`]) on flex and on the CubeCL backend, with tensor
/// ops that every backend has elsewhere.
#[derive(Module, Debug)]
pub struct Nf4Linear {
    /// bitsandbytes' packed bytes (two codes each, even element high), four to an I32 word in little-endian order,
    /// `[ceil(ceil(n / 2) / 4)]`: I32 because WGSL has no 8-bit integers; the bytes in memory are bitsandbytes'.
    pub packed: Tensor<1, Int>,
    /// f32 absmax per block of 64, unless double-quantized.
    pub absmax: Option<Tensor<1>>,
    /// Double-quantized absmax.
    pub double_quant: Option<DoubleQuantAbsmax>,
    /// The decoded pair of every byte value: row `b` is `[NF4[b >> 4], NF4[b & 15]]`, `[256, 2]` f32.
    pub pairs: Tensor<2>,
    /// Output features.
    pub out_features: usize,
    /// Input features.
    pub in_features: usize,
    /// Dtype of the dequantized weight and of the matmul (`bnb_4bit_compute_dtype`).
    #[module(skip)]
    pub compute_dtype: DType,
}

impl Nf4Linear {
    /// Places a quantized weight on `device`.
    pub fn new(weight: &Nf4Weight, compute_dtype: DType, device: &Device) -> Self {
        let words = |v: &[u8]| {
            let words = pack_words(v);
            let len = words.len();
            Tensor::<1, Int>::from_data(TensorData::new(words, [len]), (device, DType::I32))
        };
        let f32s = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), (device, DType::F32));
        let (absmax, double_quant) = match &weight.absmax {
            Absmax::F32(v) => (Some(f32s(v)), None),
            Absmax::Double { codes, nested, offset } => (
                None,
                Some(DoubleQuantAbsmax {
                    codes: words(codes),
                    count: codes.len(),
                    nested: f32s(nested),
                    map: f32s(&dynamic_map()),
                    offset: f64::from(*offset),
                }),
            ),
        };
        Self {
            packed: words(&weight.packed),
            absmax,
            double_quant,
            pairs: Tensor::from_data(TensorData::new(byte_pairs().concat(), [256, 2]), (device, DType::F32)),
            out_features: weight.shape[0],
            in_features: weight.shape[1],
            compute_dtype,
        }
    }

    /// Quantizes an HF `[out, in]` weight tensor (any float dtype; quantized from its f32 values).
    pub fn quantize(weight: Tensor<2>, double_quant: bool, compute_dtype: DType) -> Result<Self> {
        let [out, inp] = weight.dims();
        let device = weight.device();
        let values: Vec<f32> = weight
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| PeftError::Quantization(format!("reading a [{out}, {inp}] weight: {e:?}")))?;
        Ok(Self::new(&Nf4Weight::quantize(&values, [out, inp], double_quant), compute_dtype, &device))
    }

    fn blocks(&self) -> usize {
        (self.out_features * self.in_features).div_ceil(BLOCKSIZE)
    }

    /// The per-block f32 scales `[blocks]`.
    pub fn absmax_values(&self) -> Tensor<1> {
        match (&self.absmax, &self.double_quant) {
            (Some(absmax), _) => absmax.clone(),
            (None, Some(dq)) => {
                let blocks = self.blocks();
                let values = dq.map.clone().select(0, unpack_bytes(dq.codes.clone(), dq.count));
                let groups = blocks.div_ceil(NESTED_BLOCKSIZE);
                let padded = pad(values, groups * NESTED_BLOCKSIZE).reshape([groups, NESTED_BLOCKSIZE]);
                let scaled = padded * dq.nested.clone().reshape([groups, 1]);
                scaled.reshape([groups * NESTED_BLOCKSIZE]).narrow(0, 0, blocks).add_scalar(dq.offset)
            }
            (None, None) => Tensor::zeros([self.blocks()], (&self.packed.device(), DType::F32)),
        }
    }

    /// The dequantized weight in HF orientation `[out, in]`, f32: `NF4[code] · absmax[block]`. Each packed byte
    /// selects a row of the 256 × 2 table of code pairs (`pairs`), so one gather decodes two weights.
    ///
    /// On flex the bytes are decoded on the host instead, in parallel, straight into the output; on the CubeCL
    /// backend (wgpu, CUDA) a kernel decodes them ([`Nf4Linear::dequantize_fused`]). All paths give identical
    /// values.
    pub fn dequantize(&self) -> Tensor<2> {
        self.dequantize_fused().unwrap_or_else(|| self.dequantize_generic())
    }

    /// The tensor-op path of [`dequantize`](Self::dequantize), for every backend.
    pub fn dequantize_generic(&self) -> Tensor<2> {
        let n = self.out_features * self.in_features;
        let bytes = n.div_ceil(2);
        let values = self.pairs.clone().select(0, unpack_bytes(self.packed.clone(), bytes)).reshape([2 * bytes]);
        let blocks = self.blocks();
        let values = pad(values, blocks * BLOCKSIZE).narrow(0, 0, blocks * BLOCKSIZE).reshape([blocks, BLOCKSIZE]);
        let scaled = values * self.absmax_values().reshape([blocks, 1]);
        scaled.reshape([blocks * BLOCKSIZE]).narrow(0, 0, n).reshape([self.out_features, self.in_features])
    }

    /// The fused path of [`dequantize`](Self::dequantize): [`Nf4Backend::nf4_dequantize`] (flex: host decoding
    /// by byte-pair lookup, blocks in parallel; CubeCL: one kernel). `None` on other backends.
    pub fn dequantize_fused(&self) -> Option<Tensor<2>> {
        if !self.fused() {
            return None;
        }
        let weight = <Dispatch as Nf4Backend>::nf4_dequantize(
            self.packed.clone().into_dispatch(),
            self.absmax_values().into_dispatch(),
            [self.out_features, self.in_features],
        );
        Some(Tensor::from_dispatch(weight))
    }

    /// Whether the fused operations apply: a backend that implements them (flex; the CubeCL backend with the
    /// `wgpu` or `cuda` feature).
    fn fused(&self) -> bool {
        sft_model::has_extensions(&self.packed.device())
    }

    /// Bytes held by the quantized weight on the device (codes and scales; the shared 16- and 256-entry tables
    /// not counted).
    pub fn quantized_bytes(&self) -> usize {
        let packed = 4 * self.packed.dims()[0];
        match (&self.absmax, &self.double_quant) {
            (Some(a), _) => packed + 4 * a.dims()[0],
            (None, Some(dq)) => packed + 4 * dq.codes.dims()[0] + 4 * dq.nested.dims()[0] + 8,
            (None, None) => packed,
        }
    }
}

/// `bytes` four to an i32 word, little-endian, the last word zero-padded.
fn pack_words(bytes: &[u8]) -> Vec<i32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut word = [0u8; 4];
            word[..c.len()].copy_from_slice(c);
            i32::from_le_bytes(word)
        })
        .collect()
}

/// The first `count` bytes of little-endian i32 `words`, as I32 values 0..=255.
fn unpack_bytes(words: Tensor<1, Int>, count: usize) -> Tensor<1, Int> {
    let len = words.dims()[0];
    let bytes: Vec<Tensor<1, Int>> =
        (0..4).map(|k| words.clone().bitwise_right_shift_scalar(8 * k).bitwise_and_scalar(0xff)).collect();
    Tensor::stack::<2>(bytes, 1).reshape([4 * len]).narrow(0, 0, count)
}

/// `values` extended with zeros to `len` (unchanged when already that long or longer).
fn pad(values: Tensor<1>, len: usize) -> Tensor<1> {
    let have = values.dims()[0];
    if have >= len {
        return values;
    }
    let zeros = Tensor::zeros([len - have], (&values.device(), values.dtype()));
    Tensor::cat(vec![values, zeros], 0)
}

impl Nf4Linear {
    /// The generic forward: dequantize with tensor ops (kept as an autodiff constant until backward), multiply.
    pub fn forward_generic(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_in] = x.dims();
        let weight = self.dequantize_generic().cast(self.compute_dtype).transpose();
        let x = if x.dtype() == self.compute_dtype { x } else { x.cast(self.compute_dtype) };
        x.reshape([batch * seq, d_in]).matmul(weight).reshape([batch, seq, self.out_features])
    }

    /// The fused forward ([`Nf4Backend::nf4_matmul`]) on flex or CubeCL, in the compute dtype: the dense weight
    /// exists only during the matmul, and the backward dequantizes again instead of keeping it. `None` on other
    /// backends.
    pub fn forward_fused(&self, x: Tensor<3>) -> Option<Tensor<3>> {
        if !self.fused() {
            return None;
        }
        let [batch, seq, d_in] = x.dims();
        let x = if x.dtype() == self.compute_dtype { x } else { x.cast(self.compute_dtype) };
        let y = <Dispatch as Nf4Backend>::nf4_matmul(
            x.reshape([batch * seq, d_in]).into_dispatch(),
            self.packed.clone().into_dispatch(),
            self.absmax_values().into_dispatch(),
            [self.out_features, self.in_features],
        );
        Some(Tensor::<2>::from_dispatch(y).reshape([batch, seq, self.out_features]))
    }
}

impl Projection for Nf4Linear {
    /// [`forward_fused`](Nf4Linear::forward_fused) where it applies, else
    /// [`forward_generic`](Nf4Linear::forward_generic).
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self.forward_fused(x.clone()) {
            Some(y) => y,
            None => self.forward_generic(x),
        }
    }
}
