"""The panel's state without Qt: the parameter node it shows, the job it runs, what an ended job does.

Widget.py draws (a `view`, see PanelView); this file decides, and is tested without Qt. A job keeps
the parameter node it was started with, so leaving the module while it runs changes nothing: the
timer keeps polling, and the results still land (ROI selected, result shown, buttons reset). Only a
closing scene cancels the job. Nothing here raises out of a Qt slot: a failure while showing a result
becomes an error line.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

from .ProcessRunner import RunStatus, formatDuration
from .Reports import safetyNote, segmentNote

SEGMENT, ENHANCE = "segment", "enhance"
INFO, WARNING, ERROR = "info", "warning", "error"  # how a line is shown


class PanelView(Protocol):
    def showStatus(self, text: str, kind: str) -> None: ...
    def showVerdict(self, text: str, kind: str) -> None: ...  # "" hides it
    def showError(self, text: str, detailedText: Optional[str] = None) -> None: ...  # a dialog
    def showSegmentation(self, param, segmentationNode, segmentId: str) -> None: ...  # editor on the new ROI
    def showEnhanced(self, param, result) -> None: ...  # slice views: original behind, enhanced in front
    def refresh(self) -> None: ...  # buttons and progress from the controller's state


@dataclass
class Running:
    job: Any  # EngineJob
    kind: str  # SEGMENT | ENHANCE
    param: Any  # the parameter node the job was started with
    button: Any  # the button that reads "Cancel" meanwhile


class PanelController:
    def __init__(self, view: PanelView, modify: Callable[[Any], Any] = lambda param: contextlib.nullcontext()):
        self.view = view
        self.modify = modify  # a context that batches parameter node changes (slicer.util.NodeModify)
        self.param = None
        self.shown = False
        self.running: Optional[Running] = None

    # -- module lifecycle ------------------------------------------------------------------------
    def enter(self, param) -> None:
        self.param, self.shown = param, True

    def exit(self) -> None:
        """The module is left: the GUI is disconnected by the widget, the job and its target stay."""
        self.shown = False

    def sceneClosing(self) -> None:
        """Results would belong to a scene that is going away: cancel, forget the parameter node."""
        if self.busy:
            self.running.job.cancel()
        self.param = None

    # -- jobs ------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.running is not None and not self.running.job.finished

    def isJobButton(self, button) -> bool:
        return self.busy and self.running.button is button

    def start(self, kind: str, button, makeJob: Callable[[], Any]) -> bool:
        """Make and start a job (makeJob raises on bad input, no model…: shown, nothing started)."""
        if self.busy or self.param is None:
            return False
        try:
            job = makeJob()
        except Exception as e:
            logging.info("ScarEnhance: %s was not started", kind, exc_info=True)
            self.view.showStatus(str(e), ERROR)
            return False
        self.running = Running(job, kind, self.param, button)
        self.view.showVerdict("", INFO)
        self.view.showStatus(f"{job.title}: starting…", INFO)
        self.view.refresh()
        return True

    def cancelIfRunning(self, button) -> bool:
        """True when a job runs (the click is used up); it is cancelled if this is its button."""
        if not self.busy:
            return False
        if self.running.button is button:
            self.running.job.cancel()
            self.view.refresh()
        return True

    def poll(self) -> bool:
        """Called by the timer: True while the job goes on; at its end the outcome is shown."""
        if self.running is None:
            return False
        running = self.running
        if running.job.poll():
            return True
        try:
            self._ended(running)
        except Exception as e:  # e.g. a node deleted meanwhile: say so, never raise in the timer slot
            logging.exception("ScarEnhance: showing the result of %s failed", running.job.title)
            self.view.showStatus(f"{running.job.title} finished, but its result could not be shown: {e}", ERROR)
        finally:
            self.view.refresh()
        return False

    def _ended(self, running: Running) -> None:
        job = running.job
        if job.status is RunStatus.CANCELLED:
            self.view.showStatus(f"{job.title} was cancelled; nothing was added to the scene.", INFO)
        elif job.status is not RunStatus.SUCCEEDED:
            self.view.showStatus(f"{job.title} failed: {job.error}", ERROR)
            self.view.showError(f"{job.title} failed:\n{job.error}",
                                detailedText=job.runner.errorSummary(40) if job.runner else None)
        elif running.kind == SEGMENT:
            self._segmented(running.param, job)
        else:
            self._enhanced(running.param, job)

    def _segmented(self, param, job) -> None:
        result = job.result
        with self.modify(param):
            param.roiSegmentation = result.segmentation
            param.roiSegmentId = result.segmentId
        self.view.showSegmentation(param, result.segmentation, result.segmentId)
        note = segmentNote(result.report)
        if note:  # not the success line: the user must look before using it
            self.view.showStatus(note, WARNING)
            self.view.showVerdict("⚠ " + note, WARNING)
            return
        self.view.showStatus(f"Added segmentation \"{result.segmentation.GetName()}\" (Heart ROI, LV blood pool, LV myocardium). "
                             "Check the heart ROI in the slice views and correct it if needed (Segment Editor), "
                             "then click Enhance scar.", INFO)

    def _enhanced(self, param, job) -> None:
        result = job.result
        self.view.showEnhanced(param, result)
        added = f"\"{result.enhanced.GetName()}\"" + (f" and \"{result.uncertainty.GetName()}\"" if result.uncertainty is not None else "")
        self.view.showStatus(f"Added {added} in {formatDuration(job.elapsedS)}. Drag the slice views' foreground fader "
                             "to compare with the original.", INFO)
        caution = result.safety.verdict != "ok" or bool(result.safety.flaggedSlices)
        self.view.showVerdict(("⚠ " if caution else "✓ ") + safetyNote(result.safety), WARNING if caution else INFO)
