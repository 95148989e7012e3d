//! AdamW with PyTorch's arithmetic, global-norm gradient clipping, and a state that can be saved and restored
//! exactly (for resume).
//!
//! Burn's own optimizers key their state by `ParamId`, which a fresh process does not reproduce when it reloads an
//! adapter; this one keys each parameter's moments by its module path (`model.layers.0.self_attn.q_proj.adapter.
//! lora_a`), which is the same in every process that builds the same model.
//!
//! Over 400 lines because the moments, their save/restore and the clipping must agree on one parameter order and
//! one arithmetic; the tests against PyTorch's values sit beside them.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::DType;
use sft_model::{Checkpoint, TensorEntry, write_safetensors};

use crate::args::TrainingArguments;
use crate::error::{Result, TrainError};

/// First and second moments of one parameter, flattened, f32, on the inner (non-autodiff) device; for a parameter
/// stored in a lower precision (a bf16 `modules_to_save` copy under `bf16: true`), its f32 master copy too, so
/// updates smaller than the parameter's rounding step accumulate instead of vanishing.
#[derive(Debug, Clone)]
struct Moments {
    m: Tensor<1>,
    v: Tensor<1>,
    master: Option<Tensor<1>>,
}

/// PyTorch's `torch.optim.AdamW` (decoupled weight decay, bias correction, ε added to `√v̂`), applied to the
/// parameters of a module that have a gradient.
#[derive(Debug, Clone)]
pub struct AdamW {
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub epsilon: f64,
    /// Decoupled weight decay (multiplied by the learning rate).
    pub weight_decay: f64,
    /// Optimizer steps taken (the bias-correction exponent of the next step is `steps + 1`).
    pub steps: u64,
    moments: BTreeMap<String, Moments>,
}

impl AdamW {
    /// An optimizer with `adam_beta1`, `adam_beta2`, `adam_epsilon` and `weight_decay` of `args` and no state.
    pub fn new(args: &TrainingArguments) -> Self {
        Self {
            beta1: args.adam_beta1,
            beta2: args.adam_beta2,
            epsilon: args.adam_epsilon,
            weight_decay: args.weight_decay,
            steps: 0,
            moments: BTreeMap::new(),
        }
    }

    /// Applies one step with learning rate `lr` to every parameter of `module` that has a gradient in `grads`
    /// (each gradient multiplied by `grad_scale` first: the clipping coefficient). Parameters keep their
    /// `require_grad` flag.
    pub fn step<M: Module>(&mut self, module: M, grads: &GradientsParams, lr: f64, grad_scale: f64) -> M {
        let scale = (grad_scale != 1.0).then_some(Scale::Host(grad_scale));
        self.apply(module, grads, Update::Host { lr, scale })
    }

    /// [`step`](Self::step) with the gradient scale a `[1]` tensor on the gradients' device (the clipping
    /// coefficient computed there: no host round trip).
    pub fn step_scaled<M: Module>(&mut self, module: M, grads: &GradientsParams, lr: f64, grad_scale: Tensor<1>) -> M {
        self.apply(module, grads, Update::Host { lr, scale: Some(Scale::Device(grad_scale)) })
    }

    /// A step whose learning rate, bias-correction exponent and gradient multiplier are `[1]` tensors on the
    /// gradients' device, and which is skipped where `step.skip` is true: parameters, moments and master copies
    /// keep their values, as when PyTorch's `GradScaler` skips `optimizer.step()` after an overflow. fp16 training
    /// runs its steps this way, so whether a step happens is never read on the host. `steps` counts the call
    /// (attempted steps); the caller keeps the exponent `step.t` = steps taken, this one included.
    pub fn step_on_device<M: Module>(&mut self, module: M, grads: &GradientsParams, step: DeviceStep) -> M {
        self.apply(module, grads, Update::Device(step))
    }

    fn apply<M: Module>(&mut self, module: M, grads: &GradientsParams, update: Update) -> M {
        self.steps += 1;
        let mut mapper = StepMapper { optimizer: self, grads, update, path: Vec::new() };
        module.map(&mut mapper)
    }

