"""What the user chose: plain option records that become engine command lines, and the panel's
parameter node (Slicer's typed `parameterNodeWrapper`, so a saved scene restores the panel).

The option records import anywhere; the parameter node class exists only where
`slicer.parameterNodeWrapper` does (inside Slicer), so the logic and its tests need neither Qt nor the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

DEVICES = ("auto", "cpu", "cuda")  # "auto": CUDA when torch sees a GPU, else CPU
MAX_AGREEMENT = 10.0  # as the engine's `enhance --agreement` accepts (scarenhance.diffusion.inputs)


@dataclass
class SegmentOptions:
    """Options of `scarenhance segment`."""

    dilateMm: float = 0.0  # grow the heart ROI by this many mm (subendocardial scar at the border)
    model: Optional[str] = None  # model folder; None → the shipped default
    device: str = "auto"

    def cliArgs(self, inputPath, roiPath, labelsPath, reportPath) -> list[str]:
        """The heart ROI, the blood pool / myocardium labels and the plausibility report, all written."""
        args = ["segment", "--input", inputPath, "--output", roiPath, "--labels-output", labelsPath, "--report", reportPath,
                "--dilate-mm", f"{self.dilateMm:g}", "--device", self.device]
        if self.model:
            args += ["--model", self.model]
        return [str(a) for a in args]


@dataclass
class EnhanceOptions:
    """Options of `scarenhance enhance` (paper defaults: λ = 250 noising steps, k = 5 samples)."""

    lam: int = 250
    k: int = 5
    steps: Optional[int] = None  # fast mode: this many reverse steps instead of all λ; None → all
    seed: Optional[int] = None  # None → a different result each run
    model: Optional[str] = None
    device: str = "auto"
    keepUncertainty: bool = False  # also load the per-voxel std of the k samples
    agreement: Optional[float] = None  # standard errors each change is shrunk by (0 = the paper's plain mean); None → the engine's default

    def validate(self) -> None:
        if self.lam < 1 or self.k < 1:
            raise ValueError(f"λ and k must be at least 1 (got λ={self.lam}, k={self.k})")
        if self.agreement is not None and not 0 <= self.agreement <= MAX_AGREEMENT:
            raise ValueError(f"sample agreement must be between 0 and {MAX_AGREEMENT:g} standard errors (got {self.agreement})")
        if self.steps is not None and not 1 <= self.steps <= self.lam:
            raise ValueError(f"fast-mode steps must be between 1 and λ={self.lam} (got {self.steps})")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES} (got {self.device!r})")

    def cliArgs(self, inputPath, roiPath, outputPath, stdPath, safetyPath, labelsPath=None) -> list[str]:
        """The uncertainty map is written only when it is kept; the safety report always. Without
        `labelsPath` (no blood pool / myocardium segments) the engine segments the myocardium itself."""
        self.validate()
        args = ["enhance", "--input", inputPath, "--roi", roiPath, "--output", outputPath, "--safety-output", safetyPath,
                "--lam", self.lam, "--k", self.k, "--device", self.device]
        if labelsPath:
            args += ["--labels", labelsPath]
        if self.keepUncertainty:
            args += ["--std-output", stdPath]
        if self.steps is not None:
            args += ["--steps", self.steps]
        if self.seed is not None:
            args += ["--seed", self.seed]
        if self.model:
            args += ["--model", self.model]
        if self.agreement is not None:
            args += ["--agreement", f"{self.agreement:g}"]
        return [str(a) for a in args]


try:  # the typed parameter node exists only inside the Slicer application
    from typing import Annotated

    from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
    from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
except ImportError:
    parameterNodeWrapper = None

if parameterNodeWrapper is not None:

    @parameterNodeWrapper
    class ScarEnhanceParameterNode:
        """The panel's state. Widgets whose .ui `SlicerParameterName` property names a field here are
        bound both ways by `connectGui`; model choices and the ROI segment are synced by the widget."""

        inputVolume: vtkMRMLScalarVolumeNode
        roiSegmentation: vtkMRMLSegmentationNode
        roiSegmentId: str = ""
        outputVolume: vtkMRMLScalarVolumeNode  # None → a new "<input> enhanced" volume each run
        segmentationModel: str = ""  # registry id or folder; "" → shipped default
        diffusionModel: str = ""
        lam: Annotated[int, WithinRange(1, 1000)] = 250
        k: Annotated[int, WithinRange(1, 50)] = 5
        steps: Annotated[int, WithinRange(0, 1000)] = 0  # 0 → all λ steps
        seed: Annotated[int, WithinRange(-1, 2**31 - 1)] = -1  # -1 → random
        dilateMm: Annotated[float, WithinRange(0.0, 30.0)] = 0.0
        device: Annotated[str, Choice(list(DEVICES))] = "auto"
        keepUncertainty: bool = False
        agreement: Annotated[float, WithinRange(0.0, MAX_AGREEMENT)] = 1.0  # the engine's default (diffusion/agreement.py)

        def segmentOptions(self, modelPath: Optional[str]) -> SegmentOptions:
            return SegmentOptions(dilateMm=self.dilateMm, model=modelPath, device=self.device)

        def enhanceOptions(self, modelPath: Optional[str]) -> EnhanceOptions:
            return EnhanceOptions(
                lam=self.lam, k=self.k, steps=self.steps or None, seed=None if self.seed < 0 else self.seed,
                model=modelPath, device=self.device, keepUncertainty=self.keepUncertainty, agreement=self.agreement,
            )
