//! Data-parallel training through the collective seam, with an in-process double of it (threads and a barrier
//! standing in for MPI's processes): two ranks with accumulation 1 equal one process with accumulation 2 (losses,
//! gradient norms, adapters bit for bit), a short last window leaves a rank idle, evaluation is sharded, only rank 0
//! writes, early stopping and a stop flag end every rank together.

use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};

use sft_collate::Sampling;
use sft_train::{
    Collective, EarlyStopping, EarlyStoppingConfig, IntervalStrategy, Result, StopReason, TrainOutput, Trainer,
    TrainingArguments,
};

use crate::{args, examples, lora, model, source};

/// The ranks of one in-process "job": a barrier and a slot per rank for the buffers being combined.
#[derive(Debug)]
struct Job {
    barrier: Barrier,
    f32s: Mutex<Vec<Vec<f32>>>,
    f64s: Mutex<Vec<Vec<f64>>>,
}

/// Rank `rank` of a [`Job`]: sums add the ranks' buffers in rank order (the same sums on every rank).
#[derive(Debug, Clone)]
struct ThreadCollective {
    rank: usize,
    world: usize,
    job: Arc<Job>,
}

impl ThreadCollective {
    fn job(world: usize) -> Vec<Self> {
        let job = Arc::new(Job {
            barrier: Barrier::new(world),
            f32s: Mutex::new(vec![Vec::new(); world]),
            f64s: Mutex::new(vec![Vec::new(); world]),
        });
        (0..world).map(|rank| Self { rank, world, job: job.clone() }).collect()
    }

    fn reduce<T: Copy + std::ops::Add<Output = T>>(&self, slots: &Mutex<Vec<Vec<T>>>, values: &mut [T]) {
        slots.lock().unwrap()[self.rank] = values.to_vec();
        self.job.barrier.wait();
        {
            let all = slots.lock().unwrap();
            for (i, v) in values.iter_mut().enumerate() {
                *v = (1..self.world).fold(all[0][i], |sum, r| sum + all[r][i]);
            }
        }
        self.job.barrier.wait();
    }
}

impl Collective for ThreadCollective {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world
    }
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        self.reduce(&self.job.f32s, values);
        Ok(())
    }
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<()> {
        self.reduce(&self.job.f64s, values);
        Ok(())
    }
    fn broadcast(&self, values: &mut [f32]) -> Result<()> {
        if self.rank == 0 {
            self.job.f32s.lock().unwrap()[0] = values.to_vec();
        }
        self.job.barrier.wait();
        if self.rank != 0 {
            values.copy_from_slice(&self.job.f32s.lock().unwrap()[0]);
        }
        self.job.barrier.wait();
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        self.job.barrier.wait();
        Ok(())
    }
}

/// 7 micro-batches of 1 per epoch (the last window of two has one: rank 1 idles), evaluation every 2 steps.
fn dp_args(dir: &Path, accumulation: usize) -> TrainingArguments {
    TrainingArguments {
        per_device_train_batch_size: 1,
        gradient_accumulation_steps: accumulation,
        num_train_epochs: 2.0,
        eval_strategy: IntervalStrategy::Steps,
        eval_steps: Some(2),
        save_strategy: IntervalStrategy::Steps,
        save_steps: 3,
        ..args(dir)
    }
}

