"""`RunSettings`: every option of one evaluation run, declared once.

`slmeval run`, `slmeval sweep`, `slmeval.evaluate(...)` and `run_sweep(...)` all take their run options
from here (lm-eval's `EvaluatorConfig` is the model: a dataclass built from CLI options, a file or
keywords). What makes two runs "the same run" — the resume fingerprint of a task and the fields a
sweep compares before skipping a finished checkpoint — is also defined here (`run_identity`,
`sweep_identity`), so the two cannot disagree. Their JSON fields are the ones results.json always
recorded: existing partial results and finished sweeps still match.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

__all__ = ["RunSettings", "SettingsError", "resolve_settings", "run_identity", "sweep_identity"]


class SettingsError(ValueError):
    """A settings file or keyword that is not a run option (or not of its type)."""


@dataclass(frozen=True)
class RunSettings:
    """The options of one run (CLI: `slmeval run --help`; each field is the option of the same name)."""
    data_root: str | Path | None = None             # folder holding the benchmark downloads
    tokenizer: str | Any | None = None              # preset, folder, 'kind:key=value,...', or a UnitTokenizer
    protocol: str = "slmeval"                       # scoring preset (slmeval.scoring.PROTOCOLS) or "recipe"
    protocol_args: str | dict | None = None         # preset field overrides, "score=sum" or a dict
    model_args: str | dict | None = None            # adapter / mapping / loading options
    batch_size: int = 8
    device: str = "cpu"
    dtype: str = "float32"
    output: str | Path | None = None                # folder for results.json + samples; None: nothing written
    include_path: Sequence[str | Path] | None = None   # extra folders of task files
    cache_dir: str | Path | None = None             # unit cache (default $SLMEVAL_CACHE or ~/.cache/slmeval)
    use_cache: bool = True
    logprob_backend: str = "auto"
    export: str | Sequence[str] | None = None       # exports to write from the tasks that declare them
    allow_pickle: bool = False
    resume: bool = False
    progress: bool = True
    limit: int | None = None                        # first N pairs per task: a partial run

    @classmethod
    def from_kwargs(cls, where: str = "keyword", **kwargs: Any) -> "RunSettings":
        """Settings from keywords; an unknown name is one error listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise SettingsError(f"{where}: unknown run setting(s) {unknown}; known: {sorted(known)}")
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> "RunSettings":
        """Settings from a JSON or YAML mapping of option names (as `save` writes them)."""
        path = Path(path).expanduser()
        try:
            text = path.read_text()
        except OSError as err:
            raise SettingsError(f"{path}: cannot read the settings file ({err.strerror or err})") from None
        if path.suffix in (".yaml", ".yml"):
            import yaml

            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise SettingsError(f"{path}: not a YAML settings file ({err})") from None
        else:
            try:
                raw = json.loads(text)
            except ValueError as err:
                raise SettingsError(f"{path}: not a JSON settings file ({err})") from None
        if not isinstance(raw, dict):
            raise SettingsError(f"{path}: expected a mapping of run settings, got {type(raw).__name__}")
        settings = cls.from_kwargs(str(path), **raw)
        settings.check(str(path))
        return settings

    def check(self, where: str = "settings") -> None:
        """Types a file or a caller could get wrong, each named (bool is not a batch size)."""
        for name, kinds in _SCALARS.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
                raise SettingsError(f"{where}: {name} = {value!r}: expected {' or '.join(k.__name__ for k in kinds)}")

    def replace(self, **changes: Any) -> "RunSettings":
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise SettingsError(f"unknown run setting(s) {unknown}")
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-able: paths as strings (a tokenizer object as its identity, when it has one)."""
        out = {}
        for name, value in asdict(self).items():
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, (list, tuple)):
                value = [str(v) if isinstance(v, Path) else v for v in value]
            elif name == "tokenizer" and value is not None and not isinstance(value, str):
                value = getattr(value, "identity", repr(value))
            out[name] = value
        return out

    def save(self, path: str | Path) -> None:
        from slmeval.io import write_json

        write_json(path, self.to_dict())


_SCALARS: dict[str, tuple[type, ...]] = {
    "protocol": (str,), "batch_size": (int,), "device": (str,), "dtype": (str,), "use_cache": (bool,),
    "logprob_backend": (str,), "allow_pickle": (bool,), "resume": (bool,), "progress": (bool,), "limit": (int,),
    "data_root": (str, Path), "output": (str, Path), "cache_dir": (str, Path)}
_OPTIONAL = {"limit", "data_root", "output", "cache_dir"}
DEFAULTS = {f.name: f.default for f in fields(RunSettings) if f.default is not MISSING}


def resolve_settings(settings: RunSettings | None, options: dict, where: str) -> RunSettings:
    """`settings` with the keyword `options` that differ from their defaults applied over it (the keyword
    form alone when `settings` is None); an unknown keyword is one error naming `where`."""
    given = RunSettings.from_kwargs(where, **options)
    if settings is None:
        return given
    if not isinstance(settings, RunSettings):
        raise TypeError(f"{where}: settings must be a RunSettings, got {type(settings).__name__}")
    return settings.replace(**{k: v for k, v in options.items() if not _is_default(k, v)})


def _is_default(name: str, value: Any) -> bool:
    default = DEFAULTS[name]
    return value is default or (type(value) is type(default) and value == default)


def _before_model(settings: RunSettings, tokenizer_identity: Any, protocol: dict) -> dict:
    return {"tokenizer": tokenizer_identity, "protocol": protocol, "batch_size": settings.batch_size}


def run_identity(settings: RunSettings, model_description: dict, tokenizer_identity: Any, protocol: dict,
                 backend: str) -> dict:
    """results.json's `config` (less `distributed`) and, with the task's config, the resume fingerprint:
    two runs with the same identity and data are the same run. Field order is the recorded one."""
    return {**model_description, **_before_model(settings, tokenizer_identity, protocol),
            "logprob_backend": backend, "data_root": str(settings.data_root) if settings.data_root else None,
            "limit": settings.limit}


def sweep_identity(settings: RunSettings, tokenizer_identity: Any, protocol: dict) -> dict:
    """The part of `run_identity` a sweep can know before a checkpoint loads: a finished checkpoint whose
    results.json `config` holds these values (and the same model files) is not evaluated again."""
    # limit: a settings file may give a sweep one; a partial run must not pass for a finished checkpoint
    return {**_before_model(settings, tokenizer_identity, protocol), "dtype": settings.dtype,
            "data_root": str(settings.data_root) if settings.data_root else None, "limit": settings.limit}
