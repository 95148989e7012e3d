//! Initialisation: A Kaiming-uniform (a = √5) or gaussian, B = 0, and then the LoRA model equals its base.

use burn::prelude::*;
use sft_peft::{InitLoraWeights, LoraConfig, TargetModules, inject};

use crate::{base, batch, values};

#[test]
fn default_init_is_kaiming_uniform_a_and_zero_b_so_logits_equal_the_base() {
    let device = Device::flex();
    let config =
        LoraConfig { r: 8, target_modules: Some(TargetModules::Pattern("all-linear".into())), ..Default::default() };
    let model = inject(base(&device), &config, 3).unwrap();
    let mut checked = 0;
    for (name, p) in model.projections() {
        let adapter = p.adapter.as_ref().unwrap();
        let [d_in, r] = adapter.lora_a.dims();
        assert_eq!(r, 8);
        let a = values(adapter.lora_a.val());
        // kaiming_uniform_(a=√5) on [r, in]: gain √(2/(1+5)), std gain/√in, bound √3·std = 1/√in.
        let bound = 1.0 / (d_in as f64).sqrt();
        assert!(a.iter().all(|&x| f64::from(x).abs() <= bound), "{name}: outside ±{bound}");
        let mean = a.iter().map(|&x| f64::from(x)).sum::<f64>() / a.len() as f64;
        let var = a.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / a.len() as f64;
        // U(−b, b): mean 0, variance b²/3; with n ≥ 512 samples, 5-sigma bounds.
        let n = a.len() as f64;
        assert!(mean.abs() <= 5.0 * bound / (3.0 * n).sqrt(), "{name}: mean {mean}");
        assert!(
            (var - bound * bound / 3.0).abs() <= 5.0 * bound * bound * (4.0 / 45.0 / n).sqrt(),
            "{name}: var {var}"
        );
        let max = a.iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
        assert!(max > 0.9 * bound, "{name}: the samples span the interval ({max} of {bound})");
        assert!(values(adapter.lora_b.val()).iter().all(|&x| x == 0.0), "{name}: B is zero");
        checked += 1;
    }
    assert_eq!(checked, 14);
    let (input, _, _) = batch(&device);
    assert_eq!(values(model.forward(&input)), values(base(&device).forward(&input)), "B = 0: exactly the base");
}

#[test]
fn gaussian_init_has_std_one_over_r_and_seeds_are_reproducible() {
    let device = Device::flex();
    let config = LoraConfig {
        r: 4,
        init_lora_weights: InitLoraWeights::Named("gaussian".into()),
        target_modules: Some(TargetModules::Pattern("all-linear".into())),
        ..Default::default()
    };
    let model = inject(base(&device), &config, 5).unwrap();
    let a: Vec<f32> =
        model.projections().iter().flat_map(|(_, p)| values(p.adapter.as_ref().unwrap().lora_a.val())).collect();
    let std = (a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
    assert!((std - 0.25).abs() < 0.01, "std {std}, expected 1/r = 0.25");
    let again = inject(base(&device), &config, 5).unwrap();
    let other = inject(base(&device), &config, 6).unwrap();
    let first = |m: &sft_model::LlamaForCausalLM<sft_peft::LoraLinear>| {
        values(m.projections()[0].1.adapter.as_ref().unwrap().lora_a.val())
    };
    assert_eq!(first(&again), first(&model));
    assert_ne!(first(&other), first(&model));
}
