"""The run options of `slmeval run` and `slmeval sweep`, each declared once (lighteval's cli_args.py is the
model: typer `Annotated` option types). A command takes an option by annotating a parameter with its
type here, so the two commands cannot drift apart in spelling, default or help text; every option
maps onto the `RunSettings` field of the same name (`settings_from_cli`)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from slmeval.settings import RunSettings


def _protocol_names() -> str:
    """The registered presets (built-in and plugins), as `--protocol` help lists them."""
    from slmeval.scoring.protocol import PROTOCOLS

    return " | ".join(PROTOCOLS.names())


Tasks = Annotated[str, typer.Option("--tasks", "-t", help="Comma-separated task names (see `slmeval tasks`).")]
DataRoot = Annotated[Optional[Path], typer.Option("--data-root", help="Folder holding the benchmark downloads.")]
Tokenizer = Annotated[Optional[str], typer.Option(
    "--tokenizer", help="Preset (e.g. mhubert-25hz-l11-km500), tokenizer dir or 'kind:key=value,...' (e.g. "
    "'hubert:model=ORG/NAME@REV,layer=11,centroids=km500.npy'). Default: the checkpoint's unit_tokenizer.json, "
    "else its family's recipe (docs/models.md).")]
ProtocolName = Annotated[str, typer.Option(
    "--protocol", help=f"Scoring preset: {_protocol_names()}, or recipe (the model family's own, to reproduce its "
    "paper). Default: slmeval for every model.")]
ProtocolArgs = Annotated[Optional[str], typer.Option("--protocol-args", help="Override preset fields, e.g. score=sum.")]
ModelArgs = Annotated[Optional[str], typer.Option(
    "--model-args", "--model_args", help="adapter=,revision=,pretrained=,offset=,bos_id=,eos_id=,pad_id=,"
    "convention=twist|slamkit|slm_scaling,force=,trust_remote_code=,max_length= (a sweep applies them to every "
    "checkpoint).")]
BatchSize = Annotated[int, typer.Option("--batch-size", "--batch_size", "-b", min=1)]
Device = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, ... (torchrun: cuda = cuda:LOCAL_RANK)")]
Dtype = Annotated[str, typer.Option("--dtype", help="float32 | bfloat16 | float16")]
IncludePath = Annotated[Optional[list[Path]], typer.Option("--include-path", "--include_path",
                                                           help="Extra folder of task files.")]
CacheDir = Annotated[Optional[Path], typer.Option("--cache-dir", help="Unit cache (default $SLMEVAL_CACHE or "
                                                  "~/.cache/slmeval).")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the unit cache (a sweep still "
                                       "tokenises each file once, into a cache kept for this sweep only).")]
AllowPickle = Annotated[bool, typer.Option("--allow-pickle", help="Allow sklearn-pickle k-means files (runs "
                                           "pickled code).")]
Resume = Annotated[bool, typer.Option("--resume", help="Reuse per-task results of an interrupted run in --output; a "
                                      "sweep also skips checkpoints already evaluated with the same model files and "
                                      "settings.")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress")]
LogprobBackend = Annotated[str, typer.Option("--logprob-backend", help="auto | torch | triton")]
Export = Annotated[Optional[str], typer.Option(
    "--export", help="Comma-separated exports (`slmeval plugins exports`), e.g. zerospeech: written from the tasks "
    "whose task file declares it.")]
Limit = Annotated[Optional[int], typer.Option("--limit", help="Score only the first N pairs of each task (as lm-eval's "
                                              "--limit; marked as a partial run, refused by the leaderboard).")]
SettingsFile = Annotated[Optional[Path], typer.Option(
    "--settings", help="A JSON or YAML file of run settings (RunSettings fields, e.g. as `slmeval.settings` saves "
    "them); options given on the command line override it.")]


def settings_from_cli(ctx: typer.Context, settings_file: Path | None, values: dict[str, Any]) -> RunSettings:
    """RunSettings from `--settings FILE` (if any) with the options given on this command line over it.

    `values` maps RunSettings fields to the parsed option values; an option left at its default does not
    override the file (click records where each value came from)."""
    base = RunSettings.from_file(settings_file) if settings_file is not None else RunSettings()
    given = {}
    for name, value in values.items():
        param = "no_cache" if name == "use_cache" else name
        source = ctx.get_parameter_source(param)
        # by name: typer may carry its own copy of click, whose ParameterSource is another enum
        if settings_file is None or getattr(source, "name", "DEFAULT") != "DEFAULT":
            given[name] = value
    return base.replace(**given)
