//! How this process was launched: the rank, world size and local rank the launcher's environment gives (Open MPI,
//! MPICH / Intel MPI, Slurm, or torchrun's variables), read before anything else starts.

/// This process's place in a launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The launcher whose variables were found (`Open MPI`, `MPICH`, `Slurm`, `torchrun`), `None` for a plain
    /// start.
    pub launcher: Option<&'static str>,
    /// Processes in the job (1 for a plain start).
    pub world_size: usize,
    /// This process's rank.
    pub rank: usize,
    /// Its rank among the processes on its machine: the GPU it takes.
    pub local_rank: usize,
}

impl Launch {
    /// Whether this is an MPI launch (`mpirun`, `mpiexec`, `srun` with PMI) of more than one process.
    pub fn is_mpi(&self) -> bool {
        self.world_size > 1 && matches!(self.launcher, Some("Open MPI" | "MPICH" | "Slurm"))
    }
}

/// The launch `var` (an environment lookup) describes: Open MPI's `OMPI_COMM_WORLD_*`, MPICH's `PMI_SIZE` /
/// `PMI_RANK` / `MPI_LOCALRANKID`, srun's `SLURM_STEP_NUM_TASKS` / `SLURM_PROCID` / `SLURM_LOCALID`, then torchrun's
/// `WORLD_SIZE` / `RANK` / `LOCAL_RANK`; a plain start is rank 0 of 1.
pub fn launch_from_env(var: impl Fn(&str) -> Option<String>) -> Launch {
    let number = |name: &str| var(name).and_then(|v| v.trim().parse::<usize>().ok());
    let candidates: [(&'static str, [&str; 3]); 4] = [
        ("Open MPI", ["OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"]),
        ("MPICH", ["PMI_SIZE", "PMI_RANK", "MPI_LOCALRANKID"]),
        // srun's, for its job step (a batch script of a many-task allocation is not itself a launch).
        ("Slurm", ["SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "SLURM_LOCALID"]),
        ("torchrun", ["WORLD_SIZE", "RANK", "LOCAL_RANK"]),
    ];
    for (launcher, [size, rank, local]) in candidates {
        if let Some(world_size) = number(size) {
            let rank = number(rank).unwrap_or(0);
            return Launch {
                launcher: Some(launcher),
                world_size: world_size.max(1),
                rank,
                local_rank: number(local).or_else(|| number("LOCAL_RANK")).unwrap_or(0),
            };
        }
    }
    Launch { launcher: None, world_size: 1, rank: 0, local_rank: 0 }
}