    /// Number of parameters with optimizer state.
    pub fn len(&self) -> usize {
        self.moments.len()
    }

    /// Whether no parameter has state yet.
    pub fn is_empty(&self) -> bool {
        self.moments.is_empty()
    }

    /// Writes the moments to `path` (safetensors: `<module path>.exp_avg`, `.exp_avg_sq`, and `.master` for
    /// low-precision parameters, f32) with the step count and hyper-parameters in the metadata. Written to a
    /// temporary name and renamed.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut entries = Vec::new();
        for (name, moments) in &self.moments {
            let master = moments.master.iter().map(|t| ("master", t));
            for (suffix, tensor) in [("exp_avg", &moments.m), ("exp_avg_sq", &moments.v)].into_iter().chain(master) {
                let tensor = tensor.clone();
                entries.push(TensorEntry {
                    name: format!("{name}.{suffix}"),
                    dtype: DType::F32,
                    shape: tensor.dims().to_vec(),
                    data: Box::new(move || Ok(tensor.into_data())),
                });
            }
        }
        let metadata = BTreeMap::from([
            ("steps".to_owned(), self.steps.to_string()),
            ("beta1".to_owned(), self.beta1.to_string()),
            ("beta2".to_owned(), self.beta2.to_string()),
            ("epsilon".to_owned(), self.epsilon.to_string()),
            ("weight_decay".to_owned(), self.weight_decay.to_string()),
        ]);
        write_safetensors(path, entries, &metadata)?;
        Ok(())
    }

    /// Restores the moments and step count written by [`save`](Self::save) onto `device` (the inner device of the
    /// model), keeping this optimizer's hyper-parameters.
    pub fn load(&mut self, path: &Path, device: &Device) -> Result<()> {
        let bad = |message: String| TrainError::Checkpoint { path: path.into(), message };
        let mut checkpoint = Checkpoint::open(&[path.to_path_buf()])?;
        let steps = checkpoint
            .metadata()
            .get("steps")
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("no `steps` in the metadata".into()))?;
        let mut moments = BTreeMap::new();
        for name in checkpoint.names() {
            let Some(param) = name.strip_suffix(".exp_avg") else { continue };
            let shape = checkpoint.shape(&name).ok_or_else(|| bad(format!("`{name}` has no shape")))?;
            let [n] = shape[..] else { return Err(bad(format!("`{name}` is not 1-D"))) };
            let m = checkpoint.tensor::<1>(&name, [n], device, FloatDType::F32)?;
            let v = checkpoint.tensor::<1>(&format!("{param}.exp_avg_sq"), [n], device, FloatDType::F32)?;
            let master_name = format!("{param}.master");
            let master = if checkpoint.shape(&master_name).is_some() {
                Some(checkpoint.tensor::<1>(&master_name, [n], device, FloatDType::F32)?)
            } else {
                None
            };
            moments.insert(param.to_owned(), Moments { m, v, master });
        }
        self.steps = steps;
        self.moments = moments;
        Ok(())
    }
}

use burn::tensor::FloatDType;

/// The global L2 norm of the gradients in `grads` of `module`'s parameters (PyTorch's `clip_grad_norm_` total norm,
/// accumulated in f32 on the device, read once).
pub fn grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    grad_norm_squared(module, grads).map_or(0.0, |sq| f64::from(sq.into_scalar::<f32>()).sqrt())
}

/// The squared global L2 norm, `[1]` f32 on the gradients' device, not read; `None` without gradients.
pub fn grad_norm_squared<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    squared_norm(module, grads, None)
}

/// [`grad_norm_squared`] of the gradients multiplied by `multiplier` (`[1]`, f32, on the gradients' device; the
/// reciprocal of fp16's loss scale), each gradient multiplied in f32 before it is squared: PyTorch's
/// `GradScaler.unscale_` followed by the norm. Infinite or NaN when a gradient is.
pub fn grad_norm_squared_scaled<M: Module>(
    module: &M,
    grads: &GradientsParams,
    multiplier: Tensor<1>,
) -> Option<Tensor<1>> {
    squared_norm(module, grads, Some(multiplier))
}

