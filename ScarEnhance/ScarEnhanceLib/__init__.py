"""The Slicer side of ScarEnhance, one concern per file.

    Logic.py            what Segment heart / Enhance scar do (blocking and async), on the scene
    EngineJob.py        one engine command: child process → results imported into the scene
    ProcessRunner.py    the child process, its progress lines, Cancel that kills the process tree
    MrmlIO.py           volumes and segments to files and back, with the input's exact geometry
    Reports.py          the engine's plausibility and safety reports, checked, and their panel lines
    Parameters.py       options → engine command lines; the panel's typed parameter node
    ModelRegistry.py    shipped and site models, checked against their SHA-256
    InstallLogic.py     first-use install of torch and the engine's packages (decisions: pure functions)
    Compatibility.py    which Slicer and Python are supported (≥ 5.10), in Python 3.9 syntax
    PanelController.py  the panel's state: parameter node, running job, what its end shows (no Qt)
    ErrorDisplay.py     run a button's action, show its error, never re-raise
    Widget.py           the Qt panel (draws what PanelController decides)
    SampleData.py       a synthetic LGE case in the Sample Data module

Nothing here is imported at package import: the runner and registry work without Slicer or Qt.
"""
