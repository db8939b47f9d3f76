"""Sharing sweeps out over processes started by torchrun (or accelerate launch): one full model per
process (one per GPU, its LOCAL_RANK), each taking its share of the jobs. No scheduler of our own: the launcher's
RANK / WORLD_SIZE environment decides who takes part; `assign` decides, the same way on every process, who takes
which job (balanced by cost); `Coordinator` is what the processes say to each other (a gloo group: barriers and
small objects), `check_shared` that they all see one output folder."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

# how long a process waits at exit for the others to leave too (a killed rank never says so)
LEAVE_WAIT = __import__("datetime").timedelta(seconds=20)
# how long a process waits at a barrier for the others: their last jobs (the balance is by cost, not time)
WAIT = timedelta(days=7)


def check_launcher() -> None:
    """`accelerate launch --cpu --num_processes N` (N > 1) starts ONE process: with --cpu accelerate takes its simple
    launcher, which sets ACCELERATE_USE_CPU and, for N > 1, MASTER_ADDR/MASTER_PORT, but starts no others and sets no
    WORLD_SIZE (accelerate/utils/launch.py; several CPU processes need `accelerate config`'s MULTI_CPU, over
    mpirun). Refused, instead of one process silently doing all the work."""
    env = os.environ
    mpi = any(k in env for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"))
    if env.get("ACCELERATE_USE_CPU", "").lower() == "true" and "MASTER_ADDR" in env and "WORLD_SIZE" not in env \
            and not mpi:
        raise ValueError("accelerate launch --cpu with --num_processes > 1 starts only one process (accelerate's simple "
                         "launcher: MASTER_ADDR is set, WORLD_SIZE is not), so this would run everything in one "
                         "process; for several CPU processes use torchrun --nproc_per_node N -m steplens.cli ... "
                         "--device cpu (or accelerate launch with a MULTI_CPU config over mpirun), or drop "
                         "--num_processes")


def rank_world() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment; (0, 1) when not launched (`check_launcher` first)."""
    check_launcher()
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
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=WAIT)
        _leave_at_exit()
    return dist.get_rank(), world


def _leave_at_exit() -> None:
    """Destroy the process group when the process ends, all ranks together: each says in the store that it is
    leaving and waits (at most LEAVE_WAIT) until all have said so, then destroys its group. A rank that exits with its
    gloo group alive, or destroys it while another rank is still running, can abort in the group's threads ("terminate
    called without an active exception", SIGABRT). On 2 processes, all-done torchrun `run` reruns aborted 1 of 25
    with the destroy alone, 3 of 25 with rank 0 destroying last, 0 of 50 with this wait
    (benchmarks/dist_exit_aborts.py)."""
    import atexit

    def leave():
        import torch.distributed as dist

        if not dist.is_initialized():
            return
        try:
            rank, world = dist.get_rank(), dist.get_world_size()
            store = dist.distributed_c10d._get_default_store()
            store.set(f"steplens/left/{rank}", "1")
            try:
                store.wait([f"steplens/left/{r}" for r in range(world)], LEAVE_WAIT)
            except Exception:  # noqa: BLE001 - a rank that died does not say so: leave after the wait
                pass
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001 - leaving anyway
            pass
    atexit.register(leave)


def is_writer() -> bool:
    """Whether this process writes what is written once (tables, plots, reports): rank 0, or the only one."""
    return rank_world()[0] == 0


