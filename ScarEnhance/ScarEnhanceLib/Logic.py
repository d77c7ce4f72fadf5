"""What runs when the user clicks Segment heart or Enhance scar.

    volume node ──writeVolume──▶ input.nrrd ─▶ scarenhance segment ─▶ roi.nrrd, labels.nrrd, report.json
    ──MrmlIO──▶ new segmentation "<input> heart": "Heart ROI", "LV blood pool", "LV myocardium"

    volume node ──▶ input.nrrd ─┐
    ROI segment ──segmentMask──▶ roi.nrrd ─┤ scarenhance enhance ─▶ enhanced.nrrd (+ std.nrrd), safety.json
    blood pool + myocardium ──▶ labels.nrrd ┘ (when both segments exist; else the engine segments them)
        the myocardium, as corrected in the Segment Editor: the safety check's, and an input of
        enhancers that take one (`myocardium_input` in their metadata)
    ──MrmlIO──▶ new volume "<input> enhanced" (+ "<input> uncertainty"), the safety verdict

Each action has a blocking form (scripts, tests, the self-test) and an `…Async` form returning an
EngineJob the panel polls from a timer. Models are checked against their SHA-256 before every run.
The engine's reports travel with the results (SegmentResult, EnhanceResult); the blocking forms log
an implausible segmentation or a "caution" verdict as a warning and keep them in `lastReport`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .EngineJob import EngineJob
from .ModelRegistry import DIFFUSION, SEGMENTATION, ModelRegistry
from .MrmlIO import (addHeartSegmentation, addResultVolume, labelsForEngine, readVolumeLike, segmentMask, writeMask,
                     writeVolume)
from .Parameters import EnhanceOptions, SegmentOptions
from .Reports import SafetyReport, SegmentReport, readSafetyReport, readSegmentReport, safetyNote, segmentNote

try:  # inside Slicer the logic is a ScriptedLoadableModuleLogic (parameter node helpers come with it)
    from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic as _LogicBase
except ImportError:
    _LogicBase = object


@dataclass
class SegmentResult:
    segmentation: Any  # vtkMRMLSegmentationNode
    segmentId: str  # of "Heart ROI"
    report: SegmentReport


@dataclass
class EnhanceResult:
    enhanced: Any  # vtkMRMLScalarVolumeNode
    uncertainty: Any  # or None
    safety: SafetyReport
    usedLabels: bool  # the blood pool / myocardium segments went to the engine


class ScarEnhanceLogic(_LogicBase):
    """Public API: segmentHeart, enhanceScar (blocking) and segmentHeartAsync, enhanceScarAsync."""

    def __init__(self, registry: Optional[ModelRegistry] = None, python: Optional[str] = None,
                 tempRoot: Optional[str] = None, debug: bool = False):
        if _LogicBase is not object:
            _LogicBase.__init__(self)
        self.registry = registry or ModelRegistry()
        self.python = python  # None → PythonSlicer in Slicer, else this interpreter
        self.tempRoot = tempRoot
        self.debug = debug or bool(os.environ.get("SCARENHANCE_DEBUG"))  # keep the temporary files
        self.lastReport = None  # the engine's report of the last blocking run (SegmentReport / SafetyReport)

    def getParameterNode(self):
        from .Parameters import ScarEnhanceParameterNode

        return ScarEnhanceParameterNode(super().getParameterNode())

    # -- Segment heart ---------------------------------------------------------------------------
    def segmentHeart(self, volumeNode, dilateMm: float = 0.0, model: Optional[str] = None, device: str = "auto",
                     cancel: Optional[threading.Event] = None, onProgress: Optional[Callable] = None):
        """Blocking: a new segmentation node with "Heart ROI" (the ROI for enhanceScar), "LV blood pool"
        and "LV myocardium". The engine's plausibility report is in `lastReport`."""
        job = self.segmentHeartAsync(volumeNode, SegmentOptions(dilateMm=dilateMm, model=model, device=device))
        job.onProgress = onProgress
        result = job.wait(cancel)
        self.lastReport = result.report
        if not result.report.plausible:
            logging.warning("ScarEnhance: %s", segmentNote(result.report))
        return result.segmentation

    def segmentHeartAsync(self, volumeNode, options: SegmentOptions) -> EngineJob:
        """Started job; its result is a SegmentResult."""
        _checkVolume(volumeNode)
        modelFolder = self.registry.resolve(options.model, SEGMENTATION)
        workDir = self._workDir()
        paths = {name: os.path.join(workDir, f"{name}.nrrd") for name in ("input", "roi", "labels")}
        paths["report"] = os.path.join(workDir, "report.json")
        writeVolume(volumeNode, paths["input"])
        runOptions = SegmentOptions(dilateMm=options.dilateMm, model=str(modelFolder), device=options.device)

        def importResults():
            report = readSegmentReport(paths["report"])  # checked before anything enters the scene
            node, segmentId = addHeartSegmentation(paths["roi"], paths["labels"], volumeNode, f"{volumeNode.GetName()} heart")
            return SegmentResult(node, segmentId, report)

        return EngineJob(
            "Segment heart", runOptions.cliArgs(paths["input"], paths["roi"], paths["labels"], paths["report"]), workDir,
            importResults, device=options.device, python=self.python, keepFiles=self.debug,
        ).start()

    # -- Enhance scar ----------------------------------------------------------------------------
    def enhanceScar(self, volumeNode, segmentationNode, segmentId: str, lam: int = 250, k: int = 5,
                    steps: Optional[int] = None, seed: Optional[int] = None, *, model: Optional[str] = None,
                    device: str = "auto", keepUncertainty: bool = False, agreement: Optional[float] = None,
                    outputVolumeNode=None, cancel: Optional[threading.Event] = None, onProgress: Optional[Callable] = None):
        """Blocking: (enhanced volume node, uncertainty volume node or None). The ROI is the segment as
        it is now. The enhanced volume is new unless `outputVolumeNode` is given (never the input).
        The engine's safety verdict is in `lastReport` (logged as a warning when it says "caution")."""
        options = EnhanceOptions(lam=lam, k=k, steps=steps, seed=seed, model=model, device=device,
                                 keepUncertainty=keepUncertainty, agreement=agreement)
        job = self.enhanceScarAsync(volumeNode, segmentationNode, segmentId, options, outputVolumeNode)
        job.onProgress = onProgress
        result = job.wait(cancel)
        self.lastReport = result.safety
        (logging.warning if result.safety.verdict != "ok" else logging.info)("ScarEnhance: %s", safetyNote(result.safety))
        return result.enhanced, result.uncertainty

    def enhanceScarAsync(self, volumeNode, segmentationNode, segmentId: str, options: EnhanceOptions,
                         outputVolumeNode=None) -> EngineJob:
        """Started job; its result is an EnhanceResult."""
        _checkVolume(volumeNode)
        if outputVolumeNode is volumeNode:
            raise ValueError("the enhanced volume must not overwrite the input volume: choose another output or none")
        if segmentationNode is None:
            raise ValueError("choose the heart ROI: a segmentation and a segment (click Segment heart to make one)")
        options.validate()
        mask = segmentMask(segmentationNode, segmentId, volumeNode)
        if not mask.any():
            segmentName = segmentationNode.GetSegmentation().GetSegment(segmentId).GetName()
            raise ValueError(f"the ROI segment {segmentName!r} is empty on the grid of {volumeNode.GetName()}")
        labels = labelsForEngine(segmentationNode, volumeNode)
        modelFolder = self.registry.resolve(options.model, DIFFUSION)
        workDir = self._workDir()
        paths = {name: os.path.join(workDir, f"{name}.nrrd") for name in ("input", "roi", "labels", "enhanced", "std")}
        paths["safety"] = os.path.join(workDir, "safety.json")
        writeVolume(volumeNode, paths["input"])
        writeMask(mask, volumeNode, paths["roi"])
        if labels is not None:
            writeMask(labels, volumeNode, paths["labels"])
        run = EnhanceOptions(**{**options.__dict__, "model": str(modelFolder)})
        name = volumeNode.GetName()

        def importResults():
            # Read and check every file before adding anything: a bad file leaves the scene as it was.
            safety = readSafetyReport(paths["safety"])
            mean = readVolumeLike(paths["enhanced"], volumeNode)
            std = readVolumeLike(paths["std"], volumeNode) if options.keepUncertainty else None
            mean = addResultVolume(mean, volumeNode, f"{name} enhanced", matchWindowLevel=True, outputNode=outputVolumeNode)
            if std is not None:
                std = addResultVolume(std, volumeNode, f"{name} uncertainty", matchWindowLevel=False)
            return EnhanceResult(mean, std, safety, usedLabels=labels is not None)

        args = run.cliArgs(paths["input"], paths["roi"], paths["enhanced"], paths["std"], paths["safety"],
                           paths["labels"] if labels is not None else None)
        return EngineJob("Enhance scar", args, workDir, importResults, device=options.device, python=self.python,
                         keepFiles=self.debug).start()

    def _workDir(self) -> str:
        root = self.tempRoot
        if root is None:
            try:
                import slicer

                root = slicer.app.temporaryPath
            except AttributeError:  # no application (scripts, tests)
                root = None
        if root:
            Path(root).mkdir(parents=True, exist_ok=True)
        return tempfile.mkdtemp(prefix="ScarEnhance-", dir=root)


def _checkVolume(volumeNode) -> None:
    if volumeNode is None or volumeNode.GetImageData() is None:
        raise ValueError("choose an LGE volume first")
    dims = volumeNode.GetImageData().GetDimensions()
    if min(dims) < 1 or volumeNode.GetImageData().GetNumberOfScalarComponents() != 1:
        raise ValueError(f"{volumeNode.GetName()} is not a single-channel 3D volume")
