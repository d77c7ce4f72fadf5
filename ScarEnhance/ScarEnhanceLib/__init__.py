"""The Slicer side of ScarEnhance, one concern per file.

    Logic.py          what Segment heart / Enhance scar do (blocking and async), on the scene
    EngineJob.py      one engine command: child process → results imported into the scene
    ProcessRunner.py  the child process, its progress lines, Cancel that kills the process tree
    MrmlIO.py         volumes and segments to files and back, with the input's exact geometry
    Parameters.py     options → engine command lines; the panel's typed parameter node
    ModelRegistry.py  shipped and site models, checked against their SHA-256
    InstallLogic.py   first-use install of torch and the engine's packages
    Widget.py         the Qt panel
    SampleData.py     a synthetic LGE case in the Sample Data module

Nothing here is imported at package import: the runner and registry work without Slicer or Qt.
"""
