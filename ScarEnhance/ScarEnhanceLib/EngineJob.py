"""One engine command from start to scene: run the child process, then import its files.

The job owns a temporary folder (inputs written by the logic, results written by the engine) and
deletes it at the end unless `keepFiles`. Results enter the scene only in `poll()` on the caller's
thread, after the child succeeded, so Cancel or a failure leaves the scene untouched. When a run on
the GPU fails for lack of GPU memory it is run again on the CPU, and `deviceMessage` says so.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from typing import Any, Callable, Optional

from scarenhance.errors import Cancelled

from .ProcessRunner import PanelState, Progress, ProcessRunner, RunStatus, engineCommand

OUT_OF_MEMORY = re.compile(r"out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED", re.IGNORECASE)
# Lines in which the engine says where it runs, e.g. "ScarEnhance demo on cuda (…)" or "device: cpu".
DEVICE_LINE = re.compile(r"\b(?:on|device[:=]?)\s+(cuda(?::\d+)?|cpu)\b", re.IGNORECASE)


def describeDevice(requested: str, logLines, fellBack: bool) -> str:
    """Which device ran, and why, for the status line."""
    if fellBack:
        return "The GPU ran out of memory, so this ran on the CPU instead."
    ran = None
    for line in logLines:
        match = DEVICE_LINE.search(line)
        if match:
            ran = match.group(1).lower()
    if requested == "cpu":
        return "Ran on the CPU (chosen under Advanced → Device)."
    if requested.startswith("cuda"):
        return "Ran on the GPU (CUDA, chosen under Advanced → Device)."
    if ran and ran.startswith("cuda"):
        return "Ran on the GPU (CUDA)."
    if ran == "cpu":
        return "Ran on the CPU: PyTorch sees no CUDA GPU on this computer."
    return "Ran on the GPU when PyTorch sees one, else on the CPU."


def errorMessage(logLines) -> str:
    """The engine's own error line ('scarenhance enhance: error: …') or the end of its output."""
    lines = [l for l in logLines if l.strip()]
    for line in reversed(lines):
        if ": error:" in line:
            return line.split(": error:", 1)[1].strip()
    return "\n".join(lines[-6:]) or "the engine stopped without a message"


class EngineJob:
    """Run `scarenhance ARGS`, then `importResults()` on success. Use `poll()` from a GUI timer or `wait()`."""

    def __init__(self, title: str, args: list[str], workDir: str, importResults: Callable[[], Any], device: str = "auto",
                 python: Optional[str] = None, keepFiles: bool = False):
        self.title = title
        self.args = list(args)
        self.workDir = workDir
        self.importResults = importResults
        self.device = device
        self.python = python
        self.keepFiles = keepFiles
        self.state = PanelState.IDLE
        self.status: Optional[RunStatus] = None
        self.result: Any = None
        self.error: Optional[str] = None
        self.deviceMessage = ""
        self.progress: Optional[Progress] = None
        self.onProgress: Optional[Callable[[Progress], None]] = None
        self.onLog: Optional[Callable[[str], None]] = None
        self.onStateChanged: Optional[Callable[[PanelState], None]] = None
        self.runner: Optional[ProcessRunner] = None
        self._fellBack = False
        self._deviceMentions: list[str] = []  # progress messages that name the device ("… on cuda")
        self._startTime = 0.0

    @property
    def finished(self) -> bool:
        return self.status is not None

    @property
    def elapsedS(self) -> float:
        return time.monotonic() - self._startTime if self._startTime else 0.0

    def start(self) -> "EngineJob":
        self._startTime = time.monotonic()
        self._launch(self.args)
        return self

    def cancel(self) -> None:
        if self.finished or self.runner is None:
            return
        self._setState(PanelState.CANCELLING)
        self.runner.cancel()

    def poll(self) -> bool:
        """Deliver progress; when the child ended, import or report. True while the job goes on."""
        if self.finished:
            return False
        runner = self.runner
        runner.poll(self._progress, self.onLog)
        if not runner.finished:
            return True
        if runner.status is RunStatus.FAILED and self._shouldRetryOnCpu(runner):
            logging.warning("ScarEnhance: %s ran out of GPU memory; running it again on the CPU", self.title)
            self._fellBack = True
            self._launch(_withDevice(self.args, "cpu"))
            return True
        self.deviceMessage = describeDevice(self.device, [*self._deviceMentions, *runner.logLines], self._fellBack)
        if runner.status is RunStatus.SUCCEEDED:
            self._setState(PanelState.IMPORTING)
            try:
                self.result = self.importResults()
                self._end(RunStatus.SUCCEEDED, PanelState.IDLE)
            except Exception as e:  # a result that does not fit the input: report, add nothing more
                logging.exception("ScarEnhance: importing the results of %s failed", self.title)
                self.error = f"{type(e).__name__}: {e}"
                self._end(RunStatus.FAILED, PanelState.FAILED)
        elif runner.status is RunStatus.CANCELLED:
            self._end(RunStatus.CANCELLED, PanelState.IDLE)
        else:
            self.error = errorMessage(runner.logLines)
            logging.error("ScarEnhance: %s failed (exit code %s):\n%s", self.title, runner.returnCode, runner.errorSummary(30))
            self._end(RunStatus.FAILED, PanelState.FAILED)
        return False

    def wait(self, cancel: Optional[threading.Event] = None, intervalS: float = 0.05) -> Any:
        """Blocking path: run to the end; returns the imported result, raises on failure or cancel."""
        if self.runner is None:
            self.start()
        while self.poll():
            if cancel is not None and cancel.is_set():
                self.cancel()
            time.sleep(intervalS)
        if self.status is RunStatus.CANCELLED:
            raise Cancelled(f"{self.title} was cancelled")
        if self.status is RunStatus.FAILED:
            raise RuntimeError(f"{self.title} failed: {self.error}")
        return self.result

    # -- internals -------------------------------------------------------------------------------
    def _launch(self, args: list[str]) -> None:
        self.runner = ProcessRunner(engineCommand(args, self.python)).start()
        self._setState(PanelState.RUNNING)

    def _progress(self, progress: Progress) -> None:
        self.progress = progress
        if DEVICE_LINE.search(progress.message):
            self._deviceMentions.append(progress.message)
        if self.onProgress:
            self.onProgress(progress)

    def _shouldRetryOnCpu(self, runner: ProcessRunner) -> bool:
        return not self._fellBack and self.device != "cpu" and any(OUT_OF_MEMORY.search(l) for l in runner.logLines)

    def _setState(self, state: PanelState) -> None:
        self.state = state
        if self.onStateChanged:
            self.onStateChanged(state)

    def _end(self, status: RunStatus, state: PanelState) -> None:
        self.status = status
        if not self.keepFiles:
            shutil.rmtree(self.workDir, ignore_errors=True)
        else:
            logging.info("ScarEnhance: kept the files of %s in %s", self.title, self.workDir)
        self._setState(state)


def _withDevice(args: list[str], device: str) -> list[str]:
    args = list(args)
    if "--device" in args:
        args[args.index("--device") + 1] = device
    else:
        args += ["--device", device]
    return args
