"""Progress reporting and cancellation shared by inference and training.

Engine functions take ``progress(fraction, message)`` and an optional ``cancel`` event. The CLI turns
progress into machine-readable lines (``PROGRESS 0.4200 message``) on stderr, which the Slicer
module's process runner parses.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable, Optional

from .errors import Cancelled

ProgressFn = Callable[[float, str], None]
PREFIX = "PROGRESS"


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


def cli_progress(fraction: float, message: str) -> None:
    """Callback used by the command line: one flushed line per report."""
    print(format_progress(fraction, message), file=sys.stderr, flush=True)


def scaled(progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """A callback that maps a sub-task's [0, 1] onto [start, end] of the parent's."""
    return lambda f, m: progress(start + (end - start) * f, m)
