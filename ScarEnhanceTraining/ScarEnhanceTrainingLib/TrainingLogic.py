"""Train and evaluate ScarEnhance's two models on a site's data, from Slicer or any Python.

    logic = TrainingLogic()
    result = logic.run(TrainingParameters(dataFolder="emidec", outputFolder="runs/site1"),
                       onProgress=lambda p: print(p.fraction, p.message))
    logic.importModels(result.outputFolder)      # the models appear in ScarEnhance's model lists

`run` blocks (scripts, headless Slicer, tests); the panel uses `start` and polls the runner from a
timer. The work happens in a child process (`scarenhance train`, see scarenhance/pipeline.py), so
Slicer stays responsive and Cancel kills the whole process tree; an interrupted or cancelled run is
finished later with `resume=True` (its finished steps are skipped, training continues from the last
epoch checkpoint).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

try:
    from ScarEnhanceLib.ProcessRunner import Progress, ProcessRunner, RunStatus, engineCommand
except ImportError:  # a source checkout where only this module's folder is on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ScarEnhance"))
    from ScarEnhanceLib.ProcessRunner import Progress, ProcessRunner, RunStatus, engineCommand

PRESETS = ("cpu-small", "gpu-paper")
STEPS = ("targets", "segmentation", "diffusion", "evaluation")
STATE_FILE = "pipeline.json"  # written by scarenhance.pipeline


@dataclass
class TrainingParameters:
    """Options of one `scarenhance train` run (names as in the panel; see `scarenhance train --help`)."""

    dataFolder: str
    outputFolder: str
    preset: str = "cpu-small"
    resume: bool = False
    evalDataFolder: str = ""  # held-out labelled test set; empty: the validation cases
    device: str = "auto"
    layout: str = "auto"
    overrides: list = field(default_factory=list)  # "STEP.KEY=VALUE", e.g. "diffusion.epochs=100"
    stopAfter: str = ""
    lpipsWeights: str = ""

    def problems(self) -> list[str]:
        """What is wrong with these options, in words for the panel (empty when they can run)."""
        found = []
        if not self.dataFolder or not Path(self.dataFolder).is_dir():
            found.append(f"The data folder does not exist: {self.dataFolder or '(none chosen)'}")
        if not self.outputFolder:
            found.append("Choose an output folder for the run.")
        elif Path(self.outputFolder).is_file():
            found.append(f"The output folder is a file: {self.outputFolder}")
        elif not self.resume and (Path(self.outputFolder) / STATE_FILE).is_file():
            found.append("The output folder holds a run already: tick Resume to finish it, or choose another folder.")
        if self.preset not in PRESETS:
            found.append(f"Unknown preset {self.preset!r}; choose {' or '.join(PRESETS)}.")
        if self.evalDataFolder and not Path(self.evalDataFolder).is_dir():
            found.append(f"The test data folder does not exist: {self.evalDataFolder}")
        if self.stopAfter and self.stopAfter not in STEPS:
            found.append(f"Unknown step {self.stopAfter!r}: choose one of {', '.join(STEPS)}.")
        return found

    def toArgs(self) -> list[str]:
        """`scarenhance` arguments of this run."""
        args = ["train", "--data", self.dataFolder, "--out", self.outputFolder, "--preset", self.preset,
                "--device", self.device, "--layout", self.layout]
        if self.resume:
            args.append("--resume")
        if self.evalDataFolder:
            args += ["--eval-data", self.evalDataFolder]
        if self.stopAfter:
            args += ["--stop-after", self.stopAfter]
        if self.lpipsWeights:
            args += ["--lpips-weights", self.lpipsWeights]
        for item in self.overrides:
            args += ["--set", str(item)]
        return args


@dataclass
class TrainingResult:
    status: RunStatus
    returnCode: Optional[int]
    outputFolder: Path
    state: Optional[dict]  # pipeline.json
    error: str = ""  # the engine's error message when the run failed

    @property
    def succeeded(self) -> bool:
        return self.status == RunStatus.SUCCEEDED

    @property
    def stepsDone(self) -> list[str]:
        return [s for s in STEPS if (self.state or {}).get("steps", {}).get(s, {}).get("status") == "done"]

    @property
    def reportPath(self) -> Optional[Path]:
        path = self.outputFolder / "report" / "report.md"
        return path if path.is_file() else None


class TrainingLogic:
    """registry: a ScarEnhanceLib.ModelRegistry (default: the user's model folder); python: the child's
    interpreter (default PythonSlicer inside Slicer); runnerFactory(argv) -> ProcessRunner (tests swap it)."""

    def __init__(self, registry=None, python: Optional[str] = None, runnerFactory: Callable = ProcessRunner):
        self._registry = registry
        self.python = python
        self.runnerFactory = runnerFactory
        self.runner: Optional[ProcessRunner] = None

    @property
    def registry(self):
        if self._registry is None:
            from ScarEnhanceLib.ModelRegistry import ModelRegistry

            self._registry = ModelRegistry()
        return self._registry

    # -- running -------------------------------------------------------------------------------------
    def start(self, params: TrainingParameters) -> ProcessRunner:
        """Start the child process and return its runner (poll it for Progress/Log/Finished events)."""
        problems = params.problems()
        if problems:
            raise ValueError("\n".join(problems))
        if self.runner is not None and not self.runner.finished:
            raise RuntimeError("a training run is in progress already")
        self.runner = self.runnerFactory(engineCommand(params.toArgs(), self.python)).start()
        return self.runner

    def cancel(self) -> None:
        """Stop the running child (its state and checkpoints stay: resume later)."""
        if self.runner is not None:
            self.runner.cancel()

    def run(self, params: TrainingParameters, onProgress: Optional[Callable[[Progress], None]] = None,
            onLog: Optional[Callable[[str], None]] = None, cancel: Optional[threading.Event] = None,
            timeoutS: Optional[float] = None, importModels: bool = False) -> TrainingResult:
        """Run to the end on this thread; with importModels, a successful run's models go into the registry."""
        runner = self.start(params)
        runner.wait(timeoutS=timeoutS, onProgress=onProgress, onLog=onLog, cancel=cancel)
        result = self.result(params)
        if importModels and result.succeeded and {"segmentation", "diffusion"} <= set(result.stepsDone):
            self.importModels(result.outputFolder)
        return result

    def result(self, params: TrainingParameters) -> TrainingResult:
        """How the last run ended, with the pipeline's state file."""
        runner = self.runner
        error = ""
        if runner.status == RunStatus.FAILED:
            from ScarEnhanceLib.EngineJob import errorMessage

            error = errorMessage(runner.logLines)
        return TrainingResult(runner.status, runner.returnCode, Path(params.outputFolder), self.readState(params.outputFolder), error)

    # -- results -------------------------------------------------------------------------------------
    @staticmethod
    def readState(outputFolder) -> Optional[dict]:
        path = Path(outputFolder) / STATE_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except json.JSONDecodeError:
            return None  # being replaced right now (it is written atomically, so only briefly)

    @classmethod
    def trainedModels(cls, outputFolder) -> dict:
        """{"segmentation": folder, "diffusion": folder} for the model steps that are done."""
        state = cls.readState(outputFolder) or {}
        models = {}
        for step in ("segmentation", "diffusion"):
            info = state.get("steps", {}).get(step, {})
            if info.get("status") == "done" and info.get("outputs", {}).get("model"):
                models[step] = Path(info["outputs"]["model"])
        return models

    def importModels(self, outputFolder) -> list:
        """Copy the run's trained models (weights and configs only, not the checkpoints) into the
        registry's user folder, checked against their SHA-256. Returns the registry's ModelInfos."""
        models = self.trainedModels(outputFolder)
        if not models:
            raise ValueError(f"no trained model in {outputFolder}: the segmentation and diffusion steps are not done")
        imported = []
        with tempfile.TemporaryDirectory() as tmp:
            for folder in models.values():
                clean = Path(tmp) / folder.name
                for part in ("configs", "models"):
                    shutil.copytree(folder / part, clean / part)
                for extra in ("README.md",):
                    if (folder / extra).is_file():
                        shutil.copy2(folder / extra, clean / extra)
                imported.append(self.registry.importFolder(clean))
        return imported


def describeState(state: Optional[dict]) -> str:
    """'targets ✓  segmentation ✓  diffusion (running)  evaluation –' for the status line and logs."""
    if not state:
        return "no run yet"
    marks = {"done": "✓", "running": "(interrupted or running)", "pending": "–"}
    return "  ".join(f"{s} {marks.get(state['steps'][s]['status'], state['steps'][s]['status'])}" for s in STEPS)
