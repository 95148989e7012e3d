//! Folding adapters into the base weights and back (PEFT's `merge_adapter`, `unmerge_adapter`,
//! `merge_and_unload`).

use sft_model::LlamaForCausalLM;

use crate::lora::LoraLinear;

/// Adds every adapter's update to its base weight; the adapters are then skipped in `forward`.
pub fn merge(model: LlamaForCausalLM<LoraLinear>) -> LlamaForCausalLM<LoraLinear> {
    map(model, LoraLinear::merge)
}

/// Undoes [`merge`] (exact up to floating-point rounding).
pub fn unmerge(model: LlamaForCausalLM<LoraLinear>) -> LlamaForCausalLM<LoraLinear> {
    map(model, LoraLinear::unmerge)
}

/// A plain model with every update folded in and the adapters dropped, ready for
/// [`save_pretrained`](LlamaForCausalLM::save_pretrained) as a Hugging Face checkpoint. Trained
/// `modules_to_save` (`lm_head`, `embed_tokens`) are kept as they are.
pub fn merge_and_unload(model: LlamaForCausalLM<LoraLinear>) -> LlamaForCausalLM {
    let result: Result<LlamaForCausalLM, std::convert::Infallible> =
        model.map_projections(|_, p| Ok(p.merge_and_unload()));
    match result {
        Ok(model) => model,
        Err(never) => match never {},
    }
}

fn map(model: LlamaForCausalLM<LoraLinear>, f: fn(LoraLinear) -> LoraLinear) -> LlamaForCausalLM<LoraLinear> {
    let result: Result<_, std::convert::Infallible> = model.map_projections(|_, p| Ok(f(p)));
    match result {
        Ok(model) => model,
        Err(never) => match never {},
    }
}
