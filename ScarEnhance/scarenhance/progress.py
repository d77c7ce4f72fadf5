"""Progress reporting and cancellation shared by inference and training.

Engine functions take ``progress(fraction, message)`` and an optional ``cancel`` event. The command
line shows that progress in one of three ways (`cli_mode`):

- ``bar``: a tqdm bar on stderr with the elapsed time, the time left and the current stage (for people);
- ``lines``: one flushed ``PROGRESS 0.4200 message`` line per report on stderr (for programs: the
  Slicer module's process runner parses them with `parse_progress`);
- ``none``: nothing.

``--progress MODE`` chooses; without it ``$SCARENHANCE_PROGRESS`` does (the Slicer runner sets
``lines``); without either, a terminal gets the bar and a pipe or file gets nothing.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Callable, Optional

from .errors import Cancelled

ProgressFn = Callable[[float, str], None]
PREFIX = "PROGRESS"
ENV = "SCARENHANCE_PROGRESS"
MODES = ("auto", "bar", "lines", "none")
_STEPS = 1000  # the bar counts permille: tqdm's rate and time left need whole steps
_TEXT = 44  # characters of the stage shown after the bar


def no_progress(fraction: float, message: str) -> None:
    """Default callback: report nothing."""


def check_cancel(cancel: Optional[threading.Event]) -> None:
    """Raise Cancelled if the caller set the event."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user")


def format_progress(fraction: float, message: str) -> str:
    return f"{PREFIX} {min(max(fraction, 0.0), 1.0):.4f} {message}"


def parse_progress(line: str) -> Optional[tuple[float, str]]:
    """(fraction, message) for a progress line, None for any other line."""
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) < 2 or parts[0] != PREFIX:
        return None
    try:
        fraction = float(parts[1])
    except ValueError:
        return None
    return fraction, parts[2] if len(parts) > 2 else ""


def cli_mode(requested: "str | None" = None, stream=None) -> str:
    """'bar', 'lines' or 'none': `requested` (--progress), else $SCARENHANCE_PROGRESS, else a bar on a
    terminal and nothing on a pipe. An unknown mode is an InputError."""
    from .errors import InputError

    stream = stream or sys.stderr
    mode = (requested or os.environ.get(ENV, "") or "auto").strip().lower()
    if mode not in MODES:
        source = "--progress" if requested else f"${ENV}"
        raise InputError(f"{source} must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto":
        mode = "bar" if getattr(stream, "isatty", lambda: False)() else "none"
    return mode


class CliProgress:
    """The command line's progress callback in one mode; `echo` prints a line without breaking the bar."""

    def __init__(self, mode: str):
        self.mode = mode
        self._bar = None

    def __call__(self, fraction: float, message: str) -> None:
        if self.mode == "lines":
            print(format_progress(fraction, message), file=sys.stderr, flush=True)
        elif self.mode == "bar":
            self._advance(min(max(fraction, 0.0), 1.0), message)

    def _advance(self, fraction: float, message: str) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=_STEPS, file=sys.stderr, dynamic_ncols=True, leave=True, smoothing=0.1,
                             bar_format="{percentage:3.0f}%|{bar}| {elapsed}<{remaining} {desc}")
        shown = message if len(message) <= _TEXT else message[: _TEXT - 1] + "…"
        self._bar.set_description_str(f"{shown:<{_TEXT}}", refresh=False)  # fixed width: the bar does not jump
        self._bar.update(round(fraction * _STEPS) - self._bar.n)
        if fraction >= 1.0:
            self.close()

    def echo(self, line: str) -> None:
        """Print `line` on stdout; above the bar while one is shown."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


_cli: Optional[CliProgress] = None


def set_cli_mode(requested: "str | None" = None) -> CliProgress:
    """Choose how `cli_progress` reports (see `cli_mode`); cli.main calls it with --progress."""
    global _cli
    if _cli is not None:
        _cli.close()
    _cli = CliProgress(cli_mode(requested))
    return _cli


def cli_progress(fraction: float, message: str) -> None:
    """Callback used by the command line, in the mode `set_cli_mode` chose (or the default one)."""
    (_cli or set_cli_mode())(fraction, message)


def echo(line: str) -> None:
    """A line of command output on stdout that does not break a progress bar."""
    (_cli or set_cli_mode()).echo(line)


def close_cli() -> None:
    """End the bar, if one is shown, and forget the mode (the next command chooses again)."""
    global _cli
    if _cli is not None:
        _cli.close()
        _cli = None


def scaled(progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """A callback that maps a sub-task's [0, 1] onto [start, end] of the parent's."""
    return lambda f, m: progress(start + (end - start) * f, m)
