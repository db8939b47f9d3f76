"""Ctrl-C, made reliable: the handler both raises and remembers, and long loops check the memory between batches.

An exception raised by a signal handler can be lost: when the signal lands while Python runs a finalizer (a
`__del__`, e.g. of a closing ffmpeg pipe), the exception is printed as "ignored" and the run goes on. So the
handler also sets a flag; every long loop calls `check()` between batches (raising `Interrupted` there), and
the CLI exits 130 at the end if the flag is set, whatever happened in between.
"""

from __future__ import annotations

import signal

_FLAG = {"set": False}


class Interrupted(BaseException):
    """Ctrl-C, raised as our own exception: not an Exception (no `except Exception` turns it into an error
    message) and not a KeyboardInterrupt (which the CLI framework swallows silently)."""


def _handler(signum, frame):
    _FLAG["set"] = True
    raise Interrupted()


def install() -> None:
    """Handle SIGINT in this process (the CLI's entry point calls it)."""
    _FLAG["set"] = False
    signal.signal(signal.SIGINT, _handler)


def interrupted() -> bool:
    return _FLAG["set"]


def check() -> None:
    """Raise Interrupted if Ctrl-C came since `install()` (between batches of a long loop)."""
    if _FLAG["set"]:
        raise Interrupted()
