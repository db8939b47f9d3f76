"""The typer application and what every command shares: error handling, input checks, common options."""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.console import Console
from typer.core import TyperCommand

# options whose empty value means something (an empty negative prompt, no command recorded); any other empty value
# (`--task ""`, `--out ""`, which typer would take as the current folder) is refused naming the option
EMPTY_ALLOWED = frozenset({"--negative-prompt", "--command"})
INT64 = 2 ** 63  # no count, size or seed of any option is beyond 64 bits (torch and numpy overflow)


class CheckedCommand(TyperCommand):
    """Every command's values checked as parsed, whatever the option (so an option added tomorrow is covered): an
    empty value, or an integer beyond 64 bits, is a usage error naming the option (exit 2), before the command runs."""

    def parse_args(self, ctx, args):
        opts = {o: p for p in self.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
        for i, a in enumerate(map(str, args)):  # (called from Python, an argument may be a number)
            before = str(args[i - 1]) if i else None
            if a.startswith("--") and "=" in a and a.split("=", 1)[0] in opts:
                before, a = a.split("=", 1)
            if not a.strip() and before in opts and before not in EMPTY_ALLOWED \
                    and not getattr(opts[before], "is_flag", False):
                raise typer.BadParameter(f"empty value {a!r}: give a value, or leave the option out", ctx=ctx,
                                         param=opts[before], param_hint=f"'{before}'")
        rest = super().parse_args(ctx, args)
        for p in self.params:
            v = ctx.params.get(p.name)
            for x in v if isinstance(v, (list, tuple)) else [v]:
                if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= INT64:
                    raise typer.BadParameter(f"{x} is beyond 64 bits: no count, size or seed is that large",
                                             ctx=ctx, param=p)
                if isinstance(x, str) and not x.strip() and p.param_type_name == "argument":
                    raise typer.BadParameter(f"empty value {x!r}: give a value", ctx=ctx, param=p)
        return rest


class CheckedTyper(typer.Typer):
    """A Typer whose commands are CheckedCommands."""

    def command(self, *args, cls=None, **kw):
        return super().command(*args, cls=cls or CheckedCommand, **kw)


app = CheckedTyper(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
tasks_app = CheckedTyper(no_args_is_help=True, help="Procedural reasoning tasks.")
app.add_typer(tasks_app, name="tasks")
LOG_WIDTH = 1000  # columns of a console that writes to a log, not a terminal: rich would wrap at 80


def _console(stream, **kw) -> Console:
    """A rich console for stdout or stderr: in a terminal, its width; in a log (a pipe, a file, torchrun's), wide,
    so that lines and table rows are never cut (COLUMNS, when set, wins)."""
    import os

    tty = getattr(stream, "isatty", lambda: False)()
    return Console(**kw, **({} if tty or os.environ.get("COLUMNS") else {"width": LOG_WIDTH}))


console = _console(sys.stdout)
err = _console(sys.stderr, stderr=True, soft_wrap=True)

DEBUG = False


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="show the Python traceback of an error")):
    """steplens: trace, probe and improve how video diffusion models reason along denoising steps."""
    global DEBUG
    DEBUG = debug


def _ints(v: Optional[str], option: str = "") -> Optional[list[int]]:
    if v is None:
        return None
    try:
        return [int(x) for x in v.split(",")]
    except ValueError:
        raise ValueError(f"{option + ' ' if option else ''}expected comma-separated integers, got {v!r}") from None


def _check(device=None, out=None, out_file=None):
    """The options outside the bundles checked before any work or write (steplens.io.checks); stale temp files of
    killed runs removed (the bundles check their own: steplens.cli.options, inputs, run_options)."""
    from ..io import checks
    from ..io.files import clean_stale_temps

    if device is not None:
        checks.device(device)
    if out is not None:
        checks.out_dir(out)
        clean_stale_temps(out)
    if out_file is not None:
        checks.out_file(out_file)


def _bounded(data=None, counts: dict | None = None, seeds: dict | None = None) -> None:
    """Counts that work is made of, refused above a stated maximum before any work (a run, not a --plan, which prices
    any count): generated samples (--count ...; a folder's are what it holds) and seeds or budgets of one sample."""
    from ..io import checks

    for option, v in (counts or {}).items():
        if data is None:
            checks.bounded(option, v, checks.MAX_COUNT, "generated samples per run")
    for option, vs in (seeds or {}).items():
        for v in vs or []:
            checks.bounded(option, v, checks.MAX_PARTICLES, "seeds or plain runs per sample")


def _with_sampling(s, sp):
    """Experiment settings with the resolved sampling (a pipeline's preset recorded in its configs)."""
    extra = {"sampling": sp.describe()} if sp.extra else {}
    return s.model_copy(update={"steps": sp.steps, "shift": sp.shift, "guidance": sp.guidance, **extra})


def _settings(**kw):
    from ..experiments.grid import ExperimentSettings

    return ExperimentSettings(**{k: v for k, v in kw.items() if v is not None})


def _errors():
    from pydantic import ValidationError

    return (ValueError, OSError, ValidationError, FloatingPointError)  # NaN/inf in a run: named with its step


def _pydantic_message(e) -> str:
    from pydantic import ValidationError

    if isinstance(e, ValidationError):  # a field's error names the field and the value; a whole-model one is whole
        return "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg'].removeprefix('Value error, ')} "
                         f"(got {err.get('input')!r})"
                         if err["loc"] else err["msg"].removeprefix("Value error, ") for err in e.errors())
    return str(e)


def _fail(e: Exception) -> None:
    if DEBUG:
        raise e
    from rich.markup import escape

    from ..io.checks import shorten

    # the message as written (long values shortened): brackets in it (a list, an extra such as steplens[ray]) are not markup
    err.print(f"[bold red]error:[/] {escape(shorten(_pydantic_message(e)))}", markup=True, highlight=False)
    raise typer.Exit(2)


def main():  # pragma: no cover  (the console script; tests call `app` through typer's runner)
    """The steplens command: Ctrl-C exits 130 with one line saying what was kept; no traceback unless --debug."""
    from ..io import interrupt

    interrupt.install()
    code = 0
    try:
        app()
    except (interrupt.Interrupted, KeyboardInterrupt):
        code = 130
    except SystemExit as e:  # typer exits through SystemExit; a Ctrl-C lost in a finalizer still counts
        code = e.code
    if code == 130 or interrupt.interrupted():
        err.print("interrupted: every output written so far is whole and kept (no half-written file); run the same "
                  "command again to resume where it stopped")
        sys.exit(130)
    sys.exit(code)
