"""Data parallelism on torchrun: which rank does which share of the work, and how the shares meet.

`torchrun --nproc-per-node N -m slmeval run ...` (or a multi-node torchrun) starts the processes and
sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; torch.distributed moves the data
(gloo on CPU, NCCL on GPUs). slmeval keeps no process pool or socket protocol of its own.

Every rank reads the task; each tokenises its share of the unique audio and scores its share of the
sequences (shares dealt by size, so ranks finish together); the shares are all-gathered, so every rank
holds the same results, and only rank 0 writes files. An error on one rank (bad audio in its share)
is passed to every rank, so the run stops with that one message instead of hanging in a collective;
a rank that dies outright is reported by torchrun, which stops the others.
"""
from __future__ import annotations

import atexit
import heapq
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
TIMEOUT_ENV = "SLMEVAL_DIST_TIMEOUT_S"   # collective timeout (default 1800 s): a hung peer ends the run


class DistributedError(ValueError):
    """Work failed on another rank (the message names the rank and its error), or a bad launch."""


class DeviceError(ValueError):
    """A --device this process cannot use (not a torch device, or no such accelerator here)."""


def check_device(device: str, what: str = "--device") -> str:
    """`device` itself when torch can put tensors there; else DeviceError naming the option.

    Checked before any model or audio work: otherwise a CPU-only torch reports `cuda` from deep inside
    `Module.to` as an AssertionError ("Torch not compiled with CUDA enabled") — a traceback."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise DeviceError(f"{what} {device!r}: not a torch device ({str(err).splitlines()[0]}); expected cpu, "
                          "cuda, cuda:N or mps") from None
    if parsed.type == "cpu":
        return device
    backend = {"cuda": torch.cuda, "mps": getattr(torch.backends, "mps", None)}.get(parsed.type) \
        or getattr(torch, parsed.type, None)
    if backend is None or not hasattr(backend, "is_available"):
        raise DeviceError(f"{what} {device!r}: slmeval runs on cpu, cuda or mps, not {parsed.type}")
    if not backend.is_available():
        build = "this torch build has no CUDA support" if parsed.type == "cuda" and torch.version.cuda is None \
            else f"no {parsed.type} device is visible to this process"
        raise DeviceError(f"{what} {device!r}: {build} (torch {torch.__version__}); use --device cpu")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if parsed.index is not None and parsed.index >= count:
        raise DeviceError(f"{what} {device!r}: only {count} {parsed.type} device(s) here (indices 0..{count - 1})")
    return device


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> dict:
        return {"world_size": self.world_size, "backend": self.backend}

    def share(self, weights: Sequence[float]) -> list[int]:
        """Indices of the items this rank works on. Largest item first, each to the least-loaded rank
        (ties: the lower rank): totals come out even, and every rank computes the same split."""
        load = [(0.0, r) for r in range(self.world_size)]
        mine = []
        for i in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
            total, rank = heapq.heappop(load)
            if rank == self.rank:
                mine.append(i)
            heapq.heappush(load, (total + float(weights[i]), rank))
        return sorted(mine)

    def map(self, fn: Callable[[list[T]], Sequence[R]], items: Sequence[T],
            weights: Sequence[float] | None = None) -> list[R]:
        """`fn` over this rank's share of `items` (one result per item, in order) → every item's result,
        on every rank. With one process this is just `fn(items)`."""
        if self.world_size == 1:
            return list(fn(list(items)))
        out: list = [None] * len(items)
        for indices, results in self._gather(lambda part: list(fn(part)), items, weights):
            for i, value in zip(indices, results):
                out[i] = value
        return out

    def map_columns(self, fn: Callable[[list[T]], tuple[np.ndarray, ...]], items: Sequence[T],
                    weights: Sequence[float] | None = None) -> tuple[np.ndarray, ...]:
        """As `map`, for an `fn` that returns columns (a tuple of 1-D arrays, one entry per item): every
        item's values as whole arrays, with no Python object per item (a task's 200,000 sequence scores)."""
        if self.world_size == 1:
            return tuple(fn(list(items)))
        out: list[np.ndarray] | None = None
        for indices, columns in self._gather(lambda part: tuple(fn(part)), items, weights):
            if out is None:         # every rank's fn gives the same dtypes, even on an empty share
                out = [np.empty(len(items), dtype=c.dtype) for c in columns]
            for whole, column in zip(out, columns):
                whole[np.asarray(indices, dtype=np.int64)] = column
        return tuple(out or ())

    def _gather(self, fn: Callable[[list[T]], Any], items: Sequence[T],
                weights: Sequence[float] | None) -> list[tuple[list[int], Any]]:
        """(indices, fn of them) of every rank; a failure on any rank raised on all of them."""
        mine = self.share(weights if weights is not None else [1.0] * len(items))
        error: tuple[str, str] | None = None
        part: Any = None
        try:
            part = fn([items[i] for i in mine])
            if any(len(x) != len(mine) for x in (part if isinstance(part, tuple) else (part,))):
                raise RuntimeError(f"results of another length than the {len(mine)} items")
        except Exception as err:   # noqa: BLE001 - sent to every rank, re-raised below
            error, own = (type(err).__name__, str(err)), err
            err.reported_by_rank0 = True       # type: ignore[attr-defined]  (the CLI prints it once)
        gathered = self.all_gather((mine, part, error))
        failed = [(rank, err) for rank, (_, _, err) in enumerate(gathered) if err is not None]
        if failed:
            rank, (kind, message) = failed[0]
            if rank == self.rank:
                raise own
            raise DistributedError(f"rank {rank} of {self.world_size} failed: {kind}: {message}")
        return [(indices, results) for indices, results, _ in gathered]

    def all_gather(self, obj: object) -> list:
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: T) -> T:
        """Rank 0's `obj` on every rank (what rank 0 read from its disk, e.g. a finished unit of work)."""
        if self.world_size == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def shard_sources(world: World, sources: Sequence[object], fn: Callable[[list[int]], tuple[Sequence, ...]]
                  ) -> tuple[list, ...]:
    """Audio work shared out: `fn(indices)` returns parallel lists (e.g. units, content hashes) for the
    sources at `indices`; each unique file is given to one rank (dealt by file size) and every source's
    results come back in order, on every rank. Encoded bytes are not compared here (the tokenizer
    deduplicates contents within a share)."""
    if world.world_size == 1:        # nothing to share out: no path normalising, no file sizes (a stat each)
        return tuple(list(column) for column in fn(list(range(len(sources)))))
    keys = [("path", os.path.abspath(s)) if isinstance(s, (str, os.PathLike)) else ("item", i)
            for i, s in enumerate(sources)]
    first: dict[tuple, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    unique = list(first.values())
    results = world.map(lambda part: list(zip(*fn(part))) if part else [], unique,
                        weights=[_size(sources[i]) for i in unique])
    by_key = {keys[i]: row for i, row in zip(unique, results)}
    return tuple(list(column) for column in zip(*(by_key[key] for key in keys)))


def _size(source: object) -> float:
    if isinstance(source, (bytes, bytearray)):
        return float(len(source))
    try:
        return float(os.path.getsize(source))   # type: ignore[arg-type]
    except (OSError, TypeError):
        return 0.0        # a missing file: the tokenizer reports it by name


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"environment variable {name}={raw!r}: expected an integer (set by torchrun)") from None


