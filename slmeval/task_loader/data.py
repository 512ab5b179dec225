"""Where each task's data comes from: the local `--data-root` layout first, else the pinned public copy
its task file names (slmeval/data/remote.py), from the cache or downloaded on first use.

`resolve_task_data` runs for every task before any audio is decoded or any model is loaded, and gathers
every problem into one error: a cold cache while offline names the exact `slmeval data pull` command for
all the tasks that need it.
"""
from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from slmeval.data.remote import Fetched, RemoteDataError, cached, hub_offline, pull
from slmeval.fmt import format_count
from slmeval.progress import progress_bar
from slmeval.task_loader.registry import TaskConfig, TaskError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskData:
    path: Path
    source: str
    options: dict
    how: str                                      # said in the log and kept in results' provenance
    provenance: dict = field(default_factory=dict)


def _local(cfg: TaskConfig, data_root) -> tuple[Path | None, str]:
    """(the local path when it exists, where we looked). Without a remote copy a missing path is an error."""
    try:
        path, how = cfg.locate(data_root)
    except TaskError:
        if cfg.remote is None:
            raise
        return None, "no --data-root given"
    return (path if path.exists() else None), f"{path} ({how})"


def _from_remote(cfg: TaskConfig, got: Fetched) -> TaskData:
    pin = cfg.remote
    state = "verified" if got.verified else "NOT verified: " + "; ".join(got.reasons)
    where = pin.describe() + (f" (commit {got.commit})" if got.commit and got.commit != getattr(pin, "revision", None)
                              else "")
    if pin.kind == "archive" and got.fetched_from and got.fetched_from != pin.url:
        where += f" (fetched from the mirror {got.fetched_from})"
    if not got.verified:
        log.warning("%s: data from %s is %s", cfg.name, where, state)
    return TaskData(got.path, pin.source or cfg.source, dict(pin.options if pin.options is not None else cfg.options),
                    f"{where}, {state}",
                    {"kind": pin.kind, "from": pin.describe(), "fetched_from": got.fetched_from, "commit": got.commit,
                     "verified": got.verified, "unverified_because": got.reasons, "files": got.files})


def _missing(cfg: TaskConfig, looked: str) -> str:
    hint = ("\nTo try slmeval without downloads, run the bundled mini tasks (marked [mini] by `slmeval tasks`), "
            "or `slmeval demo`.") if not cfg.mini else ""
    return (f"task {cfg.name!r}: no data at {looked} (expected the {cfg.source} layout there).\n"
            f"How to get it: {cfg.how_to_get or 'see ' + cfg.origin}{hint}")


def fetch(cfg: TaskConfig, *, progress: bool = True) -> Fetched:
    """Download (or complete) the task's pinned copy, with a byte progress bar; says what and how large."""
    pin = cfg.remote
    if pin is None:
        raise TaskError(f"task {cfg.name!r} ({cfg.origin}) names no Hub copy or archive to download; "
                        f"how to get its data: {cfg.how_to_get or 'see the task file'}")
    with ExitStack() as stack:
        bar = {"advance": lambda n: None}

        def announce(what: str, n_files: int, size: int) -> None:
            log.info("%s: downloading %s: %d file(s), %s", cfg.name, what, n_files,
                     format_count(size) + "B" if size else "size unknown")
            if size:
                bar["advance"] = stack.enter_context(progress_bar(f"{cfg.name} data", size, enabled=progress))

        try:
            return pull(pin, cfg.name, advance=lambda n: bar["advance"](n), announce=announce)
        except RemoteDataError as err:
            raise TaskError(str(err)) from None


def resolve_task_data(configs: list[TaskConfig], data_root, *, progress: bool = True) -> dict[str, TaskData]:
    """Every task's data, local or remote (downloaded now if needed); one TaskError for all problems."""
    found: dict[str, TaskData] = {}
    problems: list[str] = []
    to_pull: list[TaskConfig] = []
    looked_at: dict[str, str] = {}   # where the local layout was looked for: said again if the download fails
    for cfg in configs:
        try:
            path, looked = _local(cfg, data_root)
        except TaskError as err:
            problems.append(str(err))
            continue
        if path is not None:
            found[cfg.name] = TaskData(path, cfg.source, dict(cfg.options), looked, {"kind": "local"})
            continue
        if cfg.remote is None:
            problems.append(_missing(cfg, looked))
            continue
        got = cached(cfg.remote)
        if got is not None:
            found[cfg.name] = _from_remote(cfg, got)
        else:
            to_pull.append(cfg)
            looked_at[cfg.name] = looked
    if to_pull and hub_offline():
        names = " ".join(c.name for c in to_pull)
        problems.append(f"no data for task(s) {', '.join(c.name for c in to_pull)}: not in the local layout and not "
                        f"in the cache, and HF_HUB_OFFLINE=1 forbids downloading. With network access run "
                        f"`slmeval data pull {names}`, then rerun.")
        to_pull = []
    if problems:
        raise TaskError("\n".join(problems))
    failed = []
    for cfg in to_pull:   # every task is tried: one error at the end names all that failed
        try:
            found[cfg.name] = _from_remote(cfg, fetch(cfg, progress=progress))
        except TaskError as err:   # a user without network needs the local way too
            problems.append(f"{err}\n{_missing(cfg, looked_at[cfg.name])}")
            failed.append(cfg.name)
    if problems:
        raise TaskError("\n".join(problems + ([f"Retry with `slmeval data pull {' '.join(failed)}`."]
                                              if len(failed) > 1 else [])))
    for cfg in configs:
        log.info("%s: data at %s (%s)", cfg.name, found[cfg.name].path, found[cfg.name].how)
    return found


def resolve_for_world(world, configs: list[TaskConfig], data_root, *, progress: bool = True) -> dict[str, TaskData]:
    """Under torchrun rank 0 downloads; the other ranks wait for it and then read the cache, so one
    node never fetches the same files several times at once. Rank 0's error stops every rank."""
    if world.world_size == 1:
        return resolve_task_data(configs, data_root, progress=progress)
    found, error = None, None
    if world.is_main:
        try:
            found = resolve_task_data(configs, data_root, progress=progress)
        except TaskError as err:
            err.reported_by_rank0 = True   # type: ignore[attr-defined]  (the CLI prints it once)
            error, own = str(err), err
    error = world.broadcast(error)
    if error is not None:
        if world.is_main:
            raise own
        failure = TaskError(error)
        failure.reported_by_rank0 = True   # type: ignore[attr-defined]
        raise failure
    return found if found is not None else resolve_task_data(configs, data_root, progress=False)
