"""Built-in task files. This folder ships inside the slmeval wheel as the package `slmeval.tasks`
(setup.py maps it; an editable install maps it back here), so `slmeval.task_loader.registry` finds the same files
in a checkout and in an installed copy. Only the *.yaml files (and Python files that assign TASKS)
are tasks; `_*.yaml` files are shared bases that tasks `include:`."""
