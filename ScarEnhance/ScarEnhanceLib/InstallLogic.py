"""First-use install of what the engine needs in Slicer's Python, with the user's consent.

Never runs at import: the panel calls `ensureDependencies()` when a button needs the engine.
- torch comes from the PyTorch extension (PyTorchUtils picks the build for the GPU and driver).
- the rest (Resources/requirements.txt) through `slicer.pydeps.pip_ensure` (Slicer ≥ 5.11; the
  brief's `slicer.packaging.pip_ensure` where a Slicer has it there), else `slicer.util.pip_install`.
- a constraints file pins Slicer's own SimpleITK, numpy and torch to the installed versions, so pip
  can never replace them (Slicer's SimpleITK has Slicer's IO; a pip torch would drop the CUDA build).
- `needsRestart` says when Slicer must restart before the new packages can be imported.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Optional

from packaging.requirements import Requirement

REQUIREMENTS = Path(__file__).resolve().parent.parent / "Resources" / "requirements.txt"
PROTECTED = ("SimpleITK", "numpy", "torch")  # Slicer's own builds: pin, never replace
TORCH_REQUIREMENT = "torch>=2.2,<2.15"


def loadRequirements(path: Path = REQUIREMENTS) -> list[Requirement]:
    lines = (l.split("#", 1)[0].strip() for l in Path(path).read_text(encoding="utf-8").splitlines())
    return [Requirement(l) for l in lines if l and not l.startswith("-")]


def installedVersion(name: str) -> Optional[str]:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def missingRequirements(requirements: list[Requirement]) -> list[Requirement]:
    """Requirements not installed, or installed at a version outside the specifier."""
    missing = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate():
            continue
        have = installedVersion(req.name)
        if have is None or (req.specifier and have not in req.specifier):
            missing.append(req)
    return missing


def writeConstraints(folder: str) -> Path:
    """A pip constraints file holding each protected package at its installed version."""
    pins = [f"{name}=={installedVersion(name)}" for name in PROTECTED if installedVersion(name)]
    path = Path(folder) / "scarenhance-constraints.txt"
    path.write_text("\n".join(pins) + "\n", encoding="utf-8")
    return path


class InstallLogic:
    """`ensureDependencies()` → True when the engine can run now; False when the user declined or a
    restart is needed first (`needsRestart`). `confirm(text) -> bool` asks the user; `log(text)` reports."""

    def __init__(self, confirm: Callable[[str], bool], log: Callable[[str], None] = logging.info,
                 requirementsPath: Path = REQUIREMENTS):
        self.confirm = confirm
        self.log = log
        self.requirements = loadRequirements(requirementsPath)
        self.needsRestart = False

    def missing(self) -> list[str]:
        """What is not there yet: 'torch' and/or requirement strings."""
        names = [] if installedVersion("torch") else ["torch"]
        return names + [str(r) for r in missingRequirements(self.requirements)]

    def ensureDependencies(self) -> bool:
        missing = self.missing()
        if not missing:
            return True
        if self.needsRestart:
            self.log("Restart 3D Slicer to finish installing ScarEnhance's Python packages.")
            return False
        if not self.confirm(
            "ScarEnhance needs these Python packages in 3D Slicer: " + ", ".join(missing) + ".\n\n"
            "They will be downloaded and installed now (PyTorch through the PyTorch extension). "
            "This can take several minutes. Install them?"
        ):
            self.log("Installation declined: Segment heart and Enhance scar need these packages.")
            return False
        if "torch" in missing:
            self._installTorch()
            if self.needsRestart:
                return False
        with tempfile.TemporaryDirectory() as folder:
            self._pipInstall(missingRequirements(self.requirements), writeConstraints(folder))
        importlib.invalidate_caches()
        still = self.missing()
        if still:
            raise RuntimeError("these packages are still missing after installation: " + ", ".join(still))
        self.log("ScarEnhance's Python packages are installed.")
        return not self.needsRestart

    def _installTorch(self) -> None:
        try:
            import PyTorchUtils
        except ModuleNotFoundError:
            self._installPyTorchExtension()
            return
        self.log("Installing PyTorch through the PyTorch extension (it picks the build for this computer's GPU)…")
        torchLogic = PyTorchUtils.PyTorchUtilsLogic()
        if torchLogic.installTorch(askConfirmation=False, torchVersionRequirement=str(Requirement(TORCH_REQUIREMENT).specifier)) is None:
            raise RuntimeError("PyTorch could not be installed. Install it from the PyTorch Utils module, then try again.")

    def _installPyTorchExtension(self) -> None:
        """Slicer without the PyTorch extension (ours depends on it, so this is rare): install it; it
        is loaded after a restart."""
        import slicer

        manager = slicer.app.extensionsManagerModel()
        self.log("Installing the PyTorch extension…")
        if not manager.installExtensionFromServer("PyTorch"):
            raise RuntimeError("The PyTorch extension could not be installed: install it from the Extensions Manager.")
        self.needsRestart = True
        self.log("The PyTorch extension is installed. Restart 3D Slicer, then click the button again.")

    def _pipInstall(self, requirements: list[Requirement], constraints: Path) -> None:
        if not requirements:
            return
        import slicer

        self.log("Installing " + ", ".join(map(str, requirements)) + "…")
        pipEnsure = _findPipEnsure(slicer)
        if pipEnsure is not None:
            # Already confirmed above; pip_ensure itself offers a restart when an imported package changed.
            pipEnsure(requirements, constraints=str(constraints), prompt_install=False, requester="ScarEnhance")
        else:
            slicer.util.pip_install([*map(str, requirements), "-c", str(constraints)])
        changedLoaded = [r.name for r in requirements if r.name.replace("-", "_") in _importedTopLevels()]
        if changedLoaded:
            self.needsRestart = True
            self.log("Restart 3D Slicer: these packages were already loaded in an older version: " + ", ".join(changedLoaded))


def _findPipEnsure(slicer) -> Optional[Callable]:
    for moduleName in ("slicer.pydeps", "slicer.packaging"):
        try:
            module = importlib.import_module(moduleName)
        except ImportError:
            continue
        if hasattr(module, "pip_ensure"):
            return module.pip_ensure
    return None


def _importedTopLevels() -> set[str]:
    import sys

    return {name.split(".", 1)[0] for name in sys.modules}
