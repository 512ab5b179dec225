"""Built-in task files. This folder ships inside the slmeval wheel as the package `slmeval.tasks`
(setup.py maps it; an editable install maps it back here), so `slmeval.task_loader.registry` finds the same files
in a checkout and in an installed copy. One folder per benchmark (README.md: paper, citation, variants
and the published setup each matches; `_template.yaml`: what the variants share; one small file per
variant), found recursively. Only the *.yaml files (and Python files that assign TASKS) are tasks;
`_*.yaml` files are shared templates that tasks `include:`; a variant declares its own leaderboard
section, exports and version."""