/// Runs `world` ranks in threads, each with its trainer made by `make` (given its collective); their outputs.
fn ranks<'a>(
    world: usize,
    make: impl Fn(ThreadCollective) -> (Trainer<'a>, sft_peft::LoraConfig) + Sync,
) -> Vec<TrainOutput> {
    let collectives = ThreadCollective::job(world);
    std::thread::scope(|scope| {
        let handles: Vec<_> = collectives
            .into_iter()
            .map(|collective| {
                let make = &make;
                scope.spawn(move || {
                    let (mut trainer, config) = make(collective);
                    trainer.train(model(&config)).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn history(out: &TrainOutput, key: &str) -> Vec<f64> {
    out.state.log_history.iter().filter_map(|e| e.get(key).copied()).collect()
}

#[test]
fn two_ranks_equal_one_process_with_twice_the_accumulation() {
    let config = lora(); // dropout 0.1: a micro-batch draws by its index in the window, whichever rank runs it
    let (train, eval) = (examples(7, 21), examples(5, 22));
    let one_dir = tempfile::tempdir().unwrap();
    let mut one = Trainer::new(
        dp_args(one_dir.path(), 2),
        config.clone(),
        "micro",
        source(&train, 1, Sampling::Shuffle { seed: 4 }),
        Some(source(&eval, 2, Sampling::Sequential)),
    )
    .unwrap();
    assert_eq!(one.total_steps(), 8, "ceil(7 / 2) steps per epoch, 2 epochs");
    let one = one.train(model(&config)).unwrap();

    let dp_dir = tempfile::tempdir().unwrap();
    let outs = ranks(2, |collective| {
        let trainer = Trainer::new(
            dp_args(dp_dir.path(), 1),
            config.clone(),
            "micro",
            source(&train, 1, Sampling::Shuffle { seed: 4 }),
            Some(source(&eval, 2, Sampling::Sequential)),
        )
        .unwrap()
        .with_collective(collective);
        assert_eq!(trainer.total_steps(), 8, "the window is world × accumulation micro-batches");
        (trainer, config.clone())
    });
    assert_eq!(history(&one, "loss").len(), 8);
    assert_eq!(history(&one, "grad_norm").len(), 8);
    for out in &outs {
        assert_eq!(out.state.world_size, 2);
        // Bit for bit: the same micro-batches, the same dropout masks, the same sums (a + b on two ranks).
        assert_eq!(history(out, "loss"), history(&one, "loss"), "losses");
        assert_eq!(history(out, "grad_norm"), history(&one, "grad_norm"), "gradient norms");
        assert_eq!(crate::adapters(&out.model), crate::adapters(&one.model), "adapters");
        // Evaluation: sharded over the ranks, its sums all-reduced in f64 (one process sums in f32 on the device).
        let (a, b) = (history(out, "eval_loss"), history(&one, "eval_loss"));
        assert_eq!(a.len(), 4);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-6 * y.abs(), "eval_loss {a:?} vs {b:?}");
        }
    }
    // Rank 0 wrote the run's files once: the same adapter bytes as the single process, the same checkpoints.
    let file = |dir: &Path| std::fs::read(dir.join("adapter_model.safetensors")).unwrap();
    assert_eq!(file(dp_dir.path()), file(one_dir.path()));
    let checkpoints = |dir: &Path| sft_train::list_checkpoints(dir).unwrap().len();
    assert_eq!(checkpoints(dp_dir.path()), checkpoints(one_dir.path()));
    let lines = |dir: &Path| std::fs::read_to_string(dir.join(sft_train::METRICS_FILE)).unwrap().lines().count();
    assert_eq!(lines(dp_dir.path()), lines(one_dir.path()), "metrics.jsonl written by rank 0 alone");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dp_dir.path().join("trainer_state.json")).unwrap()).unwrap();
    assert_eq!(state["world_size"], 2);
}

#[test]
fn only_rank_0_writes() {
    let config = lora();
    let train = examples(6, 23);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let outs = ranks(2, |collective| {
        let dir = dirs[collective.rank()].path();
        let args = TrainingArguments { eval_strategy: IntervalStrategy::No, ..dp_args(dir, 1) };
        let trainer = Trainer::new(args, config.clone(), "micro", source(&train, 1, Sampling::Sequential), None)
            .unwrap()
            .with_collective(collective);
        (trainer, config.clone())
    });
    assert_eq!(outs[0].state.global_step, 6);
    let listing = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    assert!(listing(dirs[0].path()).contains(&"adapter_model.safetensors".to_owned()));
    assert!(listing(dirs[0].path()).iter().any(|n| n.starts_with("checkpoint-")));
    assert_eq!(listing(dirs[1].path()), Vec::<String>::new(), "rank 1 writes nothing");
}

#[test]
fn early_stopping_and_a_stop_flag_end_every_rank_together() {
    let config = lora();
    let (train, eval) = (examples(8, 24), examples(4, 25));
    // Early stopping with an improvement threshold no evaluation meets: both ranks see the same (all-reduced)
    // metrics and stop at the same step.
    let dir = tempfile::tempdir().unwrap();
    let outs = ranks(2, |collective| {
        let args = TrainingArguments {
            max_steps: 12,
            eval_steps: Some(1),
            metric_for_best_model: Some("eval_loss".into()),
            ..dp_args(dir.path(), 1)
        };
        let stopping = EarlyStopping::new(
            EarlyStoppingConfig { early_stopping_patience: 2, early_stopping_threshold: 10.0 },
            "eval_loss",
            false,
        );
        let trainer = Trainer::new(
            args,
            config.clone(),
            "micro",
            source(&train, 1, Sampling::Sequential),
            Some(source(&eval, 2, Sampling::Sequential)),
        )
        .unwrap()
        .with_collective(collective)
        .with_callback(stopping);
        (trainer, config.clone())
    });
    assert_eq!(outs[0].stop, StopReason::Stopped);
    assert_eq!(outs[0].state.global_step, 3, "the first evaluation sets the best, two more fail to improve");
    assert_eq!((outs[1].stop, outs[1].state.global_step), (outs[0].stop, outs[0].state.global_step));

    // A stop flag (SIGINT) raised on rank 1 alone: both ranks stop after the first step, with a checkpoint.
    let dir = tempfile::tempdir().unwrap();
    let outs = ranks(2, |collective| {
        let rank = collective.rank();
        let args = TrainingArguments { eval_strategy: IntervalStrategy::No, max_steps: 4, ..dp_args(dir.path(), 1) };
        let trainer = Trainer::new(args, config.clone(), "micro", source(&train, 1, Sampling::Sequential), None)
            .unwrap()
            .with_collective(collective);
        if rank == 1 {
            trainer.stop_flag().store(true, std::sync::atomic::Ordering::SeqCst);
        }
        (trainer, config.clone())
    });
    for out in &outs {
        assert_eq!((out.stop, out.state.global_step), (StopReason::Interrupted, 1));
    }
    assert!(dir.path().join("checkpoint-1").is_dir());
}

#[test]
fn a_checkpoint_resumes_only_with_its_world_size() {
    let config = lora();
    let train = examples(6, 26);
    let dir = tempfile::tempdir().unwrap();
    let args = TrainingArguments {
        eval_strategy: IntervalStrategy::No,
        max_steps: 2,
        save_steps: 2,
        ..dp_args(dir.path(), 2)
    };
    let mut alone =
        Trainer::new(args.clone(), config.clone(), "micro", source(&train, 1, Sampling::Sequential), None).unwrap();
    alone.train(model(&config)).unwrap();
    // The same run continued on two ranks (accumulation 1: the same global batch) is refused on every rank,
    // before any collective operation.
    let args = TrainingArguments {
        gradient_accumulation_steps: 1,
        resume_from_checkpoint: Some(sft_train::ResumeFrom::Latest(true)),
        max_steps: 2,
        ..args
    };
    for collective in ThreadCollective::job(2) {
        let mut trainer =
            Trainer::new(args.clone(), config.clone(), "micro", source(&train, 1, Sampling::Sequential), None)
                .unwrap()
                .with_collective(collective);
        let err = trainer.check_resume().unwrap_err().to_string();
        assert!(
            err.contains("the number of processes (world size) was 1 in this checkpoint's run and is 2 now"),
            "{err}"
        );
    }
}

#[test]
fn the_launch_is_read_from_the_launchers_variables() {
    use sft_train::launch_from_env;
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    };
    let plain = launch_from_env(env(&[]));
    assert_eq!((plain.launcher, plain.world_size, plain.rank, plain.is_mpi()), (None, 1, 0, false));
    let ompi = launch_from_env(env(&[
        ("OMPI_COMM_WORLD_SIZE", "8"),
        ("OMPI_COMM_WORLD_RANK", "5"),
        ("OMPI_COMM_WORLD_LOCAL_RANK", "1"),
    ]));
    assert_eq!((ompi.launcher, ompi.world_size, ompi.rank, ompi.local_rank), (Some("Open MPI"), 8, 5, 1));
    assert!(ompi.is_mpi());
    let mpich = launch_from_env(env(&[("PMI_SIZE", "4"), ("PMI_RANK", "3"), ("MPI_LOCALRANKID", "3")]));
    assert_eq!((mpich.launcher, mpich.rank, mpich.local_rank), (Some("MPICH"), 3, 3));
    let slurm = launch_from_env(env(&[("SLURM_STEP_NUM_TASKS", "2"), ("SLURM_PROCID", "1"), ("SLURM_LOCALID", "0")]));
    assert_eq!((slurm.launcher, slurm.world_size, slurm.rank), (Some("Slurm"), 2, 1));
    // A batch script in a many-task allocation (no srun step) is a plain start.
    let batch = launch_from_env(env(&[("SLURM_NTASKS", "8"), ("SLURM_PROCID", "0")]));
    assert_eq!((batch.launcher, batch.world_size), (None, 1));
    // torchrun's variables describe a launch, but not one through MPI.
    let torchrun = launch_from_env(env(&[("WORLD_SIZE", "2"), ("RANK", "1"), ("LOCAL_RANK", "1")]));
    assert_eq!((torchrun.launcher, torchrun.world_size, torchrun.is_mpi()), (Some("torchrun"), 2, false));
}
