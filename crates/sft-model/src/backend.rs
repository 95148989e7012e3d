//! Which devices run this project's backend extensions (the fused attention softmax here, the NF4 kernels in
//! sft-peft): Burn's flex CPU backend, and the CubeCL backend when the `wgpu` or `cuda` feature is on.

use burn::prelude::*;

/// Whether `device` (with or without autodiff) belongs to a backend the project's extensions are implemented for.
/// Other backends take the generic tensor-op paths.
pub fn has_extensions(device: &Device) -> bool {
    let device = device.clone().inner();
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if matches!(device.as_dispatch(), burn::backend::DispatchDevice::Cube(_)) {
        return true;
    }
    device == Device::flex()
}
