"""The Slicer side of ScarEnhanceTraining.

    TrainingLogic.py  run `scarenhance train` in a child process (progress, cancel), read its state,
                      import the trained models into ScarEnhance's model registry — no Slicer, no Qt
    Widget.py         the minimal Qt panel (folders, preset, Start/Cancel, progress, log)

The child process and its Cancel come from ScarEnhance's own runner (ScarEnhanceLib/ProcessRunner.py),
and the model import from its registry (ScarEnhanceLib/ModelRegistry.py): one implementation of each.
"""
