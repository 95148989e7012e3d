//! Progress bars (indicatif) for the binaries: Hub downloads and uploads, tokenization, training (steps, with the
//! last logged loss, learning rate and tokens/s) and evaluation. They draw on stderr, only on a terminal, and only
//! after [`enable`]: the pipeline's functions stay silent for library users.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sft_hub::{Direction, TransferObserver};
use sft_train::{Callback, LogEntry, TrainerControl, TrainerState, keys};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the bars on for this process, Hub transfers included.
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
    sft_hub::set_transfer_observer(Arc::new(TransferBars::default()));
}

/// Sends `tracing` logs to stderr for a binary: the `RUST_LOG` filter, else `default` (`"warn"`, `"info"`), with
/// ANSI colours only when stderr is a terminal and `NO_COLOR` is unset or empty (no-color.org), so that
/// `cargo run --example legal_clauses 2> log.txt` writes plain text.
pub fn init_logging(default: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)))
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}

/// Whether [`enable`] was called.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst)
}

/// A bar of `len` units drawn with `template`, or a hidden one when bars are off.
pub fn bar(len: u64, template: &str) -> ProgressBar {
    if !enabled() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A bar for the `total` batches of an evaluation.
pub fn eval_bar(total: usize) -> ProgressBar {
    bar(total as u64, "{spinner} eval  [{elapsed_precise}] {bar:30} {pos}/{len} batches")
}

/// One bar per file transferred to or from the Hub, with bytes and speed.
#[derive(Debug, Default)]
struct TransferBars {
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl TransferObserver for TransferBars {
    fn start(&self, file: &str, total_bytes: u64, direction: Direction) {
        let verb = match direction {
            Direction::Download => "download",
            Direction::Upload => "upload  ",
        };
        let template = format!("{{spinner}} {verb} {{msg}} {{bar:30}} {{bytes}}/{{total_bytes}} ({{bytes_per_sec}})");
        let bar = bar(total_bytes, &template);
        bar.set_message(file.to_owned());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(file.to_owned(), bar);
        }
    }

    fn advance(&self, file: &str, bytes_done: u64) {
        if let Some(bar) = self.bars.lock().ok().and_then(|b| b.get(file).cloned()) {
            bar.set_position(bytes_done);
        }
    }

    fn finish(&self, file: &str) {
        if let Some(bar) = self.bars.lock().ok().and_then(|mut b| b.remove(file)) {
            bar.finish_and_clear();
        }
    }
}

/// The training bar, with an evaluation bar below it during evaluations; add it with `Trainer::with_callback`.
#[derive(Debug)]
pub struct TrainingProgress {
    bars: MultiProgress,
    train: ProgressBar,
    eval: Option<ProgressBar>,
}

impl Default for TrainingProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl TrainingProgress {
    /// Bars that appear when training begins (if [`enable`]d).
    pub fn new() -> Self {
        Self { bars: MultiProgress::new(), train: ProgressBar::hidden(), eval: None }
    }
}

impl Callback for TrainingProgress {
    fn name(&self) -> &str {
        "TrainingProgress"
    }

    fn on_train_begin(&mut self, state: &TrainerState) {
        let template = "{spinner} train [{elapsed_precise}] {bar:30} {pos}/{len} steps (eta {eta}) {msg}";
        self.train = self.bars.add(bar(state.max_steps, template));
        self.train.set_position(state.global_step);
    }

    fn on_step_end(&mut self, state: &TrainerState, _control: &mut TrainerControl) {
        self.train.set_position(state.global_step);
    }

    fn on_prediction_step(&mut self, _state: &TrainerState, done: usize, total: usize) {
        let eval = self.eval.get_or_insert_with(|| self.bars.add(eval_bar(total)));
        eval.set_position(done as u64);
        if done >= total
            && let Some(eval) = self.eval.take()
        {
            eval.finish_and_clear();
            self.bars.remove(&eval);
        }
    }

    fn on_log(&mut self, _state: &TrainerState, entry: &LogEntry) {
        if let (Some(loss), Some(lr)) = (entry.get(keys::LOSS), entry.get(keys::LEARNING_RATE)) {
            let speed = entry.get(keys::TRAIN_TOKENS_PER_SECOND).copied().unwrap_or(0.0);
            self.train.set_message(format!("loss {loss:.4} · lr {lr:.2e} · {speed:.0} tokens/s"));
        } else if let Some(eval) = entry.get(keys::EVAL_LOSS) {
            self.train.println(format!("step {}: eval_loss {eval:.4}", entry.get("step").copied().unwrap_or(0.0)));
        }
    }

    fn on_train_end(&mut self, _state: &TrainerState) {
        self.train.finish();
    }
}
