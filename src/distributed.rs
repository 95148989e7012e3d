//! Joining a data-parallel launch: the collective this process trains with, from the launcher's environment
//! ([`sft_train::launch_from_env`]). Under `mpirun` / `mpiexec` / `srun` with more than one process, MPI (a binary
//! built with `--features mpi`); alone, [`SingleProcess`]. A torchrun-style launch (`WORLD_SIZE` > 1 without MPI)
//! and an MPI launch of a binary without the `mpi` feature are errors saying how to launch, before any work.

use sft_train::{Collective, Launch, SingleProcess, TrainError, launch_from_env};

use crate::error::Result;

/// This process's launch, read from the environment (alone: rank 0 of 1).
pub fn launch() -> Launch {
    launch_from_env(|name| std::env::var(name).ok())
}

/// The collective of `launch` ([`launch`]; its `local_rank` picks the GPU).
pub fn join_launch(launch: &Launch) -> Result<Box<dyn Collective>> {
    let refuse = |message: String| TrainError::Collective { operation: "launch", message };
    if launch.world_size <= 1 {
        return Ok(Box::new(SingleProcess));
    }
    if !launch.is_mpi() {
        return Err(refuse(format!(
            "WORLD_SIZE={} (a torchrun-style launch): sft trains on several processes through MPI; launch with \
             `mpirun -n {} sft train --config …` (or `srun`), with a binary built with `--features mpi`",
            launch.world_size, launch.world_size
        ))
        .into());
    }
    mpi_collective(launch)
}

#[cfg(feature = "mpi")]
fn mpi_collective(launch: &Launch) -> Result<Box<dyn Collective>> {
    let collective = sft_train::collective::MpiCollective::init()?;
    if collective.world_size() != launch.world_size || collective.rank() != launch.rank {
        return Err(TrainError::Collective {
            operation: "MPI_Init",
            message: format!(
                "MPI says rank {} of {}, the launcher's environment ({:?}) rank {} of {}",
                collective.rank(),
                collective.world_size(),
                launch.launcher,
                launch.rank,
                launch.world_size
            ),
        }
        .into());
    }
    tracing::info!(rank = launch.rank, world_size = launch.world_size, local_rank = launch.local_rank, "joined MPI");
    Ok(Box::new(collective))
}

#[cfg(not(feature = "mpi"))]
fn mpi_collective(launch: &Launch) -> Result<Box<dyn Collective>> {
    Err(TrainError::Collective {
        operation: "launch",
        message: format!(
            "started by {} as rank {} of {}, but this binary was built without MPI: build it with \
             `cargo build --release --features mpi` (needs libopenmpi-dev or MPICH, and libclang)",
            launch.launcher.unwrap_or("an MPI launcher"),
            launch.rank,
            launch.world_size
        ),
    }
    .into())
}
