//! `LoraLinear`: a frozen base projection plus an optional low-rank adapter, computed factored.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;
use sft_model::Projection;
use sft_model::fused::{LowRank, fits_low_rank_linear, low_rank_linear_3d};
use sft_rand::SplitMix64;

use crate::config::{InitLoraWeights, LoraConfig};
use crate::nf4::Nf4Linear;

/// The trainable part of a LoRA layer: `scaling · B(A(dropout(x)))`.
///
/// The factors are stored in Burn's `x @ W` orientation, `lora_a` `[in, r]` and `lora_b` `[r, out]`: the
/// transposes of PEFT's `lora_A.weight` `[r, in]` and `lora_B.weight` `[out, r]` (the file layout, see
/// [`crate::save_adapter`]). They are kept in f32 whatever the base's dtype, as PEFT does by default
/// (`autocast_adapter_dtype`).
#[derive(Module, Debug)]
pub struct LoraAdapter {
    /// `A` `[in, r]`.
    pub lora_a: Param<Tensor<2>>,
    /// `B` `[r, out]`.
    pub lora_b: Param<Tensor<2>>,
    /// `lora_alpha / r` (or `/ √r` with `use_rslora`).
    pub scaling: f64,
    /// `lora_dropout`: the probability of zeroing an input element, active only while training on an autodiff
    /// device ([`crate::seed_dropout`] seeds it).
    pub dropout: f64,
}

impl LoraAdapter {
    /// A fresh adapter for an `[in, out]` projection, initialised as `config.init_lora_weights` says from
    /// `random`:
    /// - `true`: A Kaiming-uniform with a = √5 over fan-in `in` (PEFT's and `nn.Linear`'s default), i.e.
    ///   U(−1/√in, 1/√in); B = 0, so the adapter starts as the identity;
    /// - `"gaussian"`: A ~ N(0, 1/r²) (std 1/r), B = 0;
    /// - `false`: A as for `true` and B Kaiming-uniform over fan-in `r` (a non-identity adapter, for tests).
    pub fn init(d_in: usize, d_out: usize, config: &LoraConfig, random: &mut SplitMix64, device: &Device) -> Self {
        let r = config.r;
        // PEFT draws A as `[r, in]`; drawing in that order and transposing keeps the stream meaning the same.
        let kaiming = |random: &mut SplitMix64, fan_in: usize, n: usize| {
            let bound = 1.0 / (fan_in as f64).sqrt();
            random.uniforms(n, -bound, bound)
        };
        let a = match &config.init_lora_weights {
            InitLoraWeights::Named(_) => random.normals(r * d_in, 1.0 / r as f64),
            InitLoraWeights::Bool(_) => kaiming(random, d_in, r * d_in),
        };
        let b = match &config.init_lora_weights {
            InitLoraWeights::Bool(false) => kaiming(random, r, d_out * r),
            _ => vec![0.0; d_out * r],
        };
        Self::from_peft(&a, &b, [r, d_in, d_out], config.scaling(), config.lora_dropout, device)
    }

    /// An adapter from PEFT-layout factors given row-major: `lora_A` `[r, in]` and `lora_B` `[out, r]`, stored
    /// transposed (contiguous) in f32 on `device`.
    pub fn from_peft(
        a: &[f32],
        b: &[f32],
        [r, d_in, d_out]: [usize; 3],
        scaling: f64,
        dropout: f64,
        device: &Device,
    ) -> Self {
        let a = TensorData::new(transpose(a, r, d_in), [d_in, r]);
        let b = TensorData::new(transpose(b, d_out, r), [r, d_out]);
        Self {
            lora_a: Param::from_tensor(Tensor::from_data(a, (device, DType::F32))),
            lora_b: Param::from_tensor(Tensor::from_data(b, (device, DType::F32))),
            scaling,
            dropout,
        }
    }

    /// Rank `r`.
    pub fn rank(&self) -> usize {
        self.lora_a.dims()[1]
    }

    /// `scaling · B(A(dropout(x)))` for `x` `[batch, seq, in]`, in f32 (`x` is cast to the adapter's dtype
    /// first), `[batch, seq, out]`. The tokens are flattened to one `[batch·seq, in]` matrix (two plain matmuls, no
    /// batch broadcasting, and the factor gradients need no reduction over the batch), and the rank-`r`
    /// intermediate is scaled, the cheaper place for it.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let a = self.lora_a.val();
        let x = if x.dtype() == a.dtype() { x } else { x.cast(a.dtype()) };
        let [batch, seq, d_in] = x.dims();
        let x = crate::dropout::dropout(x, self.dropout).reshape([batch * seq, d_in]);
        let h = x.matmul(a).mul_scalar(self.scaling);
        let y = h.matmul(self.lora_b.val());
        let d_out = y.dims()[1];
        y.reshape([batch, seq, d_out])
    }

    /// The dense update `scaling · A·B` `[in, out]` (what merging adds to the base weight).
    pub fn delta_weight(&self) -> Tensor<2> {
        self.lora_a.val().matmul(self.lora_b.val()).mul_scalar(self.scaling)
    }
}

/// The transpose of a row-major `[rows, cols]` matrix.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = values[i * cols + j];
        }
    }
    out
}

