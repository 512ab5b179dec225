"""Results layer: results.json + samples files written together (`files.py`), samples lines (`samples.py`),
every number re-derived from the samples (`verify.py`), `--resume` partials (`resume.py`) and the checks
before any work (`preflight.py`)."""
