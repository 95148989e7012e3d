//! Burn's own `apply_lora` as an oracle: with the same factors, our factored `LoraLinear` gives the same output
//! and the same factor gradients as Burn's materialised `W + scale·A·B`, before and after one SGD step.

use burn::module::{Lora, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use sft_model::Projection;
use sft_peft::{LoraAdapter, LoraLinear};

use crate::{max_abs_diff, transpose, values};

#[test]
fn factored_lora_matches_burn_apply_lora() {
    let device = Device::flex().autodiff();
    let (d_in, d_out, r, alpha) = (48, 40, 4, 8.0);
    let mut random = sft_rand::SplitMix64::new(11);
    let mut normal = |shape: [usize; 3]| {
        let n = shape.iter().product();
        Tensor::<3>::from_data(TensorData::new(random.normals(n, 1.0), shape), &device)
    };
    let (x, target) = (normal([2, 5, d_in]), normal([2, 5, d_out]));
    let linear: Linear = LinearConfig::new(d_in, d_out).with_bias(false).init(&device);
    let oracle = linear.clone().apply_lora(Lora::new(r, alpha));
    let burn_adapter = oracle.weight.adapter().unwrap();
    let (a, b) = (values(burn_adapter.a.val()), values(burn_adapter.b.val()));
    // Burn's a is [in, r], b [r, out]; ours is built from PEFT's layout [r, in], [out, r].
    let adapter_of = |a: &[f32], b: &[f32]| {
        LoraAdapter::from_peft(
            &transpose(a, d_in, r),
            &transpose(b, r, d_out),
            [r, d_in, d_out],
            alpha / r as f64,
            0.0,
            &device,
        )
    };
    let ours = LoraLinear {
        base: Linear { weight: Param::from_tensor(linear.weight.val().detach()).set_require_grad(false), bias: None }
            .into(),
        adapter: Some(adapter_of(&a, &b)),
        merged: false,
    };
    let (y_oracle, y_ours) = (oracle.forward(x.clone()), Projection::forward(&ours, x.clone()));
    let oracle_values = values(y_oracle.clone().inner());
    let magnitude = oracle_values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max_abs_diff(&oracle_values, &values(y_ours.clone().inner())) <= 1e-5 * magnitude.max(1.0));

    // Gradients of a loss that depends on the output: dA, dB (B = 0 makes dA zero at first; dB is not).
    let g_oracle = (y_oracle * target.clone()).sum().backward();
    let g_ours = (y_ours * target.clone()).sum().backward();
    let ours_adapter = ours.adapter.as_ref().unwrap();
    let (db_oracle, db_ours) =
        (values(burn_adapter.b.grad(&g_oracle).unwrap()), values(ours_adapter.lora_b.grad(&g_ours).unwrap()));
    let scale = db_oracle.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(scale > 0.0);
    assert!(max_abs_diff(&db_oracle, &db_ours) <= 1e-5 * scale, "dB differs");

    // One SGD step on B with the oracle's gradient makes B non-zero; then outputs and dA must still agree.
    let lr = 0.1;
    let b_new: Vec<f32> = b.iter().zip(&db_oracle).map(|(b, g)| b - lr * g).collect();
    let stepped_oracle =
        Linear { weight: Param::from_tensor(linear.weight.val().detach()), bias: None }.apply_lora(Lora::new(r, alpha));
    // Re-create the oracle with our factors through its public fields.
    let mut adapter = stepped_oracle.weight.adapter().unwrap().clone();
    adapter.a = Param::from_tensor(Tensor::from_data(TensorData::new(a.clone(), [d_in, r]), &device));
    adapter.b = Param::from_tensor(Tensor::from_data(TensorData::new(b_new.clone(), [r, d_out]), &device));
    let dense = linear.weight.val().detach() + adapter.a.val().matmul(adapter.b.val()).mul_scalar(adapter.scale);
    let ours = LoraLinear { adapter: Some(adapter_of(&a, &b_new)), ..ours };
    let y_dense = x.clone().matmul(dense.unsqueeze());
    let y_ours = Projection::forward(&ours, x);
    let dense_values = values(y_dense.clone().inner());
    let magnitude = dense_values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(&dense_values, &values(y_ours.clone().inner()));
    assert!(diff <= 1e-6 * magnitude.max(1.0) * 10.0, "after a step: {diff} (outputs up to {magnitude})");
    let g_dense = (y_dense * target.clone()).sum().backward();
    let g_ours = (y_ours * target).sum().backward();
    let (da_dense, da_ours) = (
        values(adapter.a.grad(&g_dense).unwrap()),
        values(ours.adapter.as_ref().unwrap().lora_a.grad(&g_ours).unwrap()),
    );
    let scale = da_dense.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(scale > 0.0 && max_abs_diff(&da_dense, &da_ours) <= 1e-5 * scale, "dA differs");
}
