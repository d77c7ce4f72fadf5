"""First-use install of what the engine needs in Slicer's Python, with the user's consent.

Never runs at import: the panels call `ensureDependencies()` when a button needs the engine. What to
do is decided by pure functions (`torchProblem`, `planInstall`, `selfTestSkipReason`, `pipInstaller`),
tested without Slicer; `InstallLogic` carries the plan out:
- torch through the PyTorch extension's PyTorchUtils (it picks the build for the GPU and driver), also
  when an installed torch is outside TORCH_REQUIREMENT. Without that extension, it is installed from
  the server with its own dialogs switched off (the user was asked once, by us) and no auto-restart.
- the rest (Resources/requirements.txt) through `slicer.packaging.pip_ensure` (Slicer ≥ 5.12), else
  `slicer.util.pip_install` (5.10), with a constraints file pinning Slicer's own SimpleITK, numpy and
  torch to the installed versions, so pip can never replace them.
- in testing mode nothing is installed (tests must not change Slicer's Python): self-tests skip.
- `needsRestart` says when Slicer must restart before the new packages can be imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Optional

from packaging.requirements import Requirement

REQUIREMENTS = Path(__file__).resolve().parent.parent / "Resources" / "requirements.txt"
PROTECTED = ("SimpleITK", "numpy", "torch")  # Slicer's own builds: pin, never replace
TORCH_REQUIREMENT = "torch>=2.2,<2.15"
TORCH_EXTENSION = "PyTorch"  # the extension that provides PyTorchUtils

# Steps of an install plan, in the order they run.
INSTALL_TORCH_EXTENSION = "install the PyTorch extension (then restart)"
INSTALL_TORCH = "install torch through PyTorchUtils"
PIP_INSTALL = "pip-install the other packages"


def loadRequirements(path: Path = REQUIREMENTS) -> list[Requirement]:
    lines = (l.split("#", 1)[0].strip() for l in Path(path).read_text(encoding="utf-8").splitlines())
    return [Requirement(l) for l in lines if l and not l.startswith("-")]


def installedVersion(name: str) -> Optional[str]:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def missingRequirements(requirements: list[Requirement], have: Callable[[str], Optional[str]] = installedVersion) -> list[Requirement]:
    """Requirements not installed, or installed at a version outside the specifier."""
    missing = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate():
            continue
        found = have(req.name)
        if found is None or (req.specifier and not req.specifier.contains(found, prereleases=True)):
            missing.append(req)
    return missing


def torchProblem(installed: Optional[str], requirement: str = TORCH_REQUIREMENT) -> Optional[str]:
    """None when the installed torch fits, else what is wrong ('torch' when it is absent)."""
    if installed is None:
        return "torch"
    spec = Requirement(requirement).specifier
    if spec.contains(installed.split("+", 1)[0], prereleases=True):  # "2.5.1+cu121" is 2.5.1
        return None
    return f"{requirement} (torch {installed} is installed)"


@dataclass(frozen=True)
class InstallPlan:
    steps: tuple  # INSTALL_TORCH_EXTENSION, INSTALL_TORCH, PIP_INSTALL, in this order
    message: str = ""  # why nothing is done, when steps is empty and something is missing


def planInstall(torchIssue: Optional[str], pipMissing: list, hasPyTorchUtils: bool, testing: bool) -> InstallPlan:
    """What to install for the problems found. Without PyTorchUtils the PyTorch extension comes first,
    and nothing else until Slicer restarted with it. Testing mode installs nothing."""
    if not torchIssue and not pipMissing:
        return InstallPlan(())
    if testing:
        return InstallPlan((), "Slicer runs in testing mode, which installs no Python packages; missing: "
                           + ", ".join([torchIssue] * bool(torchIssue) + [str(r) for r in pipMissing]))
    if torchIssue and not hasPyTorchUtils:
        return InstallPlan((INSTALL_TORCH_EXTENSION,))
    return InstallPlan(((INSTALL_TORCH,) if torchIssue else ()) + ((PIP_INSTALL,) if pipMissing else ()))


def selfTestSkipReason(missing: list[str]) -> Optional[str]:
    """The message a self-test skips with when the engine cannot run (as MONAIAuto3DSeg and
    SlicerNNUnet do: tests never install packages), None when it can run."""
    if not missing:
        return None
    return ("skipped: the engine's Python packages are not installed in this Slicer (" + ", ".join(missing)
            + "). Click Segment heart once to install them, then run the test again.")


def pipInstaller(slicerModule) -> tuple[str, Callable]:
    """('pip_ensure', fn) where Slicer has slicer.packaging (5.12 and later), else ('pip_install', fn).
    (`slicer.pydeps` exists in no Slicer.)"""
    packaging = getattr(slicerModule, "packaging", None)
    if packaging is None:
        try:
            packaging = importlib.import_module("slicer.packaging")
        except ImportError:
            packaging = None
    if packaging is not None and hasattr(packaging, "pip_ensure"):
        return "pip_ensure", packaging.pip_ensure
    return "pip_install", slicerModule.util.pip_install


def writeConstraints(folder: str) -> Path:
    """A pip constraints file holding each protected package at its installed version."""
    pins = [f"{name}=={installedVersion(name)}" for name in PROTECTED if installedVersion(name)]
    path = Path(folder) / "scarenhance-constraints.txt"
    path.write_text("\n".join(pins) + "\n", encoding="utf-8")
    return path


class InstallLogic:
    """`ensureDependencies()` → True when the engine can run now; False when the user declined, Slicer
    runs in testing mode, or a restart is needed first (`needsRestart`). `confirm(text) -> bool` asks
    the user; `log(text)` reports; `testing` (default: slicer.app.testingEnabled()) installs nothing."""

    def __init__(self, confirm: Callable[[str], bool], log: Callable[[str], None] = logging.info,
                 requirementsPath: Path = REQUIREMENTS, testing: Optional[bool] = None):
        self.confirm = confirm
        self.log = log
        self.requirements = loadRequirements(requirementsPath)
        self.testing = testing
        self.needsRestart = False

    def missing(self) -> list[str]:
        """What is not there yet or at a wrong version: the torch problem and/or requirement strings."""
        issue = torchProblem(installedVersion("torch"))
        return [issue] * bool(issue) + [str(r) for r in missingRequirements(self.requirements)]

    def ensureDependencies(self) -> bool:
        torchIssue = torchProblem(installedVersion("torch"))
        pipMissing = missingRequirements(self.requirements)
        if not torchIssue and not pipMissing:
            return True
        if self.needsRestart:
            self.log("Restart 3D Slicer to finish installing ScarEnhance's Python packages.")
            return False
        plan = planInstall(torchIssue, pipMissing, _hasPyTorchUtils(), self._testing())
        if not plan.steps:
            self.log(plan.message)
            return False
        if not self.confirm(
            "ScarEnhance needs these Python packages in 3D Slicer: " + ", ".join(self.missing()) + ".\n\n"
            "They will be downloaded and installed now (PyTorch through the PyTorch extension). "
            "This can take several minutes. Install them?"
        ):
            self.log("Installation declined: the engine needs these packages.")
            return False
        if INSTALL_TORCH_EXTENSION in plan.steps:
            self._installPyTorchExtension()
            return False
        if INSTALL_TORCH in plan.steps:
            self._installTorch()
        if PIP_INSTALL in plan.steps:
            with tempfile.TemporaryDirectory() as folder:
                self._pipInstall(pipMissing, writeConstraints(folder))
        importlib.invalidate_caches()
        still = self.missing()
        if still and not self.needsRestart:
            raise RuntimeError("these packages are still missing after installation: " + ", ".join(still))
        self.log("ScarEnhance's Python packages are installed." if not self.needsRestart else
                 "Restart 3D Slicer to use the packages just installed (an older version was already loaded).")
        return not self.needsRestart

    def _testing(self) -> bool:
        if self.testing is not None:
            return self.testing
        try:
            import slicer

            return bool(slicer.app.testingEnabled())
        except (ImportError, AttributeError):  # no application
            return False

    def _installTorch(self) -> None:
        import PyTorchUtils

        wasLoaded = "torch" in sys.modules
        self.log("Installing PyTorch through the PyTorch extension (it picks the build for this computer's GPU)…")
        torchLogic = PyTorchUtils.PyTorchUtilsLogic()
        if torchLogic.installTorch(askConfirmation=False, torchVersionRequirement=str(Requirement(TORCH_REQUIREMENT).specifier)) is None:
            raise RuntimeError("PyTorch could not be installed. Install it from the PyTorch Utils module, then try again.")
        if wasLoaded:  # an older torch is in memory: the new one loads after a restart
            self.needsRestart = True

    def _installPyTorchExtension(self) -> None:
        """Slicer without the PyTorch extension (ours depends on it, so this is rare): install it without
        the manager's own confirmation and restart dialogs (we asked already); it loads after a restart."""
        import slicer

        manager = slicer.app.extensionsManagerModel()
        self.log("Installing the PyTorch extension…")
        wasInteractive = manager.interactive
        manager.interactive = False
        try:
            installed = manager.installExtensionFromServer(TORCH_EXTENSION, False)  # restart=False: we say so
        finally:
            manager.interactive = wasInteractive
        if not installed:
            raise RuntimeError("The PyTorch extension could not be installed: install it from the Extensions Manager.")
        self.needsRestart = True
        self.log("The PyTorch extension is installed. Restart 3D Slicer, then click the button again.")

    def _pipInstall(self, requirements: list[Requirement], constraints: Path) -> None:
        import slicer

        self.log("Installing " + ", ".join(map(str, requirements)) + "…")
        name, install = pipInstaller(slicer)
        if name == "pip_ensure":
            # Already confirmed, and the restart is ours to announce: no second dialog. Not in testing
            # mode (planInstall returned no steps), so skip_in_testing does not apply.
            install(requirements, constraints=str(constraints), prompt_install=False, prompt_restart=False,
                    requester="ScarEnhance", skip_in_testing=False)
        else:
            install([*map(str, requirements), "-c", str(constraints)])
        changedLoaded = [r.name for r in requirements if r.name.replace("-", "_") in _importedTopLevels()]
        if changedLoaded:
            self.needsRestart = True
            self.log("Restart 3D Slicer: these packages were already loaded in an older version: " + ", ".join(changedLoaded))


def _hasPyTorchUtils() -> bool:
    return importlib.util.find_spec("PyTorchUtils") is not None


def _importedTopLevels() -> set[str]:
    return {name.split(".", 1)[0] for name in sys.modules}
