//! The trainer computes a micro-batch on flex f32 without padding (one packed row of its real tokens); other
//! dtypes and devices compute it padded. Dropout masks are drawn per token, so both layouts give the same loss and
//! the same gradients, dropout included.

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;
use sft_collate::{Batch, Sampling};
use sft_model::{LossOptions, ModelInput, chunked_causal_lm_loss};

use crate::{examples, lora, model, source};

/// The loss sum and the adapters' gradients (A and B of each adapted projection, in order) of `batch` computed
/// as `input`, with dropout seeded by `draw`.
fn loss_and_grads(batch: &Batch, input: &ModelInput, draw: impl FnOnce()) -> (f32, Vec<f32>) {
    let model = model(&lora());
    draw();
    let hidden = model.hidden_states(input);
    let loss =
        chunked_causal_lm_loss(hidden, model.head_weight(), &batch.labels, &LossOptions::train(64, 1.0)).unwrap();
    let grads = GradientsParams::from_grads(loss.surrogate.unwrap().backward(), &model);
    let values = |param: &Param<Tensor<2>>| -> Vec<f32> {
        let g = grads.get::<2>(param.id).unwrap_or_else(|| panic!("an adapter without a gradient"));
        g.into_data().try_to_vec().unwrap()
    };
    let mut out = Vec::new();
    for (_, p) in model.projections() {
        if let Some(a) = &p.adapter {
            out.extend(values(&a.lora_a));
            out.extend(values(&a.lora_b));
        }
    }
    (loss.sum.into_data().try_to_vec::<f32>().unwrap()[0], out)
}

#[test]
fn padded_and_padding_free_micro_batches_give_the_same_loss_and_gradients_with_dropout() {
    let data = examples(4, 11);
    let source = source(&data, 4, Sampling::Sequential);
    let padded = source.collate(&source.plan(0)[0]);
    assert!(padded.num_tokens < padded.batch_size * padded.seq_len, "the batch has padding");
    let flat = padded.padding_free();
    assert_eq!(flat.num_supervised, padded.num_supervised);
    let device = Device::flex().autodiff();
    let padded_input =
        ModelInput::new(&padded.input_ids, padded.shape(), Some(&padded.attention_mask), None, None, &device).unwrap();
    let packing = flat.packing.clone().unwrap();
    let flat_input =
        ModelInput::padding_free(&flat.input_ids, &packing.position_ids, &packing.sequence_ids, &device).unwrap();

    let seed = 0x5eed;
    let (loss, grads) =
        loss_and_grads(&padded, &padded_input, || sft_peft::seed_dropout_tokens(seed, padded.token_keys()));
    let (flat_loss, flat_grads) =
        loss_and_grads(&flat, &flat_input, || sft_peft::seed_dropout_tokens(seed, flat.token_keys()));
    let scale = grads.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = grads.iter().zip(&flat_grads).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("padded vs padding-free: loss {loss} / {flat_loss}, gradients max |Δ| {diff:.2e} of {scale:.2e}");
    assert!((loss - flat_loss).abs() <= 1e-5 * loss.abs(), "{loss} vs {flat_loss}");
    assert!(diff <= 1e-5 * scale, "gradients differ by {diff} (max {scale})");

    // Masks drawn as one stream over each layout differ, and so do the gradients: the comparison above can fail.
    let (_, stream) = loss_and_grads(&padded, &padded_input, || sft_peft::seed_dropout(seed));
    let (_, flat_stream) = loss_and_grads(&flat, &flat_input, || sft_peft::seed_dropout(seed));
    let diff = stream.iter().zip(&flat_stream).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff > 1e-3 * scale, "one-stream masks should depend on the layout ({diff})");
}
