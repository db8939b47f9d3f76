"""Sharing sweeps out over processes started by torchrun (or accelerate launch): one full model per
process (one per GPU), each taking every world-th job. No scheduler of our own: the launcher's RANK /
WORLD_SIZE environment decides."""

from __future__ import annotations

import os


def rank_world() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment; (0, 1) when not launched."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is not in 0..{world - 1} (WORLD_SIZE={world})")
    return rank, world


def join() -> tuple[int, int]:
    """(rank, world size) as `rank_world`; under a launcher (world > 1) this process first joins the process group
    (NCCL on GPUs, gloo on CPU), once: what the ensemble's split seeds and distributed training all-reduce over."""
    rank, world = rank_world()
    if world == 1:
        return rank, world
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def totals(*counts: int) -> list[int]:
    """Each count summed over the processes of a launch (all-reduce): what a message says once, on rank 0, instead of
    each rank its own share. Alone: the counts as they are. Without a process group yet (a `run` that shards
    samples needs none), one on CPU (gloo) is joined: NCCL would need a GPU per process, which a CPU run on a
    one-GPU machine does not have."""
    rank, world = rank_world()
    if world == 1:
        return [int(c) for c in counts]
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    nccl = dist.get_backend() == "nccl"
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if nccl else torch.device("cpu")
    t = torch.tensor([int(c) for c in counts], dtype=torch.long, device=device)
    dist.all_reduce(t)
    return [int(c) for c in t.tolist()]


def quiet_others() -> int:
    """Under a launcher, ranks other than 0 keep their warnings to themselves (each rank loads the same samples and
    would repeat rank 0's); returns this process's rank."""
    rank, world = rank_world()
    if world > 1 and rank > 0:
        import warnings

        warnings.simplefilter("ignore", UserWarning)
    return rank


def shard(jobs: list, rank: int | None = None, world: int | None = None) -> list:
    """This process's share of `jobs`: every world-th, starting at its rank."""
    if rank is None or world is None:
        rank, world = rank_world()
    return jobs[rank::world]


def local_device(device: str) -> str:
    """Under a launcher, `cuda` means this process's GPU (LOCAL_RANK)."""
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device
