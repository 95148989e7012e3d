//! The trainable parameters of a model as one flat f32 buffer (their values, or their gradients), in module order:
//! what goes through an all-reduce or a broadcast.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::DType;

use crate::error::{Result, TrainError};

/// The trainable parameters of a model, in module order: their ids and shapes.
#[derive(Debug, Clone)]
pub(crate) struct Trainable {
    params: Vec<(ParamId, Vec<usize>)>,
}

/// The parameters of `module` that require a gradient.
pub(crate) fn trainable<M: Module>(module: &M) -> Trainable {
    struct Collect(Vec<(ParamId, Vec<usize>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            if value.is_require_grad() {
                self.0.push((param.id, value.dims().to_vec()));
            }
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    Trainable { params: collect.0 }
}

impl Trainable {
    /// Values in all parameters together.
    pub(crate) fn len(&self) -> usize {
        self.params.iter().map(|(_, shape)| shape.iter().product::<usize>()).sum()
    }

    /// The gradients of every trainable parameter as one flat f32 buffer on the host (zeros where `grads` has none:
    /// a rank without a micro-batch), followed by the values of `tail` (f32 tensors on `device`), read in one
    /// transfer.
    pub(crate) fn grads_to_host(
        &self,
        grads: &GradientsParams,
        device: &Device,
        tail: Vec<Tensor<1>>,
    ) -> Result<Vec<f32>> {
        let parts: Vec<Tensor<1>> = self
            .params
            .iter()
            .map(|(id, shape)| {
                let n = shape.iter().product::<usize>();
                match gradient(grads, *id, shape.len()) {
                    Some(g) => g.cast(DType::F32).reshape([n]),
                    None => Tensor::zeros([n], (device, DType::F32)),
                }
            })
            .chain(tail.into_iter().map(|t| t.cast(DType::F32)))
            .collect();
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        Tensor::cat(parts, 0)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|source| TrainError::DeviceRead { what: "the gradients", source })
    }

    /// Gradients for every trainable parameter from a flat buffer like [`grads_to_host`](Self::grads_to_host)'s,
    /// f32, on `device`.
    pub(crate) fn host_to_grads(&self, values: &[f32], device: &Device) -> GradientsParams {
        let mut grads = GradientsParams::new();
        let all = Tensor::<1>::from_data(TensorData::new(values.to_vec(), [values.len()]), (device, DType::F32));
        let mut at = 0;
        for (id, shape) in &self.params {
            let n = shape.iter().product::<usize>();
            let flat = all.clone().slice(at..at + n);
            at += n;
            register(&mut grads, *id, flat, shape);
        }
        grads
    }

    /// The values of every trainable parameter of `module` as one flat f32 buffer on the host.
    pub(crate) fn params_to_host<M: Module>(&self, module: &M) -> Result<Vec<f32>> {
        struct Values<'a>(&'a Trainable, Vec<Tensor<1>>);
        impl ModuleVisitor for Values<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if self.0.params.iter().any(|(id, _)| *id == param.id) {
                    let value = param.val().inner();
                    let n = value.dims().iter().product::<usize>();
                    self.1.push(value.cast(DType::F32).reshape([n]));
                }
            }
        }
        let mut values = Values(self, Vec::new());
        module.visit(&mut values);
        if values.1.is_empty() {
            return Ok(Vec::new());
        }
        Tensor::cat(values.1, 0)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|source| TrainError::DeviceRead { what: "the parameters", source })
    }

    /// `module` with every trainable parameter set from a flat buffer like
    /// [`params_to_host`](Self::params_to_host)'s (in the parameter's dtype, still requiring its gradient).
    pub(crate) fn host_to_params<M: Module>(&self, module: M, values: &[f32]) -> M {
        struct Set<'a> {
            trainable: &'a Trainable,
            values: &'a [f32],
            at: usize,
        }
        impl ModuleMapper for Set<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                if !self.trainable.params.iter().any(|(id, _)| *id == param.id) {
                    return param;
                }
                let (id, tensor, mapper) = param.consume();
                let dims = tensor.dims();
                let n = dims.iter().product::<usize>();
                let strategy = tensor.gradient_checkpointing_strategy();
                let dtype = tensor.dtype();
                let device = tensor.inner().device();
                let data = TensorData::new(self.values[self.at..self.at + n].to_vec(), dims);
                self.at += n;
                let value = Tensor::<D>::from_data(data, (&device, DType::F32)).cast(dtype);
                let value = crate::trainer::reenter_autodiff(value, strategy).require_grad();
                Param::from_mapped_value(id, value, mapper)
            }
        }
        module.map(&mut Set { trainable: self, values, at: 0 })
    }
}

/// Gradient `id` of rank `rank` from `grads`, flattened.
fn gradient(grads: &GradientsParams, id: ParamId, rank: usize) -> Option<Tensor<1>> {
    fn flat<const D: usize>(grads: &GradientsParams, id: ParamId) -> Option<Tensor<1>> {
        grads.get::<D>(id).map(|g| g.flatten::<1>(0, D - 1))
    }
    match rank {
        1 => grads.get::<1>(id),
        2 => flat::<2>(grads, id),
        3 => flat::<3>(grads, id),
        4 => flat::<4>(grads, id),
        _ => None,
    }
}

/// Registers the flat gradient `flat` of parameter `id` under its `shape`.
fn register(grads: &mut GradientsParams, id: ParamId, flat: Tensor<1>, shape: &[usize]) {
    match *shape {
        [a] => grads.register(id, flat.reshape([a])),
        [a, b] => grads.register(id, flat.reshape([a, b])),
        [a, b, c] => grads.register(id, flat.reshape([a, b, c])),
        [a, b, c, d] => grads.register(id, flat.reshape([a, b, c, d])),
        _ => {}
    }
}
