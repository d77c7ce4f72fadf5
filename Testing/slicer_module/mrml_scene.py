"""A Slicer scene without the Slicer application, set up the way Slicer's application does it.

slicer-core ships Slicer's real MRML library and module logics but no `slicer.app`; this module builds
what the application would have built at startup (FACTS.md, "slicer-core"): a scene with a crosshair
node, an application logic with the Colors logic's default color nodes, the Colors, Volumes,
Segmentations and Subject Hierarchy module logics registered on it, and `slicer.mrmlScene` /
`slicer.modules.<name>.logic()` pointing at them, so that `slicer.util` helpers work.
"""

from __future__ import annotations

import types

import slicer
import vtk


class _Module:
    """What `slicer.modules.volumes` is in the application: an object with a `logic()` method."""

    def __init__(self, logic):
        self._logic = logic

    def logic(self):
        return self._logic


class SlicerCoreScene:
    """Owns the scene and every logic object: a collected Colors logic breaks volume display."""

    def __init__(self):
        scene = slicer.vtkMRMLScene()
        scene.AddNode(slicer.vtkMRMLCrosshairNode())

        app_logic = slicer.vtkSlicerApplicationLogic()
        app_logic.SetMRMLScene(scene)
        app_logic.GetColorLogic().SetMRMLScene(scene)  # adds the default color nodes
        app_logic.SetSliceLogics(vtk.vtkCollection())
        app_logic.SetViewLogics(vtk.vtkCollection())

        self.logics = {}
        for name, cls in (
            ("Colors", slicer.vtkSlicerColorLogic),
            ("Volumes", slicer.vtkSlicerVolumesLogic),
            ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic),
            ("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic),
        ):
            logic = cls()
            logic.SetMRMLApplicationLogic(app_logic)
            logic.SetMRMLScene(scene)
            app_logic.SetModuleLogic(name, logic)
            self.logics[name] = logic
        self.scene = scene
        self.app_logic = app_logic

    def install(self):
        """Make this scene Slicer's current scene (`slicer.mrmlScene`, `slicer.modules.*.logic()`).
        The installed object is kept alive here: its application logic must outlive every use."""
        global _installed
        _installed = self
        self._saved = {name: getattr(slicer, name) for name in ("mrmlScene", "modules") if hasattr(slicer, name)}
        slicer.mrmlScene = self.scene
        slicer.modules = types.SimpleNamespace(
            colors=_Module(self.logics["Colors"]),
            volumes=_Module(self.logics["Volumes"]),
            segmentations=_Module(self.logics["Segmentations"]),
            subjecthierarchy=_Module(self.logics["SubjectHierarchy"]),
        )
        return self

    def uninstall(self):
        global _installed
        for name in ("mrmlScene", "modules"):  # as before install: absent stays absent
            if name in self._saved:
                setattr(slicer, name, self._saved[name])
            elif hasattr(slicer, name):
                delattr(slicer, name)
        self.scene.Clear(1)
        _installed = None


_installed = None
