"""The steplens command line: `app` (typer) and `main` (the console script).

    app.py      the typer application, error handling and the checks every command shares
    options.py  the bundle mechanism (@bundles, part) and the model, sampling, engine and search bundles; `load`
    inputs.py   the sample and score bundles; run_options.py: ensemble, plan, and compare's, study's, probe's own
    cmd_*.py    the commands, one family each (tasks; run and score; eval; trace and demo; probe and compare;
                study and report; train and export)
"""

from __future__ import annotations

from . import cmd_tasks, cmd_run, cmd_eval, cmd_trace, cmd_probe, cmd_study, cmd_train  # noqa: F401  (registers them)
from .app import app, main

__all__ = ["app", "main"]


def __getattr__(name: str):
    if name == "click_app":  # the click command behind the typer app (the docs site's CLI reference reads it)
        import typer

        return typer.main.get_command(app)
    raise AttributeError(name)