/// The frozen weight under an adapter: dense, or NF4-quantized (QLoRA).
// Seven of these per layer: the few hundred bytes of handles in the larger variant do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum BaseLinear {
    /// A dense `Linear` (`[in, out]` weight, any float dtype).
    Dense(Linear),
    /// An NF4 weight dequantized for each matmul.
    Nf4(Nf4Linear),
}

impl BaseLinear {
    /// `[in, out]`.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Self::Dense(l) => l.weight.dims(),
            Self::Nf4(q) => [q.in_features, q.out_features],
        }
    }

    /// The device holding the weight.
    pub fn device(&self) -> Device {
        match self {
            Self::Dense(l) => l.weight.device(),
            Self::Nf4(q) => q.packed.device(),
        }
    }

    /// The weight as a dense `Linear`: itself, or the NF4 weight dequantized to f32 (never re-quantized).
    pub fn into_dense(self) -> Linear {
        match self {
            Self::Dense(l) => l,
            Self::Nf4(q) => {
                Linear { weight: Param::from_tensor(q.dequantize().transpose()).set_require_grad(false), bias: None }
            }
        }
    }
}

impl Projection for BaseLinear {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            Self::Dense(l) => l.forward(x),
            Self::Nf4(q) => Projection::forward(q, x),
        }
    }
}

impl From<Linear> for BaseLinear {
    fn from(linear: Linear) -> Self {
        Self::Dense(linear)
    }
}

impl From<Nf4Linear> for BaseLinear {
    fn from(linear: Nf4Linear) -> Self {
        Self::Nf4(linear)
    }
}

/// A decoder projection of a LoRA model: the frozen `base`, and an `adapter` when `target_modules` selected it.
/// Output: `base(x) + scaling · B(A(dropout(x)))`, never materialising `W + scaling·A·B` while training. After
/// [`merge`](Self::merge) the update lives in the base weight and the adapter is skipped until
/// [`unmerge`](Self::unmerge).
#[derive(Module, Debug)]
pub struct LoraLinear {
    /// The base projection (frozen when injected), dense or NF4.
    pub base: BaseLinear,
    /// The adapter, if this projection is a target.
    pub adapter: Option<LoraAdapter>,
    /// Whether the adapter's update has been added to `base`.
    pub merged: bool,
}

impl LoraLinear {
    /// A projection without an adapter.
    pub fn plain(base: impl Into<BaseLinear>) -> Self {
        Self { base: base.into(), adapter: None, merged: false }
    }

    /// Adds the adapter's update to the base weight (in the base's dtype); a no-op without an adapter or when
    /// already merged. An NF4 base is dequantized to a dense f32 weight first and stays dense: merging never
    /// re-quantizes (that would lose the adapter's precision, as PEFT users find).
    pub fn merge(self) -> Self {
        self.fold(true)
    }

    /// Subtracts the update added by [`merge`](Self::merge) (exact up to rounding).
    pub fn unmerge(self) -> Self {
        self.fold(false)
    }

    /// Adds (`merge`) or subtracts the adapter's update, when the layer is not already in that state.
    fn fold(self, merge: bool) -> Self {
        let Some(adapter) = self.adapter.as_ref().filter(|_| self.merged != merge) else { return self };
        let delta = adapter.delta_weight();
        let dense = self.base.into_dense();
        let base = dense.weight.val();
        let delta = delta.cast(base.dtype());
        let weight = if merge { base + delta } else { base - delta }.detach();
        Self { base: BaseLinear::Dense(frozen(dense, weight)), merged: merge, ..self }
    }

    /// The plain projection with the update folded in (PEFT's `merge_and_unload` for one layer).
    pub fn merge_and_unload(self) -> Linear {
        self.merge().base.into_dense()
    }
}

/// `linear` with its weight replaced by `weight`, same parameter id, no gradient.
fn frozen(linear: Linear, weight: Tensor<2>) -> Linear {
    Linear { weight: linear.weight.map(|_| weight).set_require_grad(false), bias: linear.bias }
}

impl Projection for LoraLinear {
    /// A dense f32 base on flex with an f32 adapter (or none) runs as one fused operation
    /// ([`sft_model::fused::low_rank_linear`]: the same function, dropout mask included); anything else as
    /// `base(x) + adapter(x)` in tensor operations.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if let BaseLinear::Dense(linear) = &self.base
            && linear.bias.is_none()
        {
            let w = linear.weight.val();
            let adapter = self.adapter.as_ref().filter(|_| !self.merged);
            if fits_low_rank_linear(&x, &w) && adapter.is_none_or(|a| a.lora_a.val().dtype() == DType::F32) {
                let [batch, seq, d_in] = x.dims();
                let update = adapter.map(|a| LowRank {
                    a: a.lora_a.val(),
                    b: a.lora_b.val(),
                    mask: crate::dropout::mask([batch * seq, d_in], a.dropout, &x.device()),
                    scaling: a.scaling,
                });
                return low_rank_linear_3d(x, w, update);
            }
        }
        match (&self.adapter, self.merged) {
            (Some(adapter), false) => {
                let y = self.base.forward(x.clone());
                let dtype = y.dtype();
                let delta = adapter.forward(x);
                y + if delta.dtype() == dtype { delta } else { delta.cast(dtype) }
            }
            _ => self.base.forward(x),
        }
    }
}
