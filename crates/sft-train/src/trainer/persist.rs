//! Checkpoints (writing, rotation) and resume (checks, reloading the adapter).

use super::*;

impl Trainer<'_> {
    /// Writes `checkpoint-<step>` (adapter, optimizer, state, arguments), then applies `save_total_limit`.
    pub(super) fn save_checkpoint(
        &mut self,
        model: &LlamaForCausalLM<LoraLinear>,
        optimizer: &AdamW,
        scaler: Option<&GradScaler>,
        state: &mut TrainerState,
    ) -> Result<PathBuf> {
        let output_dir = self.output_dir();
        let step = state.global_step;
        let dir = crate::checkpoint::checkpoint_dir(&output_dir, step);
        if state.best_global_step == Some(step) {
            state.best_model_checkpoint = Some(dir.display().to_string());
        }
        state.stateful_callbacks =
            self.callbacks.iter().filter_map(|c| c.state().map(|s| (c.name().to_owned(), s))).collect();
        // Rank 0 writes; the others wait for the checkpoint to be complete.
        let written = if self.collective.is_main() {
            let written = write_checkpoint(&output_dir, step, |tmp| {
                save_adapter(model, &self.lora_config, &self.base_model_name, tmp)?;
                optimizer.save(&tmp.join(OPTIMIZER_FILE))?;
                if let Some(scaler) = scaler {
                    scaler.save(&tmp.join(SCALER_FILE))?;
                }
                self.save_arguments(tmp)?;
                state.save(tmp)
            })?;
            tracing::info!(checkpoint = %written.display(), step, "checkpoint saved");
            if let Some(limit) = self.args.save_total_limit {
                let keep = state.best_model_checkpoint.as_deref().map(Path::new);
                rotate_checkpoints(&output_dir, limit, keep)?;
            }
            written
        } else {
            dir
        };
        self.collective.barrier()?;
        for callback in &mut self.callbacks {
            callback.on_save(state, &written);
        }
        Ok(written)
    }

    /// Writes `training_args.json` and (when set) `run_config.json` into `dir`, each atomically.
    pub(super) fn save_arguments(&self, dir: &Path) -> Result<()> {
        let error = |file: &str| {
            let path = dir.join(file);
            move |source| TrainError::Json { path, source }
        };
        let args = serde_json::to_vec_pretty(&self.args).map_err(error(TRAINING_ARGS_FILE))?;
        sft_model::write_atomic(&dir.join(TRAINING_ARGS_FILE), &args)?;
        if let Some(config) = &self.run_config {
            let config = serde_json::to_vec_pretty(config).map_err(error(RUN_CONFIG_FILE))?;
            sft_model::write_atomic(&dir.join(RUN_CONFIG_FILE), &config)?;
        }
        Ok(())
    }

    /// With `resume_from_checkpoint`, checks the checkpoint before anything heavy happens (the CLI calls this
    /// before it loads the model): its files against their checksums, its `trainer_state.json`, and that this run
    /// (micro-batches per epoch, optimizer steps, seed) can continue it exactly. Returns the checkpoint, if any.
    /// [`train`](Self::train) makes the same checks itself when this was not called.
    pub fn check_resume(&mut self) -> Result<Option<PathBuf>> {
        Ok(self.checked_resume()?.map(|(dir, _)| dir))
    }

    /// The checkpoint to resume from and its state, checked as [`check_resume`](Self::check_resume) says; its
    /// files are hashed once per checkpoint, however often this is called.
    pub(super) fn checked_resume(&mut self) -> Result<Option<(PathBuf, TrainerState)>> {
        let Some(dir) = self.resume_dir()? else { return Ok(None) };
        if self.verified.as_ref() != Some(&dir) {
            verify_checkpoint(&dir)?;
            self.verified = Some(dir.clone());
        }
        let state = TrainerState::load(&dir)?;
        self.check_resumable(&state, &dir, self.total_steps())?;
        Ok(Some((dir, state)))
    }

    pub(super) fn resume_dir(&self) -> Result<Option<PathBuf>> {
        match &self.args.resume_from_checkpoint {
            None | Some(ResumeFrom::Latest(false)) => Ok(None),
            Some(ResumeFrom::Latest(true)) => latest_checkpoint(&self.output_dir()).map(Some),
            Some(ResumeFrom::Path(path)) => Ok(Some(PathBuf::from(path))),
        }
    }

    pub(super) fn check_resumable(&self, state: &TrainerState, dir: &Path, total: u64) -> Result<()> {
        let differs = |what: &str, saved: String, now: String| TrainError::Checkpoint {
            path: dir.into(),
            message: format!("{what} was {saved} in this checkpoint's run and is {now} now; it cannot resume exactly"),
        };
        if state.batches_per_epoch != self.train.batches_per_epoch() {
            let (a, b) = (state.batches_per_epoch, self.train.batches_per_epoch());
            return Err(differs("the number of micro-batches per epoch", a.to_string(), b.to_string()));
        }
        if state.max_steps != total {
            return Err(differs("the number of optimizer steps", state.max_steps.to_string(), total.to_string()));
        }
        if state.world_size != self.collective.world_size() {
            let (a, b) = (state.world_size, self.collective.world_size());
            return Err(differs("the number of processes (world size)", a.to_string(), b.to_string()));
        }
        if state.seed != self.args.seed {
            return Err(differs("training_args.seed", state.seed.to_string(), self.args.seed.to_string()));
        }
        Ok(())
    }
}

/// The model with its adapters (and `modules_to_save`) replaced by those saved in `dir`.
pub(super) fn reload_adapter(model: LlamaForCausalLM<LoraLinear>, dir: &Path) -> Result<LlamaForCausalLM<LoraLinear>> {
    let base =
        model.map_projections(|_, p: LoraLinear| -> std::result::Result<BaseLinear, PeftError> { Ok(p.base) })?;
    let (model, _) = load_adapter(base, dir)?;
    Ok(model)
}
