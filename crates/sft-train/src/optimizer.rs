//! AdamW with PyTorch's arithmetic, global-norm gradient clipping, and a state that can be saved and restored
//! exactly (for resume).
//!
//! Burn's own optimizers key their state by `ParamId`, which a fresh process does not reproduce when it reloads an
//! adapter; this one keys each parameter's moments by its module path (`model.layers.0.self_attn.q_proj.adapter.
//! lora_a`), which is the same in every process that builds the same model.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::DType;
use sft_model::{Checkpoint, TensorEntry, write_safetensors};

use crate::args::TrainingArguments;
use crate::error::{Result, TrainError};

/// First and second moments of one parameter, flattened, f32, on the inner (non-autodiff) device.
#[derive(Debug, Clone)]
struct Moments {
    m: Tensor<1>,
    v: Tensor<1>,
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
        self.steps += 1;
        let mut mapper = StepMapper { optimizer: self, grads, lr, grad_scale, path: Vec::new() };
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

    /// Writes the moments to `path` (safetensors: `<module path>.exp_avg`, `.exp_avg_sq`, f32) with the step count
    /// and hyper-parameters in the metadata. Written to a temporary name and renamed.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut entries = Vec::new();
        for (name, moments) in &self.moments {
            for (suffix, tensor) in [("exp_avg", &moments.m), ("exp_avg_sq", &moments.v)] {
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
            moments.insert(param.to_owned(), Moments { m, v });
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
    let mut visitor = SquaredNorms { grads, sums: Vec::new() };
    module.visit(&mut visitor);
    if visitor.sums.is_empty() {
        return 0.0;
    }
    let total = Tensor::cat(visitor.sums, 0).sum().into_scalar::<f32>();
    f64::from(total).sqrt()
}

/// PyTorch's clipping coefficient: `min(1, max_norm / (norm + 1e-6))`; 1 when clipping is off (`max_norm` 0).
pub fn clip_coefficient(norm: f64, max_norm: f64) -> f64 {
    if max_norm <= 0.0 { 1.0 } else { (max_norm / (norm + 1e-6)).min(1.0) }
}

struct SquaredNorms<'a> {
    grads: &'a GradientsParams,
    sums: Vec<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorms<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let grad = grad.cast(DType::F32);
            self.sums.push((grad.clone() * grad).sum());
        }
    }
}

struct StepMapper<'a> {
    optimizer: &'a mut AdamW,
    grads: &'a GradientsParams,
    lr: f64,
    grad_scale: f64,
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
        let value = tensor.inner();
        let dtype = value.dtype();
        let p = value.cast(DType::F32).reshape([n]);
        let mut g = grad.cast(DType::F32).reshape([n]);
        if self.grad_scale != 1.0 {
            g = g.mul_scalar(self.grad_scale);
        }
        let opt = &mut *self.optimizer;
        let key = self.path.join(".");
        let device = p.device();
        let state = opt.moments.remove(&key).unwrap_or_else(|| Moments {
            m: Tensor::zeros([n], (&device, DType::F32)),
            v: Tensor::zeros([n], (&device, DType::F32)),
        });
        let m = state.m.mul_scalar(opt.beta1) + g.clone().mul_scalar(1.0 - opt.beta1);
        let v = state.v.mul_scalar(opt.beta2) + (g.clone() * g).mul_scalar(1.0 - opt.beta2);
        let t = opt.steps as i32;
        let bias1 = 1.0 - opt.beta1.powi(t);
        let bias2 = 1.0 - opt.beta2.powi(t);
        // torch: p ← p·(1 − lr·wd); denom = √v / √bias2 + ε; p ← p − (lr / bias1) · m / denom.
        let p = if opt.weight_decay != 0.0 { p.mul_scalar(1.0 - self.lr * opt.weight_decay) } else { p };
        let denom = v.clone().sqrt().div_scalar(bias2.sqrt()).add_scalar(opt.epsilon);
        let p = p - (m.clone() / denom).mul_scalar(self.lr / bias1);
        opt.moments.insert(key, Moments { m, v });
        let updated = p.reshape(dims).cast(dtype);
        let updated = if require_grad { updated.autodiff().require_grad() } else { updated.autodiff() };
        Param::from_mapped_value(id, updated, mapper)
    }
}
