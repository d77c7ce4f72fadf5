"""Runs one `scarenhance` command in a child Python process and reports on it.

Inside Slicer the child is `PythonSlicer` (Slicer's own Python, with the packages the installer put
there); elsewhere it is the current interpreter. A reader thread turns the child's output into events
on a queue: `PROGRESS 0.42 message` lines (scarenhance.progress) become `Progress` events, every other
line a `Log` event, and the exit a `Finished` event. The caller drains the queue with `poll()` on its
own thread (Slicer: a QTimer on the GUI thread; scripts and tests: `wait()`), so callbacks never run on
the reader thread. `cancel()` kills the whole process tree (the engine may start workers) and the run
ends with `RunStatus.CANCELLED`, distinct from a failure.

No Qt, no Slicer: the runner is tested with a plain Python child.
"""

from __future__ import annotations

import enum
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

# The folder that holds the `scarenhance` package: the child imports the engine from here, so a module
# path added to Slicer works without installing the engine with pip.
ENGINE_ROOT = Path(__file__).resolve().parent.parent


class PanelState(enum.Enum):
    """What the module panel shows; drives the Apply/Cancel button and the status line."""

    IDLE = "idle"
    RUNNING = "running"  # the child process is working
    IMPORTING = "importing"  # the child finished; results are being loaded into the scene
    CANCELLING = "cancelling"  # Cancel was clicked; the process tree is being killed
    FAILED = "failed"  # the last run ended with an error (the status line says which)


class RunStatus(enum.Enum):
    """How a run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Progress:
    fraction: float  # [0, 1] of the whole command
    message: str  # stage, e.g. "enhancing slice 3/8"
    elapsedS: float  # seconds since the process started
    remainingS: Optional[float]  # estimated seconds left, None until an estimate is meaningful


@dataclass(frozen=True)
class Log:
    line: str


@dataclass(frozen=True)
class Finished:
    status: RunStatus
    returnCode: Optional[int]


Event = Union[Progress, Log, Finished]


def pythonExecutable() -> str:
    """Slicer's `PythonSlicer` when it is on PATH (it is inside Slicer), else this interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


def engineCommand(args: list[str], python: Optional[str] = None) -> list[str]:
    """argv for `python -m scarenhance.cli ARGS`."""
    return [python or pythonExecutable(), "-m", "scarenhance.cli", *map(str, args)]


