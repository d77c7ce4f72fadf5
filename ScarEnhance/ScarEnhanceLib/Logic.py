"""What runs when the user clicks Segment heart or Enhance scar.

    volume node ──writeVolume──▶ in.nrrd ─┐
    ROI segment ──segmentMask/writeMask──▶ roi.nrrd ─┤  PythonSlicer -m scarenhance.cli segment|enhance
                                                     └──▶ mask.nrrd / enhanced.nrrd, std.nrrd
    ──MrmlIO──▶ new segmentation node "Heart" / new volume "<input> enhanced" (+ "<input> uncertainty")

Each action has a blocking form (scripts, tests, the self-test) and an `…Async` form returning an
EngineJob the panel polls from a timer. Models are checked against their SHA-256 before every run.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Callable, Optional

from .EngineJob import EngineJob
from .ModelRegistry import DIFFUSION, SEGMENTATION, ModelRegistry
from .MrmlIO import addHeartSegmentation, addResultVolume, readVolumeLike, segmentMask, writeMask, writeVolume
from .Parameters import EnhanceOptions, SegmentOptions

try:  # inside Slicer the logic is a ScriptedLoadableModuleLogic (parameter node helpers come with it)
    from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic as _LogicBase
except ImportError:
    _LogicBase = object


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

    def getParameterNode(self):
        from .Parameters import ScarEnhanceParameterNode

        return ScarEnhanceParameterNode(super().getParameterNode())

    # -- Segment heart ---------------------------------------------------------------------------
    def segmentHeart(self, volumeNode, dilateMm: float = 0.0, model: Optional[str] = None, device: str = "auto",
                     cancel: Optional[threading.Event] = None, onProgress: Optional[Callable] = None):
        """Blocking: a new segmentation node with one "Heart" segment (the ROI for enhanceScar)."""
        job = self.segmentHeartAsync(volumeNode, SegmentOptions(dilateMm=dilateMm, model=model, device=device))
        job.onProgress = onProgress
        return job.wait(cancel)[0]

    def segmentHeartAsync(self, volumeNode, options: SegmentOptions) -> EngineJob:
        """Started job; its result is (segmentationNode, segmentId)."""
        _checkVolume(volumeNode)
        modelFolder = self.registry.resolve(options.model, SEGMENTATION)
        workDir = self._workDir()
        inputPath, maskPath = os.path.join(workDir, "input.nrrd"), os.path.join(workDir, "heart.nrrd")
        writeVolume(volumeNode, inputPath)
        runOptions = SegmentOptions(dilateMm=options.dilateMm, model=str(modelFolder), device=options.device)
        return EngineJob(
            "Segment heart", runOptions.cliArgs(inputPath, maskPath), workDir,
            lambda: addHeartSegmentation(maskPath, volumeNode, f"{volumeNode.GetName()} heart"),
            device=options.device, python=self.python, keepFiles=self.debug,
        ).start()

    # -- Enhance scar ----------------------------------------------------------------------------
    def enhanceScar(self, volumeNode, segmentationNode, segmentId: str, lam: int = 250, k: int = 5,
                    steps: Optional[int] = None, seed: Optional[int] = None, *, model: Optional[str] = None,
                    device: str = "auto", keepUncertainty: bool = False, outputVolumeNode=None,
                    cancel: Optional[threading.Event] = None, onProgress: Optional[Callable] = None):
        """Blocking: (enhanced volume node, uncertainty volume node or None). The ROI is the segment as
        it is now. The enhanced volume is new unless `outputVolumeNode` is given (never the input)."""
        options = EnhanceOptions(lam=lam, k=k, steps=steps, seed=seed, model=model, device=device, keepUncertainty=keepUncertainty)
        job = self.enhanceScarAsync(volumeNode, segmentationNode, segmentId, options, outputVolumeNode)
        job.onProgress = onProgress
        return job.wait(cancel)

    def enhanceScarAsync(self, volumeNode, segmentationNode, segmentId: str, options: EnhanceOptions,
                         outputVolumeNode=None) -> EngineJob:
        """Started job; its result is (meanVolumeNode, stdVolumeNode or None)."""
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
        modelFolder = self.registry.resolve(options.model, DIFFUSION)
        workDir = self._workDir()
        paths = {name: os.path.join(workDir, f"{name}.nrrd") for name in ("input", "roi", "enhanced", "std")}
        writeVolume(volumeNode, paths["input"])
        writeMask(mask, volumeNode, paths["roi"])
        run = EnhanceOptions(**{**options.__dict__, "model": str(modelFolder)})
        name = volumeNode.GetName()

        def importResults():
            # Read and check every file before adding anything: a bad file leaves the scene as it was.
            mean = readVolumeLike(paths["enhanced"], volumeNode)
            std = readVolumeLike(paths["std"], volumeNode) if options.keepUncertainty else None
            mean = addResultVolume(mean, volumeNode, f"{name} enhanced", matchWindowLevel=True, outputNode=outputVolumeNode)
            if std is not None:
                std = addResultVolume(std, volumeNode, f"{name} uncertainty", matchWindowLevel=False)
            return mean, std

        return EngineJob(
            "Enhance scar", run.cliArgs(paths["input"], paths["roi"], paths["enhanced"], paths["std"]), workDir,
            importResults, device=options.device, python=self.python, keepFiles=self.debug,
        ).start()

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
