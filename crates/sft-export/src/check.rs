//! Deployment checks of a PEFT adapter against what its serving runtime accepts, so the trainer says what the
//! server would refuse later: vLLM (rank, `modules_to_save`, DoRA, key format), llama.cpp (LoRA factors only),
//! Ollama (the architectures it imports safetensors adapters for).

use std::path::Path;

use serde_json::Value as Json;
use sft_model::Checkpoint;
use sft_peft::{ADAPTER_CONFIG, ADAPTER_WEIGHTS};

use crate::error::{ExportError, Result};

/// A serving runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// vLLM's LoRA serving (`--enable-lora`).
    Vllm,
    /// llama.cpp (`--lora` with a GGUF adapter).
    LlamaCpp,
    /// Ollama (`ADAPTER` in a Modelfile).
    Ollama,
}

impl Target {
    /// The target called `name` (`vllm`, `llamacpp`, `ollama`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "vllm" => Some(Self::Vllm),
            "llamacpp" | "llama.cpp" | "llama-cpp" => Some(Self::LlamaCpp),
            "ollama" => Some(Self::Ollama),
            _ => None,
        }
    }
}

/// One rule the adapter breaks for a target: what, and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule (`rank`, `modules_to_save`, `use_dora`, `keys`, `architecture`).
    pub rule: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

/// The ranks vLLM serves (`--max-lora-rank` choices).
pub const VLLM_RANKS: [usize; 9] = [1, 8, 16, 32, 64, 128, 256, 320, 512];
/// vLLM's default `--max-lora-rank`.
pub const VLLM_DEFAULT_MAX_RANK: usize = 16;
/// The base architectures Ollama imports safetensors adapters for (its `import` documentation).
pub const OLLAMA_ADAPTER_ARCHITECTURES: [&str; 3] = ["LlamaForCausalLM", "MistralForCausalLM", "GemmaForCausalLM"];

/// What the checks read of an adapter: its config as written (so options this project does not train with, such
/// as DoRA, are still seen) and its tensor names. Read once, checked against any number of targets.
#[derive(Debug, Clone)]
pub struct AdapterFacts {
    r: usize,
    saved: Vec<String>,
    use_dora: bool,
    keys: Vec<String>,
}

impl AdapterFacts {
    /// Reads `adapter_config.json` and the tensor names of `adapter_model.safetensors` in `adapter_dir`.
    pub fn read(adapter_dir: &Path) -> Result<Self> {
        let path = adapter_dir.join(ADAPTER_CONFIG);
        let error = |message: String| ExportError::Adapter { path: path.clone(), message };
        let text = std::fs::read_to_string(&path).map_err(|e| error(e.to_string()))?;
        let config: Json = serde_json::from_str(&text).map_err(|e| error(format!("not JSON: {e}")))?;
        Ok(Self {
            r: config["r"].as_u64().unwrap_or(8) as usize,
            saved: config["modules_to_save"]
                .as_array()
                .map(|a| a.iter().filter_map(Json::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            use_dora: config["use_dora"].as_bool() == Some(true),
            keys: Checkpoint::open(&[adapter_dir.join(ADAPTER_WEIGHTS)])?.names(),
        })
    }

    /// The rules the adapter breaks for `target`; empty when it is fine. `base_architecture` is the base model's
    /// `architectures[0]` (for Ollama).
    pub fn check(&self, target: Target, base_architecture: &str) -> Vec<Finding> {
        let Self { r, saved, use_dora, keys } = self;
        let (r, use_dora) = (*r, *use_dora);
        let extra: Vec<&String> = keys.iter().filter(|k| !k.contains(".lora_A.") && !k.contains(".lora_B.")).collect();
        let mut findings = Vec::new();
        let mut flag = |rule, message: String| findings.push(Finding { rule, message });
        match target {
            Target::Vllm => {
                if !VLLM_RANKS.contains(&r) {
                    flag("rank", format!("r = {r} is not a rank vLLM serves ({VLLM_RANKS:?}); train with one of them"));
                } else if r > VLLM_DEFAULT_MAX_RANK {
                    flag(
                        "rank",
                        format!(
                            "r = {r} is above vLLM's default --max-lora-rank {VLLM_DEFAULT_MAX_RANK}; start vLLM with --max-lora-rank {r}"
                        ),
                    );
                }
                if !saved.is_empty() {
                    flag(
                        "modules_to_save",
                        format!(
                            "modules_to_save {saved:?}: vLLM's LoRA serving loads only lora_A / lora_B; train without them, or merge and serve the merged model"
                        ),
                    );
                }
                if use_dora {
                    flag("use_dora", "DoRA adapters are not served by vLLM's LoRA; train plain LoRA or merge".into());
                }
                if let Some(bad) = keys.iter().find(|k| !k.starts_with("base_model.model.") || !k.ends_with(".weight"))
                {
                    flag(
                        "keys",
                        format!("tensor `{bad}` is not PEFT's `base_model.model.<module>.lora_A.weight` form"),
                    );
                }
            }
            Target::LlamaCpp => {
                if !extra.is_empty() {
                    flag(
                        "modules_to_save",
                        format!(
                            "{} tensor(s) besides lora_A / lora_B (e.g. `{}`): a llama.cpp LoRA cannot carry embedding or head weights; merge and export the whole model (sft export gguf)",
                            extra.len(),
                            extra[0]
                        ),
                    );
                }
            }
            Target::Ollama => {
                if !OLLAMA_ADAPTER_ARCHITECTURES.contains(&base_architecture) {
                    flag(
                        "architecture",
                        format!(
                            "Ollama imports safetensors adapters for {OLLAMA_ADAPTER_ARCHITECTURES:?}, not {base_architecture}; export GGUF (sft export gguf --modelfile) instead"
                        ),
                    );
                }
                if !extra.is_empty() {
                    flag(
                        "modules_to_save",
                        format!("tensor `{}` is not a LoRA factor; merge and export GGUF instead", extra[0]),
                    );
                }
            }
        }
        findings
    }
}

/// The rules `adapter_dir` breaks for `target` ([`AdapterFacts::read`], then [`AdapterFacts::check`]).
pub fn check_adapter(adapter_dir: &Path, target: Target, base_architecture: &str) -> Result<Vec<Finding>> {
    Ok(AdapterFacts::read(adapter_dir)?.check(target, base_architecture))
}
