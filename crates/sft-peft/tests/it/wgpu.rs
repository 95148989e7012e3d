//! wgpu (the GPU, or Mesa lavapipe on a machine without one): the NF4 CubeCL kernel and the generic paths agree with the
//! host and with flex; the micro model's logits, a LoRA step and the QLoRA loss agree with flex. Built only with
//! `--features wgpu`.

use burn::prelude::*;
use burn::tensor::{DType, DeviceKind};
use sft_peft::nf4::{Nf4Linear, Nf4Weight};

use crate::{base, batch, values};

/// wgpu's preferred adapter: the GPU where there is one, Mesa lavapipe on a machine without
/// (`CUBECL_WGPU_DEFAULT_DEVICE` overrides).
fn wgpu() -> Device {
    Device::wgpu(DeviceKind::DefaultDevice)
}

/// Both dequantization paths on wgpu (the tensor-op one and the CubeCL kernel) equal the host's, bit for bit:
/// a weight whose blocks straddle rows, and one with an odd element count (a final half-used byte and word).
#[test]
fn nf4_dequantization_on_wgpu_equals_the_host() {
    for (shape, seed) in [([96, 200], 8), ([7, 9], 9), ([5, 13], 10)] {
        let weight = sft_rand::SplitMix64::new(seed).normals(shape[0] * shape[1], 0.05);
        for double in [false, true] {
            let q = Nf4Weight::quantize(&weight, shape, double);
            let linear = Nf4Linear::new(&q, DType::F32, &wgpu());
            let host = q.dequantize();
            // Poison the memory pool with NaN buffers of this size, so an element the kernel fails to write
            // cannot pass by holding an earlier result.
            drop(Tensor::<2>::full(shape, f32::NAN, &wgpu()));
            let fused = linear.dequantize_fused().expect("wgpu takes the CubeCL kernel");
            assert_eq!(values(fused), host, "kernel, {shape:?}, double quant {double}");
            assert_eq!(values(linear.dequantize_generic()), host, "generic, {shape:?}, double quant {double}");
        }
    }
}

/// The CubeCL fused matmul (kernel dequantization, hand-written backward) equals the generic path in value and
/// input gradient on wgpu.
#[test]
fn nf4_fused_matmul_on_wgpu_equals_the_generic_path() {
    crate::nf4::fused_matmul_matches_generic(wgpu().autodiff());
}

#[test]
fn micro_model_logits_on_wgpu_match_flex() {
    let (input, mask, _) = batch(&wgpu());
    let (cpu_input, _, _) = batch(&Device::flex());
    let gpu = values(base(&wgpu()).forward(&input));
    let cpu = values(base(&Device::flex()).forward(&cpu_input));
    let d = crate::max_abs_diff_real(&gpu, &cpu, &mask, 4096);
    eprintln!("wgpu vs flex logits: max |Δ| {d:.2e}");
    assert!(d <= 1e-3, "{d}");
}

/// One AdamW step of LoRA (non-zero init, all-linear) on the micro model gives the same adapters on wgpu as on
/// flex, within 1e-4 relative; the NF4 (QLoRA) model's loss agrees too.
#[test]
fn a_lora_step_and_the_nf4_loss_on_wgpu_match_flex() {
    use burn::optim::{AdamWConfig, GradientsParams};
    use sft_model::causal_lm_loss;
    use sft_peft::{InitLoraWeights, LoraConfig, TargetModules, inject};

    let config = LoraConfig {
        r: 4,
        target_modules: Some(TargetModules::Pattern("all-linear".into())),
        init_lora_weights: InitLoraWeights::Bool(false),
        ..Default::default()
    };
    let step = |device: Device| -> (Vec<f32>, f32) {
        let model = inject(base(&device), &config, 3).unwrap().train();
        let (input, _, labels) = batch(&device);
        let loss = causal_lm_loss(model.forward(&input), &labels).unwrap().mean();
        let value = values(loss.clone().inner())[0];
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut optimizer = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.0).init();
        let model = optimizer.step(1e-3, model, grads);
        let adapters = model
            .projections()
            .iter()
            .flat_map(|(_, p)| {
                let a = p.adapter.as_ref().unwrap();
                [values(a.lora_a.val()), values(a.lora_b.val())].concat()
            })
            .collect();
        (adapters, value)
    };
    let (gpu, gpu_loss) = step(wgpu().autodiff());
    let (cpu, cpu_loss) = step(Device::flex().autodiff());
    let scale = cpu.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = crate::max_abs_diff(&gpu, &cpu);
    eprintln!("LoRA step wgpu vs flex: loss {gpu_loss} vs {cpu_loss}, adapters max |Δ| {diff:.2e} (max {scale:.2e})");
    assert!(diff <= 1e-4 * scale, "{diff}");

    let nf4_loss = |device: Device| {
        let q = sft_peft::QuantizationConfig {
            load_in_4bit: true,
            bnb_4bit_use_double_quant: true,
            ..serde_json::from_str("{}").unwrap()
        };
        let config = sft_model::LlamaConfig::from_file(&crate::micro().join("config.json")).unwrap();
        let mut checkpoint = sft_model::Checkpoint::open_dir(&crate::micro()).unwrap();
        let model: sft_model::LlamaForCausalLM<sft_peft::BaseLinear> = sft_model::LlamaForCausalLM::load_with(
            &config,
            &mut checkpoint,
            &device,
            burn::tensor::FloatDType::F32,
            |_, w| q.projection(w),
        )
        .unwrap();
        let (input, _, labels) = batch(&device);
        values(causal_lm_loss(model.forward(&input), &labels).unwrap().mean())[0]
    };
    let (gpu, cpu) = (nf4_loss(wgpu()), nf4_loss(Device::flex()));
    eprintln!("NF4 loss wgpu {gpu} vs flex {cpu}");
    assert!((gpu - cpu).abs() <= 1e-5 * cpu, "{gpu} vs {cpu}");
}