def env_rank() -> int:
    """This process's global rank as torchrun set it (0 without torchrun); no process group needed."""
    return _env_int("RANK", 0)


def world_device(device: str) -> str:
    """The device this rank uses: under torchrun with CUDA, `cuda` means cuda:LOCAL_RANK."""
    world_size, local_rank = _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0)
    if world_size == 1 or not device.startswith("cuda"):
        return device
    if device != "cuda":
        local_world = _env_int("LOCAL_WORLD_SIZE", world_size)
        if local_world > 1:
            raise DistributedError(f"--device {device} under torchrun with {local_world} processes per node: pass "
                                   "--device cuda (each rank then uses cuda:LOCAL_RANK)")
        return device
    return f"cuda:{local_rank}"


def current_world(device: str = "cpu") -> World:
    """This process's place in a torchrun job (a world of one without torchrun). Joins the process group
    on first use: NCCL when the device is CUDA, gloo otherwise."""
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size == 1:
        return World()
    import torch
    import torch.distributed as dist

    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if not dist.is_available():
        raise DistributedError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(torch.device(world_device(device)))
        timeout = timedelta(seconds=_env_int(TIMEOUT_ENV, 1800))
        dist.init_process_group(backend=backend, timeout=timeout)
        atexit.register(_leave)
        log.info("rank %d of %d joined (%s)", rank, world_size, backend)
    if dist.get_world_size() != world_size or dist.get_rank() != rank:
        raise DistributedError(f"process group ({dist.get_rank()} of {dist.get_world_size()}) disagrees with "
                               f"RANK={rank}, WORLD_SIZE={world_size}")
    return World(rank, world_size, local_rank, dist.get_backend())


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
