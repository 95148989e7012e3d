//! Dynamic loss scaling for fp16 training: PyTorch's `torch.amp.GradScaler` (what transformers' `Trainer` uses with
//! `fp16: true`), with its state on the device so that a training step never waits for the host.
//!
//! fp16 has 5 exponent bits: a gradient below 2⁻²⁴ ≈ 6e-8 flushes to zero. The loss gradient is therefore multiplied
//! by the scale (2¹⁶ at first) before it enters the fp16 graph, and the parameters' gradients are divided by it
//! before clipping and the optimizer step. A step whose gradients overflowed (an infinite or NaN gradient norm) is
//! skipped and the scale halved; after `growth_interval` steps without overflow the scale doubles.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use sft_model::{Checkpoint, TensorEntry, write_safetensors};

use crate::error::{Result, TrainError};
use crate::optimizer::DeviceStep;
use crate::schedule::LrSchedule;

/// The scaler's file in a checkpoint (transformers writes `scaler.pt`).
pub const SCALER_FILE: &str = "scaler.safetensors";

/// The constants of a [`GradScaler`]; the defaults are PyTorch's (`GradScaler()`), which transformers uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradScalerConfig {
    /// The scale of the first step (PyTorch: 2¹⁶).
    pub init_scale: f64,
    /// The scale's multiplier after `growth_interval` consecutive steps without overflow (PyTorch: 2).
    pub growth_factor: f64,
    /// The scale's multiplier after a step with overflow (PyTorch: 0.5).
    pub backoff_factor: f64,
    /// Consecutive steps without overflow before the scale grows (PyTorch: 2000).
    pub growth_interval: u64,
}

impl Default for GradScalerConfig {
    fn default() -> Self {
        Self { init_scale: 65536.0, growth_factor: 2.0, backoff_factor: 0.5, growth_interval: 2000 }
    }
}

/// The loss scale and the count of consecutive steps without overflow, each a `[1]` f32 tensor on the optimizer's
/// (inner, non-autodiff) device. Nothing here reads the device.
#[derive(Debug, Clone)]
pub struct GradScaler {
    /// The constants.
    pub config: GradScalerConfig,
    scale: Tensor<1>,
    growth_tracker: Tensor<1>,
}

impl GradScaler {
    /// A scaler at `config.init_scale` on `device`.
    pub fn new(config: GradScalerConfig, device: &Device) -> Self {
        Self {
            config,
            scale: Tensor::full([1], config.init_scale, (device, DType::F32)),
            growth_tracker: Tensor::zeros([1], (device, DType::F32)),
        }
    }

    /// The current scale, `[1]` f32 on the device.
    pub fn scale(&self) -> Tensor<1> {
        self.scale.clone()
    }

    /// Updates the scale after a step, as `torch._amp_update_scale_` does: on overflow (`found_inf`, `[1]`) the
    /// scale is multiplied by `backoff_factor` and the tracker reset; otherwise the tracker counts the step, and
    /// when it reaches `growth_interval` the scale is multiplied by `growth_factor` (unless that is not finite in
    /// f32) and the tracker reset.
    pub fn update(&mut self, found_inf: Tensor<1, Bool>) {
        let c = self.config;
        let inf = found_inf.float().cast(DType::F32);
        let ok = inf.clone().neg().add_scalar(1.0);
        let successful = self.growth_tracker.clone().add_scalar(1.0);
        let grow =
            successful.clone().greater_equal_elem(c.growth_interval as f64).float().cast(DType::F32) * ok.clone();
        // factor = backoff on overflow, growth when the interval is complete, else 1 (all operands are 0 or 1).
        let factor = inf.clone().mul_scalar(c.backoff_factor)
            + grow.clone().mul_scalar(c.growth_factor)
            + (ok.clone() - grow.clone());
        let candidate = self.scale.clone() * factor;
        let overflowed = candidate.clone().is_finite().bool_not();
        self.scale = candidate.mask_where(overflowed, self.scale.clone());
        self.growth_tracker = successful * ok * grow.neg().add_scalar(1.0);
    }

    /// Reads the scale and the tracker (one transfer), for logs and tests.
    pub fn read(&self) -> Result<(f64, u64)> {
        let values: Vec<f32> = Tensor::cat(vec![self.scale.clone(), self.growth_tracker.clone()], 0)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|source| TrainError::DeviceRead { what: "the loss scale", source })?;
        Ok((f64::from(values[0]), values[1] as u64))
    }

    /// Writes `scale` and `growth_tracker` (f32 `[1]` each) to `path`, the constants in the metadata; written to a
    /// temporary name and renamed.
    pub fn save(&self, path: &Path) -> Result<()> {
        let entries = [("scale", &self.scale), ("growth_tracker", &self.growth_tracker)]
            .into_iter()
            .map(|(name, tensor)| {
                let tensor = tensor.clone();
                TensorEntry {
                    name: name.to_owned(),
                    dtype: DType::F32,
                    shape: vec![1],
                    data: Box::new(move || Ok(tensor.into_data())),
                }
            })
            .collect();
        let c = self.config;
        let metadata = BTreeMap::from([
            ("init_scale".to_owned(), c.init_scale.to_string()),
            ("growth_factor".to_owned(), c.growth_factor.to_string()),
            ("backoff_factor".to_owned(), c.backoff_factor.to_string()),
            ("growth_interval".to_owned(), c.growth_interval.to_string()),
        ]);
        write_safetensors(path, entries, &metadata)?;
        Ok(())
    }

    /// Restores the scale and the tracker written by [`save`](Self::save) onto `device`, keeping this scaler's
    /// constants.
    pub fn load(&mut self, path: &Path, device: &Device) -> Result<()> {
        let mut checkpoint = Checkpoint::open(&[path.to_path_buf()])?;
        for name in ["scale", "growth_tracker"] {
            if checkpoint.shape(name).as_deref() != Some(&[1][..]) {
                return Err(TrainError::Checkpoint { path: path.into(), message: format!("no `{name}` of shape [1]") });
            }
        }
        self.scale = checkpoint.tensor::<1>("scale", [1], device, FloatDType::F32)?;
        self.growth_tracker = checkpoint.tensor::<1>("growth_tracker", [1], device, FloatDType::F32)?;
        Ok(())
    }
}

