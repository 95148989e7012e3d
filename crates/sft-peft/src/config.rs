//! `LoraConfig`: the `lora_config` section of a run config, with PEFT's names, defaults and meaning.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

fn check(ok: bool, key: &str, message: &str) -> Result<()> {
    if ok { Ok(()) } else { Err(invalid(key, message)) }
}

/// LoRA adapter settings, with PEFT's names, defaults and meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    /// Rank of the update `B·A` (PEFT default 8).
    #[serde(default = "default_r")]
    pub r: usize,
    /// Scale numerator: the update is scaled by `lora_alpha / r` (`/ √r` with `use_rslora`). PEFT default 8.
    #[serde(default = "default_alpha")]
    pub lora_alpha: f64,
    /// Dropout on the adapter input during training, in [0, 1).
    #[serde(default)]
    pub lora_dropout: f64,
    /// Modules to adapt: names matched by suffix (`["q_proj", "v_proj"]`), `"all-linear"` (every linear layer but
    /// `lm_head`), or any other string as a regex on the full module name. Unset: `q_proj` and `v_proj`, PEFT's
    /// default for Llama.
    #[serde(default)]
    pub target_modules: Option<TargetModules>,
    /// Which biases to train: `none`, `all` or `lora_only`.
    #[serde(default)]
    pub bias: LoraBias,
    /// Rank-stabilised scaling `lora_alpha / √r`.
    #[serde(default)]
    pub use_rslora: bool,
    /// `true`: A Kaiming-uniform (a = √5), B = 0; `"gaussian"`: A normal(0, 1/r), B = 0; `false`: random B (tests).
    #[serde(default)]
    pub init_lora_weights: InitLoraWeights,
    /// Modules trained in full and saved with the adapter, such as `["lm_head"]`.
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    /// Layer indices to adapt (all when unset).
    #[serde(default)]
    pub layers_to_transform: Option<LayerSelection>,
    /// PEFT's task type; only `CAUSAL_LM` applies to this project.
    #[serde(default)]
    pub task_type: Option<String>,
}

/// The `target_modules` value that selects every linear layer except the output head.
pub const ALL_LINEAR: &str = "all-linear";

/// `target_modules`: a list of name suffixes, or one string (`"all-linear"` or a regex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    /// Module names matched by suffix.
    List(Vec<String>),
    /// `"all-linear"` or a regex matched against the full module name.
    Pattern(String),
}

/// `bias`: which biases train alongside the adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoraBias {
    /// No bias trains.
    #[default]
    None,
    /// Every bias trains.
    All,
    /// Biases of adapted layers train.
    LoraOnly,
}

/// `init_lora_weights`: `true`, `false` or `"gaussian"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InitLoraWeights {
    /// `true` = PEFT's default init; `false` = random B as well (a non-identity adapter, for tests).
    Bool(bool),
    /// A named scheme; `"gaussian"` is the one PEFT and this project support.
    Named(String),
}

impl Default for InitLoraWeights {
    fn default() -> Self {
        Self::Bool(true)
    }
}

/// `layers_to_transform`: one layer index or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayerSelection {
    /// A single layer.
    One(usize),
    /// Several layers.
    Many(Vec<usize>),
}

fn default_r() -> usize {
    8
}
fn default_alpha() -> f64 {
    8.0
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            r: default_r(),
            lora_alpha: default_alpha(),
            lora_dropout: 0.0,
            target_modules: None,
            bias: LoraBias::None,
            use_rslora: false,
            init_lora_weights: InitLoraWeights::default(),
            modules_to_save: None,
            layers_to_transform: None,
            task_type: None,
        }
    }
}

impl LoraConfig {
    /// The factor of the adapter's output: `lora_alpha / r`, or `lora_alpha / √r` with `use_rslora`.
    pub fn scaling(&self) -> f64 {
        if self.use_rslora { self.lora_alpha / (self.r as f64).sqrt() } else { self.lora_alpha / self.r as f64 }
    }

    /// Checks ranges; errors name the field (`lora_config.<key>`).
    pub fn validate(&self) -> Result<()> {
        check(self.r >= 1, "r", "expected a whole number >= 1")?;
        check(self.lora_alpha.is_finite() && self.lora_alpha > 0.0, "lora_alpha", "expected a number > 0")?;
        check((0.0..1.0).contains(&self.lora_dropout), "lora_dropout", "expected a number in [0, 1)")?;
        match &self.target_modules {
            Some(TargetModules::List(list)) => {
                check(!list.is_empty(), "target_modules", "expected at least one module name")?;
                check(list.iter().all(|m| !m.is_empty()), "target_modules", "module names may not be empty")?;
            }
            Some(TargetModules::Pattern(p)) if p == ALL_LINEAR => {}
            Some(TargetModules::Pattern(p)) => {
                check(!p.is_empty(), "target_modules", "expected a pattern")?;
                regex::Regex::new(p).map_err(|e| invalid("target_modules", format!("not a valid regex: {e}")))?;
            }
            None => {}
        }
        if let InitLoraWeights::Named(name) = &self.init_lora_weights {
            check(name == "gaussian", "init_lora_weights", "expected true, false or \"gaussian\"")?;
        }
        if let Some(task) = &self.task_type {
            check(task == "CAUSAL_LM", "task_type", "expected \"CAUSAL_LM\" (the only task of this project)")?;
        }
        if let Some(modules) = &self.modules_to_save {
            check(modules.iter().all(|m| !m.is_empty()), "modules_to_save", "module names may not be empty")?;
            crate::inject::modules_to_save(self)?;
        }
        Ok(())
    }
}