def engineEnvironment(base: Optional[dict] = None) -> dict:
    """The child's environment: the engine importable, output unbuffered so progress arrives live,
    machine-readable progress lines asked for (a terminal gets a progress bar instead), and UTF-8
    output whatever the console's code page (on Windows a pipe is cp1252: a "λ" would raise)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ENGINE_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONUTF8"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env["SCARENHANCE_PROGRESS"] = "lines"  # the engine's CLI prints PROGRESS lines only when asked
    return env


def estimateRemaining(fraction: float, elapsedS: float) -> Optional[float]:
    """Seconds left at a constant rate; None while too little is done to say (first 2 % or 3 s)."""
    if fraction < 0.02 or elapsedS < 3.0 or fraction >= 1.0:
        return None if fraction < 1.0 else 0.0
    return elapsedS * (1.0 - fraction) / fraction


def formatDuration(seconds: Optional[float]) -> str:
    """'1 h 05 min', '3 min 20 s', '12 s' or '' (unknown)."""
    if seconds is None:
        return ""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


class ProcessRunner:
    """One child process, its output as events, and a Cancel that takes the whole tree down.

    Usage::

        runner = ProcessRunner(engineCommand(["segment", "--input", a, "--output", b]))
        runner.start()
        while not runner.finished:
            for event in runner.poll(): ...
    """

    def __init__(self, argv: list[str], env: Optional[dict] = None, cwd: Optional[str] = None, logTail: int = 200):
        self.argv = [str(a) for a in argv]
        self.env = engineEnvironment() if env is None else env
        self.cwd = cwd
        self.status: Optional[RunStatus] = None
        self.returnCode: Optional[int] = None
        self.lastProgress: Optional[Progress] = None
        self.logLines: deque[str] = deque(maxlen=logTail)  # the end of the output, for error messages
        self._queue: queue.Queue[Event] = queue.Queue()
        self._proc: Optional[subprocess.Popen] = None
        self._thread: Optional[threading.Thread] = None
        self._cancelRequested = threading.Event()
        self._startTime = 0.0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "ProcessRunner":
        if self._proc is not None:
            raise RuntimeError("this runner was started already")
        self._startTime = time.monotonic()
        kwargs = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kwargs["start_new_session"] = True  # own process group: one killpg reaches every descendant
        self._proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            **kwargs,
        )
        self._thread = threading.Thread(target=self._read, name="ScarEnhance-runner", daemon=True)
        self._thread.start()
        return self

    @property
    def pid(self) -> Optional[int]:
        return None if self._proc is None else self._proc.pid

    @property
    def finished(self) -> bool:
        return self.status is not None

    @property
    def elapsedS(self) -> float:
        return time.monotonic() - self._startTime if self._startTime else 0.0

    def cancel(self) -> None:
        """Kill the child and all its descendants; the run then finishes as CANCELLED."""
        if self._proc is None or self.finished:
            return
        self._cancelRequested.set()
        killProcessTree(self._proc)

    # -- events ----------------------------------------------------------------------------------
    def poll(self, onProgress: Optional[Callable[[Progress], None]] = None, onLog: Optional[Callable[[str], None]] = None) -> list[Event]:
        """Drain the queued events (call from the thread that owns the callbacks)."""
        events = []
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                break
            events.append(event)
            if isinstance(event, Progress):
                self.lastProgress = event
                if onProgress:
                    onProgress(event)
            elif isinstance(event, Log):
                if onLog:
                    onLog(event.line)
            else:
                self.returnCode, self.status = event.returnCode, event.status
        return events

    def wait(self, timeoutS: Optional[float] = None, onProgress=None, onLog=None, cancel: Optional[threading.Event] = None, intervalS: float = 0.05) -> RunStatus:
        """Block until the run ends, delivering events on this thread. `cancel` set → cancel()."""
        deadline = None if timeoutS is None else time.monotonic() + timeoutS
        while True:
            self.poll(onProgress, onLog)
            if self.finished:
                return self.status
            if cancel is not None and cancel.is_set():
                self.cancel()
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                self._thread.join()
                self.poll(onProgress, onLog)
                raise TimeoutError(f"{' '.join(self.argv[:4])}… did not finish within {timeoutS} s and was cancelled")
            time.sleep(intervalS)

    def errorSummary(self, maxLines: int = 8) -> str:
        """The last lines of output: where the engine prints its error."""
        return "\n".join(list(self.logLines)[-maxLines:])

    # -- reader thread ---------------------------------------------------------------------------
    def _read(self) -> None:
        from scarenhance.progress import parse_progress

        proc = self._proc
        for raw in proc.stdout:
            line = raw.rstrip("\r\n")
            parsed = parse_progress(line)
            if parsed is None:
                self.logLines.append(line)
                self._queue.put(Log(line))
                continue
            fraction, message = parsed
            elapsed = self.elapsedS
            self._queue.put(Progress(fraction, message, elapsed, estimateRemaining(fraction, elapsed)))
        returnCode = proc.wait()
        if self._cancelRequested.is_set():
            status = RunStatus.CANCELLED
        else:
            status = RunStatus.SUCCEEDED if returnCode == 0 else RunStatus.FAILED
        self._queue.put(Finished(status, returnCode))


def killProcessTree(proc: subprocess.Popen, graceS: float = 2.0) -> None:
    """Stop a process and every process it started, politely first, then for good.

    POSIX: the child leads its own process group (start_new_session), so killpg reaches workers
    that a library forked, even after the child itself exited. psutil, when installed, also finds
    descendants that left the group. Windows: taskkill /T walks the tree.
    """
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True)
        return
    descendants = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=graceS)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever ignored SIGTERM, and stragglers in the group
    except (ProcessLookupError, PermissionError):
        pass
    for p in descendants:
        try:
            p.kill()
        except Exception:  # already gone
            pass
    proc.wait()


def _descendants(pid: int) -> list:
    try:
        import psutil
    except ImportError:
        return []
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
