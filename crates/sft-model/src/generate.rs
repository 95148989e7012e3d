//! Text generation: greedy or temperature / top-p sampling, batched with left padding, with a KV cache.

use burn::prelude::*;

use crate::error::{ModelError, Result};
use crate::input::ModelInput;
use crate::model::{KvCache, LlamaForCausalLM};
use crate::projection::Projection;
use sft_rand::SplitMix64;

/// How to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Most tokens to generate per prompt.
    pub max_new_tokens: usize,
    /// 0 = greedy (argmax, first index on ties); otherwise logits are divided by it before sampling.
    pub temperature: f64,
    /// Nucleus sampling: sample from the smallest set of tokens whose probability reaches `top_p` (1 = all).
    pub top_p: f64,
    /// A row stops after generating any of these.
    pub eos_token_ids: Vec<u32>,
    /// Id used for left padding (never attended to).
    pub pad_token_id: u32,
    /// Seed of the sampler.
    pub seed: u64,
    /// Reuse keys and values of earlier positions (the result is the same; only speed differs).
    pub use_cache: bool,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            temperature: 0.0,
            top_p: 1.0,
            eos_token_ids: Vec::new(),
            pad_token_id: 0,
            seed: 0,
            use_cache: true,
        }
    }
}

/// Generates continuations of `prompts` (token ids, BOS included if the model expects it), all rows at once:
/// prompts are left-padded, padding is masked out of attention and positions count real tokens only, as
/// transformers' `generate` does. Returns the new tokens of each prompt, up to and including the first EOS.
pub fn generate<P: Projection>(
    model: &LlamaForCausalLM<P>,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    if let Some(i) = prompts.iter().position(Vec::is_empty) {
        return Err(ModelError::Input(format!("prompt {i} is empty")));
    }
    let batch = prompts.len();
    let width = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| std::iter::repeat_n(config.pad_token_id, width - p.len()).chain(p.iter().copied()).collect())
        .collect();
    let mut mask: Vec<Vec<u8>> = prompts
        .iter()
        .map(|p| std::iter::repeat_n(0, width - p.len()).chain(std::iter::repeat_n(1, p.len())).collect())
        .collect();
    let mut outputs = vec![Vec::new(); batch];
    let mut finished = vec![false; batch];
    let mut rng = Sampler::new(config.seed);
    let mut cache = KvCache::default();
    let mut fed = 0; // positions already in the cache
    for _ in 0..config.max_new_tokens {
        let total = ids[0].len();
        let start = if config.use_cache { fed } else { 0 };
        let input = step_input(&ids, &mask, start, device)?;
        let hidden =
            if config.use_cache { model.hidden_states_cached(&input, &mut cache) } else { model.hidden_states(&input) };
        fed = total;
        let new = total - start;
        let logits = model.logits(hidden.narrow(1, new - 1, 1));
        let vocab = logits.dims()[2];
        let logits: Vec<f32> = logits
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| ModelError::Input(format!("reading logits: {e:?}")))?;
        for b in 0..batch {
            let next = if finished[b] {
                config.pad_token_id
            } else {
                let token = rng.pick(&logits[b * vocab..(b + 1) * vocab], config.temperature, config.top_p);
                outputs[b].push(token);
                finished[b] = config.eos_token_ids.contains(&token);
                token
            };
            ids[b].push(next);
            mask[b].push(u8::from(!finished[b] || outputs[b].last() == Some(&next)));
        }
        if finished.iter().all(|&f| f) {
            break;
        }
    }
    Ok(outputs)
}

/// The input for positions `start..` of the rows: ids, positions counting real tokens (`cumsum(mask) - 1`, 0 on
/// padding), and the future and padding keys blocked over all keys.
fn step_input(ids: &[Vec<u32>], mask: &[Vec<u8>], start: usize, device: &Device) -> Result<ModelInput> {
    let (batch, total) = (ids.len(), ids[0].len());
    let mut new_ids = Vec::with_capacity(batch * (total - start));
    let mut positions = Vec::with_capacity(batch * (total - start));
    for b in 0..batch {
        let mut seen = 0u32;
        for (j, &m) in mask[b].iter().enumerate() {
            seen += u32::from(m);
            if j >= start {
                new_ids.push(ids[b][j]);
                positions.push(seen.saturating_sub(1));
            }
        }
    }
    let flat_mask: Vec<u8> = mask.concat();
    ModelInput::with_past(&new_ids, [batch, total - start], start, Some(&flat_mask), Some(&positions), None, device)
}

/// Token choice from one row of logits, with a stream seeded per call of [`generate`].
struct Sampler {
    random: SplitMix64,
}

impl Sampler {
    fn new(seed: u64) -> Self {
        Self { random: SplitMix64::new(seed) }
    }

    fn pick(&mut self, logits: &[f32], temperature: f64, top_p: f64) -> u32 {
        let argmax = logits
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &x)| if x > best.1 { (i, x) } else { best })
            .0;
        if temperature <= 0.0 {
            return argmax as u32;
        }
        let max = f64::from(logits[argmax]);
        let mut probs: Vec<(usize, f64)> =
            logits.iter().enumerate().map(|(i, &x)| (i, ((f64::from(x) - max) / temperature).exp())).collect();
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: f64 = probs.iter().map(|p| p.1).sum();
        let mut kept = 0.0;
        let mut cut = probs.len();
        for (n, p) in probs.iter().enumerate() {
            kept += p.1 / total;
            if kept >= top_p {
                cut = n + 1;
                break;
            }
        }
        let nucleus = &probs[..cut];
        let mass: f64 = nucleus.iter().map(|p| p.1).sum();
        let mut u = self.random.uniform() * mass;
        for &(i, p) in nucleus {
            if u < p {
                return i as u32;
            }
            u -= p;
        }
        nucleus.last().map_or(argmax, |p| p.0) as u32
    }
}
