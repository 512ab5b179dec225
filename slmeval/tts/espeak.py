"""espeak-ng speech synthesis: the offline TTS backend (tests, bundled mini tasks, `slmeval synth`).

espeak-ng is deterministic for a given (text, voice, speed, pitch) and version, which makes it the
reproducible choice when no neural TTS weights can be had.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np

from slmeval.audio import TARGET_SR, load_audio


class EspeakError(RuntimeError):
    pass


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakError("espeak-ng is not installed (Debian/Ubuntu: `apt-get install espeak-ng`)")
    return exe


def espeak_version() -> str:
    out = subprocess.run([espeak_binary(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def synthesize(text: str, voice: str = "en-us", *, speed: int | None = None, pitch: int | None = None,
               target_sr: int = TARGET_SR) -> np.ndarray:
    """Speak `text` with an espeak-ng voice (e.g. "en-us", "en-gb+f3", "en-gb-scotland+m2").

    Returns float32 mono at `target_sr` (espeak-ng renders at 22,050 Hz; resampled here).
    """
    if not text.strip():
        raise EspeakError("refusing to synthesise empty text")
    cmd = [espeak_binary(), "-v", voice, "--stdout"]
    if speed is not None:
        cmd += ["-s", str(speed)]
    if pitch is not None:
        cmd += ["-p", str(pitch)]
    # Text goes through stdin so nothing in it is parsed as an option.
    proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        raise EspeakError(f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode(errors='replace').strip()}")
    return load_audio(proc.stdout, target_sr=target_sr, name=f"espeak-ng[{voice}]")
