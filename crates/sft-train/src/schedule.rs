//! Learning-rate schedules: transformers' `get_scheduler` for `lr_scheduler_type`, with linear warmup.

use crate::args::{SchedulerType, TrainingArguments};

/// The learning rate of every optimizer step of a run: `learning_rate × factor(step)` where `factor` is
/// transformers' `lr_lambda` (`get_linear_schedule_with_warmup`, `get_cosine_schedule_with_warmup` with half a
/// cycle, `get_constant_schedule`, `get_constant_schedule_with_warmup`). Step `k` (0-based: the first optimizer step
/// is 0) uses `lr(k)`, as PyTorch's `LambdaLR` applies it, so with warmup the first step's rate is 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub learning_rate: f64,
    /// The schedule's shape.
    pub kind: SchedulerType,
    /// Linear warmup steps.
    pub warmup_steps: u64,
    /// Total optimizer steps of the run.
    pub total_steps: u64,
}

impl LrSchedule {
    /// The schedule of `args` for a run of `total_steps`: warmup is `warmup_steps` when > 0, else
    /// `ceil(warmup_ratio × total_steps)` (transformers' `get_warmup_steps`).
    pub fn new(args: &TrainingArguments, total_steps: u64) -> Self {
        let warmup_steps = if args.warmup_steps > 0 {
            args.warmup_steps as u64
        } else {
            (args.warmup_ratio * total_steps as f64).ceil() as u64
        };
        Self { learning_rate: args.learning_rate, kind: args.lr_scheduler_type, warmup_steps, total_steps }
    }

    /// The multiplier of the peak rate at 0-based optimizer step `step`.
    pub fn factor(&self, step: u64) -> f64 {
        let (step, warmup, total) = (step as f64, self.warmup_steps as f64, self.total_steps as f64);
        let warming = step < warmup;
        let warm = step / warmup.max(1.0);
        match self.kind {
            SchedulerType::Constant => 1.0,
            SchedulerType::ConstantWithWarmup if warming => warm,
            SchedulerType::ConstantWithWarmup => 1.0,
            SchedulerType::Linear if warming => warm,
            SchedulerType::Linear => ((total - step) / (total - warmup).max(1.0)).max(0.0),
            SchedulerType::Cosine if warming => warm,
            SchedulerType::Cosine => {
                let progress = (step - warmup) / (total - warmup).max(1.0);
                (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
            }
        }
    }

    /// The learning rate at 0-based optimizer step `step`.
    pub fn lr(&self, step: u64) -> f64 {
        self.learning_rate * self.factor(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(kind: SchedulerType, warmup: u64, total: u64) -> LrSchedule {
        LrSchedule { learning_rate: 1.0, kind, warmup_steps: warmup, total_steps: total }
    }

    #[test]
    fn linear_warms_up_then_decays_to_zero() {
        let s = schedule(SchedulerType::Linear, 2, 10);
        let got: Vec<f64> = (0..11).map(|k| s.lr(k)).collect();
        // transformers: k < 2 → k / 2; else (10 - k) / 8.
        let want = [0.0, 0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0];
        assert_eq!(got, want);
    }

    #[test]
    fn cosine_is_a_half_cycle_after_warmup() {
        let s = schedule(SchedulerType::Cosine, 0, 4);
        let got: Vec<f64> = (0..5).map(|k| s.lr(k)).collect();
        let half = std::f64::consts::FRAC_1_SQRT_2;
        // 0.5 · (1 + cos(π k / 4)).
        let want = [1.0, 0.5 * (1.0 + half), 0.5, 0.5 * (1.0 - half), 0.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn constant_kinds() {
        assert_eq!(schedule(SchedulerType::Constant, 3, 10).lr(0), 1.0);
        let s = schedule(SchedulerType::ConstantWithWarmup, 4, 10);
        assert_eq!((0..6).map(|k| s.lr(k)).collect::<Vec<_>>(), [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]);
    }

    #[test]
    fn warmup_ratio_rounds_up_and_warmup_steps_wins() {
        let mut args = TrainingArguments { warmup_ratio: 0.1, ..Default::default() };
        assert_eq!(LrSchedule::new(&args, 25).warmup_steps, 3);
        args.warmup_steps = 7;
        assert_eq!(LrSchedule::new(&args, 25).warmup_steps, 7);
    }
}
