//! RoPE scaling as `config.json` states it (`rope_scaling`, or transformers 5's `rope_parameters`): `linear`,
//! `llama3`, Phi-3's `longrope`.

/// RoPE scaling (`rope_scaling` / `rope_parameters`).
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE (`default`).
    None,
    /// Positions divided by `factor` (`linear`).
    Linear {
        /// The factor.
        factor: f64,
    },
    /// Llama 3.1's frequency-dependent scaling (`llama3`).
    Llama3 {
        /// Scale of long wavelengths.
        factor: f64,
        /// Wavelength band edge (low frequencies).
        low_freq_factor: f64,
        /// Wavelength band edge (high frequencies).
        high_freq_factor: f64,
        /// Context length of the original model.
        original_max_position_embeddings: f64,
    },
    /// Phi-3 / Phi-4's `longrope`: frequency `i` divided by `short_factor[i]` while the sequence fits
    /// `original_max_position_embeddings`, by `long_factor[i]` past it, and cos / sin multiplied by
    /// `attention_factor` (transformers' `_compute_longrope_parameters` and its dynamic update).
    LongRope {
        /// Per-frequency divisors up to `original_max_position_embeddings` (`rotary_dim / 2` of them).
        short_factor: Vec<f64>,
        /// Per-frequency divisors past it.
        long_factor: Vec<f64>,
        /// The pre-training context length (`original_max_position_embeddings` of the config).
        original_max_position_embeddings: usize,
        /// The cos / sin scale: `attention_factor` when given, else `√(1 + ln s / ln original)` with
        /// `s = max_position_embeddings / original` (1 when `s ≤ 1`).
        attention_factor: f64,
    },
}

impl RopeScaling {
    /// transformers' `rope_scaling` object for this scaling (`null` for plain RoPE).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::None => serde_json::Value::Null,
            Self::Linear { factor } => serde_json::json!({"rope_type": "linear", "factor": factor}),
            Self::LongRope { short_factor, long_factor, attention_factor, .. } => serde_json::json!({
                "rope_type": "longrope",
                "short_factor": short_factor,
                "long_factor": long_factor,
                "attention_factor": attention_factor,
            }),
            Self::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                serde_json::json!({
                    "rope_type": "llama3",
                    "factor": factor,
                    "low_freq_factor": low_freq_factor,
                    "high_freq_factor": high_freq_factor,
                    "original_max_position_embeddings": *original_max_position_embeddings as u64,
                })
            }
        }
    }
}

/// What `longrope` needs besides its own fields.
pub(crate) struct ScalingContext {
    pub(crate) max_position_embeddings: usize,
    pub(crate) original_max_position_embeddings: Option<usize>,
    pub(crate) rotary_dim: usize,
}

pub(crate) fn parse_scaling(
    value: Option<&serde_json::Value>,
    context: &ScalingContext,
) -> Result<RopeScaling, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(RopeScaling::None) };
    let kind = value.get("rope_type").or_else(|| value.get("type")).and_then(|v| v.as_str()).unwrap_or("default");
    let number = |key: &str| -> Result<f64, String> {
        value.get(key).and_then(serde_json::Value::as_f64).ok_or_else(|| format!("`{kind}` scaling needs `{key}`"))
    };
    let factors = |key: &str| -> Result<Vec<f64>, String> {
        let list =
            value.get(key).and_then(|v| v.as_array()).ok_or_else(|| format!("`{kind}` scaling needs `{key}`"))?;
        let list: Option<Vec<f64>> = list.iter().map(serde_json::Value::as_f64).collect();
        let list =
            list.filter(|l| l.iter().all(|f| *f > 0.0)).ok_or_else(|| format!("`{key}`: expected numbers > 0"))?;
        if list.len() != context.rotary_dim / 2 {
            return Err(format!(
                "`{key}` has {} entries; the rotary dimension {} needs {}",
                list.len(),
                context.rotary_dim,
                context.rotary_dim / 2
            ));
        }
        Ok(list)
    };
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear { factor: number("factor")? }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: number("factor")?,
            low_freq_factor: number("low_freq_factor")?,
            high_freq_factor: number("high_freq_factor")?,
            original_max_position_embeddings: number("original_max_position_embeddings")?,
        }),
        "longrope" => {
            // transformers: the ratio of the config's two lengths when it has `original_max_position_embeddings`
            // (Phi-3), else `factor` over `max_position_embeddings`.
            let (original, scale) = match context.original_max_position_embeddings {
                Some(original) => (original, context.max_position_embeddings as f64 / original as f64),
                None => (context.max_position_embeddings, value.get("factor").and_then(|f| f.as_f64()).unwrap_or(1.0)),
            };
            if original < 2 {
                return Err(format!("`longrope` needs original_max_position_embeddings ≥ 2, found {original}"));
            }
            let attention_factor = match value.get("attention_factor").and_then(|f| f.as_f64()) {
                Some(f) => f,
                None if scale <= 1.0 => 1.0,
                None => (1.0 + scale.ln() / (original as f64).ln()).sqrt(),
            };
            Ok(RopeScaling::LongRope {
                short_factor: factors("short_factor")?,
                long_factor: factors("long_factor")?,
                original_max_position_embeddings: original,
                attention_factor,
            })
        }
        other => Err(format!("rope type `{other}` is not supported (default, linear, llama3, longrope)")),
    }
}
