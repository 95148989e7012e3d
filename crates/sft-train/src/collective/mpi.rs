//! The collective operations through MPI (the `mpi` crate, rsmpi), on `MPI_COMM_WORLD`: `MPI_Allreduce` with
//! `MPI_SUM`, `MPI_Bcast` from rank 0, `MPI_Barrier`. MPI's default error handler aborts the whole job when a rank
//! fails or dies, so no rank waits forever for one that is gone.

use mpi::collective::SystemOperation;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;

use super::Collective;
use crate::error::{Result, TrainError};

/// MPI's world communicator. Created once per process ([`MpiCollective::init`]); MPI is finalized when it is
/// dropped.
pub struct MpiCollective {
    _universe: mpi::environment::Universe,
    world: SimpleCommunicator,
}

impl std::fmt::Debug for MpiCollective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiCollective").field("rank", &self.world.rank()).field("size", &self.world.size()).finish()
    }
}

impl MpiCollective {
    /// Initializes MPI (once per process: a second call is an error).
    pub fn init() -> Result<Self> {
        let universe = mpi::initialize().ok_or_else(|| TrainError::Collective {
            operation: "MPI_Init",
            message: "MPI is already initialized in this process".into(),
        })?;
        let world = universe.world();
        Ok(Self { _universe: universe, world })
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn world_size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        let send = values.to_vec();
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }

    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<()> {
        let send = values.to_vec();
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }

    fn broadcast(&self, values: &mut [f32]) -> Result<()> {
        self.world.process_at_rank(0).broadcast_into(values);
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        self.world.barrier();
        Ok(())
    }
}
