"""Data-parallel training under torchrun (DDP): ``torchrun --nproc_per_node=N -m cnnlab train ...``
or ``cnnlab train --nproc N ...`` (which starts torchrun).

Every rank holds the whole training split on its device and draws the same global batch (the
order and the augmentation are seeded from ``(seed, epoch)`` alike on every rank); each rank then
takes its shard of it (``torch.tensor_split``: near-equal parts), and DDP averages the gradients,
so ``train.batch_size`` stays the global batch and N ranks take the same steps as one process on
the same batches (up to the order of float summation; dropout masks differ, being drawn per
shard). Rank 0 alone writes the run directory; the other ranks wait for its checkpoints. The
training metrics of an epoch are summed over the ranks; validation and test are evaluated on the
whole split by every rank (the same weights give the same numbers everywhere, so decisions such as
early stopping agree without a message). Callbacks run on rank 0 only unless they set
``all_ranks = True`` (early stopping does). Backend: NCCL on CUDA (one GPU per rank,
``cuda:LOCAL_RANK``), gloo on the CPU. Under ``torchrun --max-restarts K`` a dead rank makes
torchrun restart every rank; the restarted job resumes its run from the last checkpoint (rank 0
notes the run directory in ``runs_dir/.torchrun-<job id>``; many machines need ``runs_dir`` on a
shared filesystem for this). Many machines: ``torchrun --nnodes M --node_rank K
--rdzv_endpoint HOST:PORT --nproc_per_node N -m cnnlab train ...`` on each (README).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    """This process's place among the ranks (world 1: a plain single-process run)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per rank on a node; the CPU is shared."""
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def shard(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This rank's part of a global batch."""
        if not self.enabled:
            return tensors
        return tuple(torch.tensor_split(t, self.world)[self.rank] for t in tensors)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the ranks (in place; the tensor itself on one rank)."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def share(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wait(self) -> None:
        """Every rank reaches this point before any goes on (rank 0's files are written)."""
        if self.enabled:
            dist.barrier()


def current_group() -> Group:
    """The group torchrun started this process in (its environment), joined on first use."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Group()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # torchrun's store outlives a restart of the workers: without a prefix per attempt, the
        # restarted ranks would read the dead ranks' addresses and fail to connect
        store, rank, size = next(dist.rendezvous("env://"))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(backend, store=dist.PrefixStore(f"cnnlab/attempt-{attempt}", store),
                                rank=rank, world_size=size)
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def sync_batch_norm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` with every batch norm layer replaced, in place, by :class:`torch.nn.SyncBatchNorm`
    (``model.sync_bn``): mean and variance over the global batch, all-reduced across the ranks
    in each forward pass, instead of over the rank's shard. The parameters and running
    statistics are the same tensors (a frozen scale stays frozen); the state-dict keys are
    unchanged, so checkpoints load either way."""
    from cnnlab.errors import ConfigError

    if device.type != "cuda":
        raise ConfigError(f"model.sync_bn: torch's SyncBatchNorm runs on CUDA only (this run uses {device}); "
                          "set model.sync_bn=false")
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if converted is not model:  # the network itself is a batch norm: nothing to keep in place
        raise ConfigError("model.sync_bn: the model is a single batch-norm layer")
    return model


def wrap(model: torch.nn.Module, group: Group, device: torch.device, sync_bn: bool = False) -> torch.nn.Module:
    """The module that computes the training forward pass: DDP over ``model`` when distributed
    (its gradients are averaged over the ranks in the backward pass), else ``model`` itself.
    ``sync_bn`` (with more than one rank): :func:`sync_batch_norm` first."""
    if not group.enabled:
        return model
    if sync_bn and group.world > 1:
        sync_batch_norm(model, device)
    import warnings

    from torch.nn.parallel import DistributedDataParallel

    # channels_last weights with one input channel: both stride layouts are valid, DDP warns anyway
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


# -- torchrun's restarts ---------------------------------------------------------------------
def _marker(runs_dir) -> Path | None:
    """Where rank 0 notes the run directory of this torchrun job (its id survives restarts)."""
    job = os.environ.get("TORCHELASTIC_RUN_ID")
    return Path(runs_dir) / f".torchrun-{job}" if job else None


def remember_run(runs_dir, run_path: Path) -> None:
    marker = _marker(runs_dir)
    if marker is not None:
        from cnnlab.atomic import atomic_write

        with atomic_write(marker, "w") as f:
            f.write(str(run_path))


def restarted_run(runs_dir) -> Path | None:
    """After torchrun restarted the workers (``--max-restarts``: a rank died), the run this job
    began, to resume from its last checkpoint; None on a first start or before any checkpoint."""
    marker = _marker(runs_dir)
    if marker is None or int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) == 0 or not marker.is_file():
        return None
    path = Path(marker.read_text(encoding="utf-8").strip())
    return path if (path / "checkpoints" / "last.pt").is_file() else None


def forget_run(runs_dir) -> None:
    """The job finished: its note is no longer needed."""
    marker = _marker(runs_dir)
    if marker is not None and current_group().main:
        marker.unlink(missing_ok=True)
