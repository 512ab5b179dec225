"""Tasks: the registry (`registry.py`: built-ins in tasks/, entry points, --include-path), task-file
parsing with `include:` (`files.py`), and where each task's data comes from (`data.py`)."""