/// What fp16 training keeps on the device from step to step: the scaler, the learning rate of every schedule
/// step, and the count of skipped steps. The schedule and AdamW's bias correction advance only on steps taken, as
/// transformers' `Trainer` steps its scheduler only when the optimizer stepped; the `global_step` counts every step.
#[derive(Debug)]
pub(crate) struct LossScaledSteps {
    pub(crate) scaler: GradScaler,
    lrs: Tensor<1>,
    skipped: Tensor<1>,
}

impl LossScaledSteps {
    /// For a run of `schedule` with `skipped` steps already skipped (a resumed run), on the optimizer's `device`.
    pub(crate) fn new(scaler: GradScaler, schedule: &LrSchedule, skipped: u64, device: &Device) -> Self {
        let lrs: Vec<f32> = (0..schedule.total_steps.max(1)).map(|k| schedule.lr(k) as f32).collect();
        let n = lrs.len();
        Self {
            scaler,
            lrs: Tensor::from_data(TensorData::new(lrs, [n]), (device, DType::F32)),
            skipped: Tensor::full([1], skipped as f64, (device, DType::F32)),
        }
    }

    /// The device inputs of 0-based global step `step`, the optimizer's `attempted`-th step (1-based): the
    /// learning rate of schedule step `step − skipped`, the bias-correction exponent `attempted − skipped`, the
    /// gradients' multiplier and the overflow flag.
    pub(crate) fn device_step(
        &self,
        step: u64,
        attempted: u64,
        grad_scale: Tensor<1>,
        found_inf: Tensor<1, Bool>,
    ) -> DeviceStep {
        let device = self.skipped.device();
        let at = |value: u64| Tensor::<1>::full([1], value as f64, (&device, DType::F32)) - self.skipped.clone();
        let last = (self.lrs.dims()[0] - 1) as f64;
        let lr = self.lrs.clone().select(0, at(step).clamp(0.0, last).int());
        DeviceStep { lr, t: at(attempted), grad_scale, skip: found_inf }
    }

    /// Counts the step as skipped where `found_inf`, and updates the scale.
    pub(crate) fn update(&mut self, found_inf: Tensor<1, Bool>) {
        self.skipped = self.skipped.clone() + found_inf.clone().float().cast(DType::F32);
        self.scaler.update(found_inf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(value: bool) -> Tensor<1, Bool> {
        Tensor::from_data(TensorData::new(vec![value], [1]), &Device::flex())
    }

    #[test]
    fn overflow_halves_the_scale_and_growth_doubles_it_after_the_interval() {
        let config = GradScalerConfig { growth_interval: 3, ..Default::default() };
        let mut scaler = GradScaler::new(config, &Device::flex());
        assert_eq!(scaler.read().unwrap(), (65536.0, 0));
        scaler.update(flag(true));
        assert_eq!(scaler.read().unwrap(), (32768.0, 0), "backoff 0.5, tracker reset");
        scaler.update(flag(false));
        scaler.update(flag(false));
        assert_eq!(scaler.read().unwrap(), (32768.0, 2));
        scaler.update(flag(false));
        assert_eq!(scaler.read().unwrap(), (65536.0, 0), "the third clean step in a row doubles the scale");
        scaler.update(flag(false));
        scaler.update(flag(true));
        assert_eq!(scaler.read().unwrap(), (32768.0, 0), "an overflow resets the count");
    }

    #[test]
    fn the_scale_never_grows_to_infinity() {
        let config = GradScalerConfig { init_scale: 2f64.powi(127), growth_interval: 1, ..Default::default() };
        let mut scaler = GradScaler::new(config, &Device::flex());
        scaler.update(flag(false));
        // 2^128 is not an f32: PyTorch keeps the old scale (and resets the tracker).
        assert_eq!(scaler.read().unwrap(), (2f64.powi(127), 0));
    }

    #[test]
    fn save_and_load_restore_the_scale_and_tracker() {
        let mut scaler = GradScaler::new(GradScalerConfig::default(), &Device::flex());
        scaler.update(flag(true));
        scaler.update(flag(false));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(SCALER_FILE);
        scaler.save(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut loaded = GradScaler::new(GradScalerConfig::default(), &Device::flex());
        loaded.load(&path, &Device::flex()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.read().unwrap(), (32768.0, 1));
    }
}
