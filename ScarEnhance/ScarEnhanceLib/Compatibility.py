"""Which Slicer and Python ScarEnhance supports, as pure functions (read before anything else loads).

Slicer 5.6/5.8 ship Python 3.9; the engine needs Python ≥ 3.10.12 (`tarfile` extraction filters,
used by the model zoo) and Slicer ≥ 5.10 (Python 3.12). On an older Slicer the module shows one
message instead of failing in the middle of a run. Kept to Python 3.9 syntax on purpose: this file
must import on the Slicers it turns away.
"""

from typing import Optional, Sequence

MIN_SLICER = (5, 10)
MIN_PYTHON = (3, 10, 12)  # = pyproject.toml's requires-python (a test checks it)
SUPPORTED_SLICER = "3D Slicer 5.10 or later (the 5.12 line included)"


def versionProblem(slicerVersion: Sequence[int], pythonVersion: Sequence[int]) -> Optional[str]:
    """None when this Slicer can run ScarEnhance, else the one message the module shows."""
    slicerVersion, pythonVersion = tuple(slicerVersion[:2]), tuple(pythonVersion[:3])
    have = "3D Slicer {} (Python {})".format(".".join(map(str, slicerVersion)), ".".join(map(str, pythonVersion)))
    if slicerVersion < MIN_SLICER or pythonVersion < MIN_PYTHON:
        return ("ScarEnhance needs {supported}, with Python {python} or later; this is {have}. "
                "Install a newer 3D Slicer from download.slicer.org.").format(
                    supported=SUPPORTED_SLICER, python=".".join(map(str, MIN_PYTHON)), have=have)
    return None


def runningVersionProblem() -> Optional[str]:
    """versionProblem() for the running Slicer (slicer.app) and interpreter."""
    import sys

    import slicer

    return versionProblem((slicer.app.majorVersion, slicer.app.minorVersion), sys.version_info)


def showVersionProblem(layout) -> bool:
    """On an unsupported Slicer, put the message in a module panel's layout (in place of the panel)
    and return True; else False. Both modules' widgets call this first in setup()."""
    problem = runningVersionProblem()
    if problem is None:
        return False
    import qt

    label = qt.QLabel(problem)
    label.wordWrap = True
    layout.addWidget(label)
    layout.addStretch(1)
    return True