class Coordinator:
    """What the processes of one launch say to each other: barriers, and one rank's object handed to all (a gloo
    group, on CPU, whatever backend the model's collectives use). One process alone: every call returns at once."""

    _group = None

    def __init__(self):
        self.rank, self.world = join()
        if self.world > 1 and Coordinator._group is None:
            import torch.distributed as dist

            Coordinator._group = dist.new_group(backend="gloo", timeout=WAIT) \
                if dist.get_backend() != "gloo" else dist.group.WORLD

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier(group=Coordinator._group)

    def broadcast(self, obj, src: int = 0):
        """`obj` of rank `src`, on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj if self.rank == src else None]
        dist.broadcast_object_list(box, src=src, group=Coordinator._group)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        got = [None] * self.world
        dist.all_gather_object(got, obj, group=Coordinator._group)
        return got


def check_same_options(command: str, options: dict) -> None:
    """Under a launcher, every process compares its command and options with the others' before any work: a launch
    whose processes were started differently (a per-rank wrapper, an edited script) is refused on every process,
    naming each option that differs and its value on each rank, instead of crashing in a collective later or
    mixing two configurations in one store. Alone: nothing to compare."""
    import json

    rank, world = rank_world()
    if world == 1:
        return
    mine = {"command": command, **{k: json.loads(json.dumps(v, default=str)) for k, v in options.items()}}
    views = Coordinator().gather(mine)
    differ = [k for k in dict.fromkeys(k for v in views for k in v) if len({json.dumps(v.get(k)) for v in views}) > 1]
    if differ:
        said = "; ".join(f"{'' if k == 'command' else '--'}{k.replace('_', '-')}: "
                         + ", ".join(f"rank {r} {v.get(k)}" for r, v in enumerate(views)) for k in differ)
        raise ValueError(f"the {world} processes of this launch were started with different options ({said}); start "
                         f"every process with the same command (torchrun / accelerate launch pass one command to "
                         f"all)")


_SHARED: set[str] = set()
MARKERS = ".steplens-ranks"


def check_shared(out: Path, coord: Coordinator | None = None) -> None:
    """Refuse, on every rank, an output folder that some rank does not share: each rank writes a marker into
    OUT/.steplens-ranks/<token>/ and says which markers it sees; a rank that misses one (another node whose OUT is
    its own disk, not the shared filesystem) is named with its host. Once per folder and process."""
    coord = coord or Coordinator()
    out = Path(out).resolve()
    if coord.world == 1 or str(out) in _SHARED:
        return
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    import uuid

    token = coord.broadcast(uuid.uuid4().hex)
    where = out / MARKERS / token
    where.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    (where / f"rank-{coord.rank}").write_text(host)
    coord.barrier()
    seen = sorted(int(p.name.split("-")[1]) for p in where.glob("rank-*"))
    views = coord.gather((coord.rank, host, seen))
    coord.barrier()
    (where / f"rank-{coord.rank}").unlink(missing_ok=True)
    coord.barrier()
    for p in (where, where.parent):  # every rank: a folder that is not shared has its own copy
        try:
            p.rmdir()
        except OSError:
            pass
    blind = [(r, h, sorted(set(range(coord.world)) - set(s))) for r, h, s in views if len(s) != coord.world]
    if blind:
        said = "; ".join(f"rank {r} on host {h} does not see the markers of rank{'s' if len(m) > 1 else ''} "
                         f"{', '.join(map(str, m))}" for r, h, m in blind)
        raise ValueError(f"the output folder {out} is not one folder shared by all {coord.world} processes: {said}. "
                         f"Under torchrun over several nodes --out must be on a filesystem every node mounts "
                         f"(NFS, Lustre, ...), at the same path")
    _SHARED.add(str(out))


def assign(costs: list[float], world: int) -> list[list[int]]:
    """Jobs (by index) per process, balanced by cost: the costliest job first to the least loaded process (ties:
    the lower index, the lower rank). Deterministic: every process computes the same split."""
    loads = [0.0] * world
    share: list[list[int]] = [[] for _ in range(world)]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        r = min(range(world), key=lambda r: (loads[r], r))
        share[r].append(i)
        loads[r] += costs[i]
    return [sorted(s) for s in share]


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

    if Coordinator._group is not None:  # the processes' own gloo group (on CPU), whatever the model's backend
        t = torch.tensor([int(c) for c in counts], dtype=torch.long)
        dist.all_reduce(t, group=Coordinator._group)
        return [int(c) for c in t.tolist()]
    if not dist.is_initialized():
        dist.init_process_group("gloo")
        _leave_at_exit()
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