fn squared_norm<M: Module>(module: &M, grads: &GradientsParams, multiplier: Option<Tensor<1>>) -> Option<Tensor<1>> {
    let mut visitor = SquaredNorms { grads, multiplier, sums: Vec::new() };
    module.visit(&mut visitor);
    (!visitor.sums.is_empty()).then(|| Tensor::cat(visitor.sums, 0).sum())
}

/// PyTorch's clipping coefficient: `min(1, max_norm / (norm + 1e-6))`; 1 when clipping is off (`max_norm` 0).
pub fn clip_coefficient(norm: f64, max_norm: f64) -> f64 {
    if max_norm <= 0.0 { 1.0 } else { (max_norm / (norm + 1e-6)).min(1.0) }
}

/// [`clip_coefficient`] on the device from the squared norm (`[1]`, f32, as `torch.nn.utils.clip_grad_norm_`
/// computes it without a host round trip); `None` when clipping is off.
pub fn device_clip_coefficient(norm_squared: Tensor<1>, max_norm: f64) -> Option<Tensor<1>> {
    (max_norm > 0.0).then(|| norm_squared.sqrt().add_scalar(1e-6).recip().mul_scalar(max_norm).clamp_max(1.0))
}

/// A gradient multiplier: a host number or a `[1]` device tensor (one per optimizer step: the size is no concern).
#[allow(clippy::large_enum_variant)]
enum Scale {
    Host(f64),
    Device(Tensor<1>),
}

/// The inputs of [`AdamW::step_on_device`]: `[1]` tensors on the gradients' (inner) device.
#[derive(Debug, Clone)]
pub struct DeviceStep {
    /// The learning rate, f32.
    pub lr: Tensor<1>,
    /// The bias-correction exponent (1 for the first step taken), f32.
    pub t: Tensor<1>,
    /// The gradients' multiplier (clipping coefficient ÷ loss scale), f32.
    pub grad_scale: Tensor<1>,
    /// Whether the step is skipped (the gradients overflowed).
    pub skip: Tensor<1, Bool>,
}

/// How a step gets its learning rate and gradient multiplier.
#[allow(clippy::large_enum_variant)]
enum Update {
    Host { lr: f64, scale: Option<Scale> },
    Device(DeviceStep),
}

struct SquaredNorms<'a> {
    grads: &'a GradientsParams,
    multiplier: Option<Tensor<1>>,
    sums: Vec<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorms<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let grad = grad.cast(DType::F32);
            let sum = match &self.multiplier {
                Some(multiplier) => {
                    let grad = grad.flatten::<1>(0, D - 1) * multiplier.clone();
                    (grad.clone() * grad).sum()
                }
                None => (grad.clone() * grad).sum(),
            };
            self.sums.push(sum);
        }
    }
}

struct StepMapper<'a> {
    optimizer: &'a mut AdamW,
    grads: &'a GradientsParams,
    update: Update,
    path: Vec<String>,
}

