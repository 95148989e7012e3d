//! A training progress bar (indicatif) as a trainer callback, for the binaries: steps done of the run, with the
//! last logged loss, learning rate and tokens/s in the message. It draws on stderr and only on a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use sft_train::{Callback, LogEntry, TrainerControl, TrainerState};

/// The bar; add it with `Trainer::with_callback`.
#[derive(Debug)]
pub struct TrainingProgress {
    bar: ProgressBar,
}

impl Default for TrainingProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl TrainingProgress {
    /// A bar that appears when training begins.
    pub fn new() -> Self {
        let bar = ProgressBar::hidden();
        Self { bar }
    }
}

impl Callback for TrainingProgress {
    fn name(&self) -> &str {
        "TrainingProgress"
    }

    fn on_train_begin(&mut self, state: &TrainerState) {
        let bar = ProgressBar::new(state.max_steps);
        let template = "{spinner} train [{elapsed_precise}] {bar:30} {pos}/{len} steps (eta {eta}) {msg}";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_position(state.global_step);
        self.bar = bar;
    }

    fn on_step_end(&mut self, state: &TrainerState, _control: &mut TrainerControl) {
        self.bar.set_position(state.global_step);
    }

    fn on_log(&mut self, _state: &TrainerState, entry: &LogEntry) {
        if let (Some(loss), Some(lr)) = (entry.get("loss"), entry.get("learning_rate")) {
            let speed = entry.get("train_tokens_per_second").copied().unwrap_or(0.0);
            self.bar.set_message(format!("loss {loss:.4} · lr {lr:.2e} · {speed:.0} tokens/s"));
        } else if let Some(eval) = entry.get("eval_loss") {
            self.bar.println(format!("step {}: eval_loss {eval:.4}", entry.get("step").copied().unwrap_or(0.0)));
        }
    }

    fn on_train_end(&mut self, _state: &TrainerState) {
        self.bar.finish();
    }
}
