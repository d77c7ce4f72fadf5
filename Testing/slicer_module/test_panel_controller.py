"""The panel's state handling without Qt: leaving the module during a run, a failure while showing a
result, Cancel, and actions whose error dialog must not re-raise out of a button slot."""

from __future__ import annotations

import types

import pytest

from ScarEnhanceLib.ErrorDisplay import guarded
from ScarEnhanceLib.Logic import EnhanceResult, SegmentResult
from ScarEnhanceLib.PanelController import ENHANCE, ERROR, INFO, SEGMENT, WARNING, PanelController
from ScarEnhanceLib.ProcessRunner import RunStatus
from ScarEnhanceLib.Reports import SafetyReport, SegmentReport


class Node:
    def __init__(self, name):
        self.name = name

    def GetName(self):
        return self.name


class View:
    """Records what the panel would draw."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        if name.startswith("show") or name == "refresh":
            return lambda *args, **kwargs: self.calls.append((name, *args))
        raise AttributeError(name)

    def last(self, name):
        return [c for c in self.calls if c[0] == name][-1][1:]


class Job:
    """An EngineJob stand-in: runs for `polls` polls, then ends with `status` and `result`."""

    def __init__(self, title, result=None, status=RunStatus.SUCCEEDED, polls=2, error=None):
        self.title, self._result, self._status, self._polls, self.error = title, result, status, polls, error
        self.status = self.result = None
        self.elapsedS, self.runner, self.cancelled = 12.0, None, False

    @property
    def finished(self):
        return self.status is not None

    def poll(self):
        self._polls -= 1
        if self._polls > 0 and not self.cancelled:
            return True
        self.status = RunStatus.CANCELLED if self.cancelled else self._status
        self.result = None if self.cancelled else self._result
        return False

    def cancel(self):
        self.cancelled = True


def param():
    return types.SimpleNamespace(inputVolume=Node("LGE"), roiSegmentation=None, roiSegmentId="")


def run_to_end(controller):
    while controller.poll():
        pass


def segment_job(plausible=True):
    report = SegmentReport(plausible, () if plausible else ("volume 912 ml is outside 50–600 ml",), 150.0)
    return Job("Segment heart", SegmentResult(Node("LGE heart"), "Segment_1", report))


def test_leaving_the_module_during_a_run_still_lands_the_results():
    view, p = View(), param()
    controller = PanelController(view)
    controller.enter(p)
    assert controller.start(SEGMENT, "segment button", segment_job)
    controller.poll()
    controller.exit()  # the user switches module; the timer keeps polling
    assert controller.param is p and controller.busy
    run_to_end(controller)
    assert (p.roiSegmentation.GetName(), p.roiSegmentId) == ("LGE heart", "Segment_1")  # ROI selected
    assert view.last("showSegmentation")[1:] == (p.roiSegmentation, "Segment_1")
    text, kind = view.last("showStatus")
    assert kind == INFO and "Added segmentation \"LGE heart\"" in text
    assert not controller.busy and view.calls[-1] == ("refresh",)  # buttons reset


def test_the_results_go_to_the_parameter_node_the_job_started_with():
    view, first, second = View(), param(), param()
    controller = PanelController(view)
    controller.enter(first)
    controller.start(SEGMENT, "b", segment_job)
    controller.exit()
    controller.enter(second)  # e.g. re-entered after the parameter node changed
    run_to_end(controller)
    assert first.roiSegmentId == "Segment_1" and second.roiSegmentId == ""


def test_an_implausible_segmentation_shows_a_warning_not_the_success_line():
    view, p = View(), param()
    controller = PanelController(view)
    controller.enter(p)
    controller.start(SEGMENT, "b", lambda: segment_job(plausible=False))
    run_to_end(controller)
    text, kind = view.last("showStatus")
    assert kind == WARNING and "implausible" in text and "912 ml" in text and "Added" not in text
    verdict, verdict_kind = view.last("showVerdict")
    assert verdict_kind == WARNING and "912 ml" in verdict
    assert p.roiSegmentId == "Segment_1"  # kept for the user to check and correct


@pytest.mark.parametrize("safety, kind, words", [
    (SafetyReport("ok", "Nothing unusual on any slice.", ()), INFO, "Nothing unusual on any slice."),
    (SafetyReport("caution", "Healthy myocardium changed on 2 slices.", (3, 5)), WARNING, "Advise against trusting slices 3, 5."),
])
def test_the_safety_verdict_is_shown_with_the_flagged_slices(safety, kind, words):
    view, p = View(), param()
    controller = PanelController(view)
    controller.enter(p)
    result = EnhanceResult(Node("LGE enhanced"), None, safety, usedLabels=True)
    controller.start(ENHANCE, "b", lambda: Job("Enhance scar", result))
    run_to_end(controller)
    assert view.last("showEnhanced") == (p, result)
    verdict, verdict_kind = view.last("showVerdict")
    assert verdict_kind == kind and words in verdict and safety.summary in verdict
    assert "Added \"LGE enhanced\" in 12 s" in view.last("showStatus")[0]


def test_a_failure_while_showing_a_result_is_an_error_line_not_an_exception():
    view, p = View(), param()

    def broken(*args):
        raise RuntimeError("the input volume was deleted")

    view.showEnhanced = broken
    controller = PanelController(view)
    controller.enter(p)
    result = EnhanceResult(Node("LGE enhanced"), None, SafetyReport("ok", "fine", ()), usedLabels=False)
    controller.start(ENHANCE, "b", lambda: Job("Enhance scar", result))
    run_to_end(controller)  # does not raise
    text, kind = view.last("showStatus")
    assert kind == ERROR and "the input volume was deleted" in text and not controller.busy


def test_bad_input_starts_nothing_and_failures_and_cancel_are_reported():
    view, p = View(), param()
    controller = PanelController(view)
    assert not controller.start(SEGMENT, "b", segment_job)  # not entered: no parameter node yet
    controller.enter(p)

    def refuse():
        raise ValueError("choose an LGE volume first")

    assert not controller.start(SEGMENT, "b", refuse) and not controller.busy
    assert view.last("showStatus") == ("choose an LGE volume first", ERROR)

    controller.start(ENHANCE, "b", lambda: Job("Enhance scar", status=RunStatus.FAILED, error="image is 2D"))
    run_to_end(controller)
    assert view.last("showStatus") == ("Enhance scar failed: image is 2D", ERROR)
    assert "image is 2D" in view.last("showError")[0]

    controller.start(SEGMENT, "segment", lambda: Job("Segment heart", polls=100))
    assert controller.cancelIfRunning("enhance") and controller.busy  # the other button: click used up, nothing cancelled
    assert controller.cancelIfRunning("segment")
    run_to_end(controller)
    assert "cancelled; nothing was added" in view.last("showStatus")[0] and p.roiSegmentId == ""


def test_a_closing_scene_cancels_the_job():
    view, p = View(), param()
    controller = PanelController(view)
    controller.enter(p)
    controller.start(SEGMENT, "b", lambda: Job("Segment heart", polls=100))
    controller.sceneClosing()
    run_to_end(controller)
    assert controller.param is None and p.roiSegmentId == "" and "cancelled" in view.last("showStatus")[0]


def test_guarded_shows_the_error_once_and_returns_instead_of_raising():
    shown = []
    ok, value = guarded(lambda: 1 / 0, "The model folder could not be imported.", lambda text, detailedText=None: shown.append((text, detailedText)))
    assert (ok, value) == (False, None)
    ((text, details),) = shown
    assert text.startswith("The model folder could not be imported.\n\n") and "division by zero" in text and "ZeroDivisionError" in details
    assert guarded(lambda: "imported", "unused", lambda *a, **k: shown.append(a)) == (True, "imported") and len(shown) == 1


def test_slicers_own_helper_re_raises_which_is_why_guarded_exists():
    """slicer.util.tryWithErrorDisplay (Slicer's real util.py, from slicer-core) re-raises after its
    popup: the `return False` the old panel had after it could never run."""
    import slicer

    app = types.SimpleNamespace(testingEnabled=lambda: True)  # no popup in testing mode
    old = getattr(slicer, "app", None)
    slicer.app = app
    try:
        with pytest.raises(ZeroDivisionError):
            with slicer.util.tryWithErrorDisplay("failed"):
                1 / 0
    finally:
        if old is None:
            del slicer.app
        else:
            slicer.app = old