impl ModuleMapper for StepMapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let id: ParamId = param.id;
        let Some(grad) = self.grads.get::<D>(id) else { return param };
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let dims = tensor.dims();
        let n: usize = dims.iter().product();
        let strategy = tensor.gradient_checkpointing_strategy();
        let value = tensor.inner();
        let dtype = value.dtype();
        let opt = &mut *self.optimizer;
        let key = self.path.join(".");
        let state = opt.moments.remove(&key);
        let p = match state.as_ref().and_then(|s| s.master.clone()) {
            Some(master) => master,
            None => value.cast(DType::F32).reshape([n]),
        };
        let mut g = grad.cast(DType::F32).reshape([n]);
        match &self.update {
            Update::Host { scale: Some(Scale::Host(scale)), .. } => g = g.mul_scalar(*scale),
            Update::Host { scale: Some(Scale::Device(scale)), .. } => g = g * scale.clone(),
            Update::Host { scale: None, .. } => {}
            Update::Device(step) => g = g * step.grad_scale.clone(),
        }
        let device = p.device();
        let state = state.unwrap_or_else(|| Moments {
            m: Tensor::zeros([n], (&device, DType::F32)),
            v: Tensor::zeros([n], (&device, DType::F32)),
            master: None,
        });
        let (m_before, v_before) = (state.m.clone(), state.v.clone());
        let m = state.m.mul_scalar(opt.beta1) + g.clone().mul_scalar(1.0 - opt.beta1);
        let v = state.v.mul_scalar(opt.beta2) + (g.clone() * g).mul_scalar(1.0 - opt.beta2);
        // torch: p ← p·(1 − lr·wd); denom = √v / √bias2 + ε; p ← p − (lr / bias1) · m / denom.
        let (p, m, v) = match &self.update {
            Update::Host { lr, .. } => {
                let t = opt.steps as i32;
                let bias1 = 1.0 - opt.beta1.powi(t);
                let bias2 = 1.0 - opt.beta2.powi(t);
                let p = if opt.weight_decay != 0.0 { p.mul_scalar(1.0 - lr * opt.weight_decay) } else { p };
                let denom = v.clone().sqrt().div_scalar(bias2.sqrt()).add_scalar(opt.epsilon);
                (p - (m.clone() / denom).mul_scalar(lr / bias1), m, v)
            }
            Update::Device(step) => {
                // 1 − β^t = 1 − exp(t·ln β), in f32 on the device.
                let bias = |beta: f64| step.t.clone().mul_scalar(beta.ln()).exp().neg().add_scalar(1.0);
                let p_before = p.clone();
                let p = if opt.weight_decay != 0.0 {
                    p * step.lr.clone().mul_scalar(-opt.weight_decay).add_scalar(1.0)
                } else {
                    p
                };
                let denom = v.clone().sqrt() / bias(opt.beta2).sqrt();
                let p = p - m.clone() / denom.add_scalar(opt.epsilon) * (step.lr.clone() / bias(opt.beta1));
                let skip = step.skip.clone().expand([n]);
                (
                    p.mask_where(skip.clone(), p_before),
                    m.mask_where(skip.clone(), m_before),
                    v.mask_where(skip, v_before),
                )
            }
        };
        let master = (dtype != DType::F32).then(|| p.clone());
        opt.moments.insert(key, Moments { m, v, master });
        let updated = p.reshape(dims).cast(dtype);
        let updated = crate::trainer::reenter_autodiff(updated, strategy);
        let updated = if require_grad { updated.require_grad() } else { updated };
        Param::from_mapped_value(id, updated, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Module, Debug)]
    struct One {
        w: Param<Tensor<1>>,
    }

    /// Steps of `lr` (AdamW with a constant gradient moves by ≈ lr per step) on a parameter stored as `dtype`.
    fn train(dtype: FloatDType, steps: usize, lr: f64) -> (f32, AdamW) {
        let device = Device::flex().autodiff();
        let w = Tensor::<1>::ones([4], &device).cast(dtype).require_grad();
        let mut module = One { w: Param::from_tensor(w) };
        let args = TrainingArguments { weight_decay: 0.0, ..Default::default() };
        let mut optimizer = AdamW::new(&args);
        for _ in 0..steps {
            let loss = module.w.val().cast(DType::F32).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &module);
            module = optimizer.step(module, &grads, lr, 1.0);
        }
        assert_eq!(module.w.val().dtype(), DType::from(dtype), "the parameter keeps its dtype");
        let value: Vec<f32> = module.w.val().cast(DType::F32).into_data().try_to_vec().unwrap_or_default();
        (value[0], optimizer)
    }

    #[test]
    fn low_precision_parameters_train_through_an_f32_master_copy() {
        // 100 steps of 1e-4 from 1.0: each is far below bf16's half-step at 1.0 (2^-9), the sum is not.
        let (f32_value, f32_optimizer) = train(FloatDType::F32, 100, 1e-4);
        assert!((f32_value - 0.99).abs() < 1e-4, "{f32_value}");
        assert!(f32_optimizer.moments.values().all(|m| m.master.is_none()), "no copy of f32 parameters");
        let (bf16_value, optimizer) = train(FloatDType::BF16, 100, 1e-4);
        let master: Vec<f32> =
            optimizer.moments.values().next().and_then(|m| m.master.clone()).unwrap().into_data().try_to_vec().unwrap();
        assert!((master[0] - f32_value).abs() < 1e-6, "master {} vs f32 {f32_value}", master[0]);
        // The stored bf16 value is the master rounded: 0.99 lies between the bf16 neighbours 0.98828125 and
        // 0.9921875 (without the master, every step would round back to 1.0).
        assert_eq!(bf16_value, 0.98828125);
    }

    fn values(tensor: Tensor<1>) -> Vec<f32> {
        tensor.cast(DType::F32).into_data().try_to_vec().unwrap_or_default()
    }

    #[test]
    fn device_steps_match_host_steps_and_skipped_steps_change_nothing() {
        let device = Device::flex().autodiff();
        let start = [1.0f32, -2.0, 0.5, 3.0];
        let make = || One { w: Param::from_tensor(Tensor::<1>::from_floats(start, &device).require_grad()) };
        // ∂/∂w of k·Σw² = 2k·w: infinite for k = ∞ (an fp16 overflow).
        let grads_of =
            |m: &One, k: f64| GradientsParams::from_grads((m.w.val() * m.w.val()).sum().mul_scalar(k).backward(), m);
        let args = TrainingArguments { weight_decay: 0.01, ..Default::default() };
        let inner = Device::flex();
        let scalar = |v: f64| Tensor::<1>::full([1], v, (&inner, DType::F32));
        let step = |t: f64, skip: bool| DeviceStep {
            lr: scalar(1e-2),
            t: scalar(t),
            grad_scale: scalar(0.5),
            skip: Tensor::from_data(TensorData::new(vec![skip], [1]), &inner),
        };

        let (mut host, mut a) = (AdamW::new(&args), make());
        for _ in 0..3 {
            let grads = grads_of(&a, 1.0);
            a = host.step(a, &grads, 1e-2, 0.5);
        }
        let (mut on_device, mut b) = (AdamW::new(&args), make());
        let grads = grads_of(&b, f64::INFINITY);
        b = on_device.step_on_device(b, &grads, step(1.0, true));
        assert_eq!(values(b.w.val()), start, "a skipped step leaves the parameter as it was");
        let moments = on_device.moments.values().next().unwrap().clone();
        assert!(values(moments.m).iter().chain(&values(moments.v)).all(|&x| x == 0.0), "and the moments at zero");
        for t in 1..=3 {
            let grads = grads_of(&b, 1.0);
            b = on_device.step_on_device(b, &grads, step(f64::from(t), false));
        }
        assert_eq!(on_device.steps, 4, "steps counts attempts");
        let (expected, got) = (values(a.w.val()), values(b.w.val()));
        for (e, g) in expected.iter().zip(&got) {
            // The device path computes the bias corrections in f32, the host path in f64.
            assert!((e - g).abs() <= 1e-6 * e.abs().max(1.0), "{expected:?} vs {got:?}");
        }
        assert_ne!(got, start, "the steps after the skipped one moved it");
        let (hm, dm) = (host.moments.values().next().unwrap(), on_device.moments.values().next().unwrap());
        assert_eq!(values(hm.m.clone()), values(dm.m.clone()));
        assert_eq!(values(hm.v.clone()), values(dm.v.clone()));
    }

    #[test]
    fn master_copies_survive_save_and_load() {
        let (_, optimizer) = train(FloatDType::BF16, 3, 1e-2);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("optimizer.safetensors");
        optimizer.save(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut loaded = AdamW::new(&TrainingArguments::default());
        loaded.load(&path, &Device::flex()).unwrap_or_else(|e| panic!("{e}"));
        let values = |o: &AdamW| -> Vec<Vec<f32>> {
            o.moments
                .values()
                .flat_map(|m| [Some(m.m.clone()), Some(m.v.clone()), m.master.clone()])
                .flatten()
                .map(|t| t.into_data().try_to_vec().unwrap_or_default())
                .collect()
        };
        assert_eq!(values(&loaded), values(&optimizer));
        assert_eq!(values(&loaded).len(), 3, "m, v and the master copy");
    }
}
