"""The Slicer API the Slicer side uses that slicer-core cannot show: reviewed by reading Slicer's source.

Each entry: the name as the code spells it → the file of github.com/Slicer/Slicer that defines it.
Reviewed against the tags v5.10.0 and v5.12.0 (the supported lines) and main (2026-08), e.g.
`git -C <mirror> show v5.10.0:Base/Python/slicer/util.py`. test_slicer_api.py fails when the code
uses a name that is neither here nor in slicer-core, when an entry here is no longer used, and when
slicer-core can check an entry itself. The slicer.util functions and vtk classes that slicer-core
checks were also found in v5.10.0's source (slicer-core is 5.13).
"""

QT = "PythonQt wraps Qt 5 (Slicer's Qt); class from Qt itself"
CTK = "Libs/Widgets of commontk/CTK (Slicer's CTK)"

REVIEWED = {
    # -- the application object (qSlicerCoreApplication / qSlicerApplication) --------------------------
    "slicer.app.connect": "Base/QTCore/qSlicerCoreApplication.h (a QObject: startupCompleted() signal)",
    "slicer.app.extensionsManagerModel": "Base/QTCore/qSlicerCoreApplication.h (Q_INVOKABLE extensionsManagerModel())",
    "slicer.app.majorVersion": "Base/QTCore/qSlicerCoreApplication.h (Q_PROPERTY int majorVersion)",
    "slicer.app.minorVersion": "Base/QTCore/qSlicerCoreApplication.h (Q_PROPERTY int minorVersion)",
    "slicer.app.slicerUserSettingsFilePath": "Base/QTCore/qSlicerCoreApplication.h (Q_PROPERTY slicerUserSettingsFilePath)",
    "slicer.app.temporaryPath": "Base/QTCore/qSlicerCoreApplication.h (Q_PROPERTY temporaryPath)",
    "slicer.app.testingEnabled": "Base/QTCore/qSlicerBaseQTCorePythonQtDecorators.h (static testingEnabled())",
    "slicer.mrmlScene": "Base/Python/slicer/__init__.py (set by the application at startup; a vtkMRMLScene)",
    "slicer.modules.SegmentEditorWidget.editor": "Modules/Scripted/SegmentEditor/SegmentEditor.py (SegmentEditorWidget.editor)",
    # -- Python modules of the application -------------------------------------------------------------
    "slicer.ScriptedLoadableModule.ScriptedLoadableModule": "Base/Python/slicer/ScriptedLoadableModule.py",
    "slicer.ScriptedLoadableModule.ScriptedLoadableModuleLogic": "Base/Python/slicer/ScriptedLoadableModule.py",
    "slicer.ScriptedLoadableModule.ScriptedLoadableModuleTest": "Base/Python/slicer/ScriptedLoadableModule.py",
    "slicer.ScriptedLoadableModule.ScriptedLoadableModuleWidget": "Base/Python/slicer/ScriptedLoadableModule.py",
    "slicer.i18n.tr": "Base/Python/slicer/i18n.py",
    "slicer.parameterNodeWrapper.Choice": "Base/Python/slicer/parameterNodeWrapper/validators.py",
    "slicer.parameterNodeWrapper.WithinRange": "Base/Python/slicer/parameterNodeWrapper/validators.py",
    "slicer.parameterNodeWrapper.parameterNodeWrapper": "Base/Python/slicer/parameterNodeWrapper/wrapper.py",
    "slicer.qMRMLSegmentEditorWidget": "Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.h",
    # -- Qt and CTK ----------------------------------------------------------------------------------
    "ctk.ctkPathLineEdit": CTK + " ctkPathLineEdit.h",
    "ctk.ctkPathLineEdit.Dirs": CTK + " ctkPathLineEdit.h (Filter enum)",
    "qt.QCheckBox": QT,
    "qt.QComboBox": QT,
    "qt.QDesktopServices.openUrl": QT,
    "qt.QFileDialog.getExistingDirectory": QT,
    "qt.QFormLayout": QT,
    "qt.QHBoxLayout": QT,
    "qt.QLabel": QT,
    "qt.QPlainTextEdit": QT,
    "qt.QProgressBar": QT,
    "qt.QPushButton": QT,
    "qt.QSettings": QT,
    "qt.QTimer": QT,
    "qt.QUrl.fromLocalFile": QT,
    "qt.QWidget": QT,
    "qt.Qt.ToolTipRole": QT,
}

# Methods called on Slicer objects (not reachable as slicer.* names): (method, the class, its source file).
# Those of classes slicer-core has are checked on the class there; the others were read in the file.
INDIRECT = [
    ("installKeyboardShortcuts", "qMRMLSegmentEditorWidget", "Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.h"),
    ("uninstallKeyboardShortcuts", "qMRMLSegmentEditorWidget", "Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.h"),
    ("removeViewObservations", "qMRMLSegmentEditorWidget", "Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.h"),
    ("setSourceVolumeNode", "qMRMLSegmentEditorWidget", "Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.h"),
    ("setMRMLSegmentEditorNode", "qMRMLSegmentEditorWidget", "Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.h"),
    ("setActiveEffect", "qMRMLSegmentEditorWidget", "Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.h"),
    ("setMaximumNumberOfUndoStates", "qMRMLSegmentEditorWidget", "Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.h"),
    ("setCurrentSegmentID", "qMRMLSegmentSelectorWidget", "Libs/MRML/Widgets/qMRMLSegmentSelectorWidget.h"),
    ("currentSegmentID", "qMRMLSegmentSelectorWidget", "Libs/MRML/Widgets/qMRMLSegmentSelectorWidget.h"),
    ("installExtensionFromServer", "qSlicerExtensionsManagerModel", "Base/QTCore/qSlicerExtensionsManagerModel.h (name, restart, update)"),
    ("interactive", "qSlicerExtensionsManagerModel", "Base/QTCore/qSlicerExtensionsManagerModel.h (Q_PROPERTY interactive)"),
    ("registerCustomSampleDataSource", "SampleDataLogic", "Modules/Scripted/SampleData/SampleData.py"),
    ("downloadFromSource", "SampleDataLogic", "Modules/Scripted/SampleData/SampleData.py"),
    ("installTorch", "PyTorchUtilsLogic", "PyTorchUtils/PyTorchUtils.py of fepegar/SlicerPyTorch"),
    ("pip_ensure", "slicer.packaging", "Base/Python/slicer/packaging.py (from 5.12; found by InstallLogic.pipInstaller)"),
    ("pip_install", "slicer.util", "Base/Python/slicer/util.py (5.10: pip_install(requirements))"),
    ("GetBinaryLabelmapRepresentation", "vtkMRMLSegmentationNode", "Libs/MRML/Core/vtkMRMLSegmentationNode.h"),
    ("AddSegmentFromBinaryLabelmapRepresentation", "vtkMRMLSegmentationNode", "Libs/MRML/Core/vtkMRMLSegmentationNode.h"),
    ("CreateClosedSurfaceRepresentation", "vtkMRMLSegmentationNode", "Libs/MRML/Core/vtkMRMLSegmentationNode.h"),
    ("SetReferenceImageGeometryParameterFromVolumeNode", "vtkMRMLSegmentationNode", "Libs/MRML/Core/vtkMRMLSegmentationNode.h"),
    ("GetTerminologyEntryTagName", "vtkSegment", "Libs/vtkSegmentationCore/vtkSegment.h"),
    ("SetTag", "vtkSegment", "Libs/vtkSegmentationCore/vtkSegment.h"),
    ("GetSegmentIdBySegmentName", "vtkSegmentation", "Libs/vtkSegmentationCore/vtkSegmentation.h"),
    ("CopyOrientation", "vtkMRMLVolumeNode", "Libs/MRML/Core/vtkMRMLVolumeNode.h"),
    ("GenerateUniqueName", "vtkMRMLScene", "Libs/MRML/Core/vtkMRMLScene.h"),
    ("GetSubjectHierarchyNode", "vtkMRMLScene", "Libs/MRML/Core/vtkMRMLScene.h"),
]

# Calls the Slicer side must not make: each was one of issue 14's defects.
FORBIDDEN = {
    "SetTerminology": "exists only from Slicer 5.10: set the tag GetTerminologyEntryTagName() instead",
    "tryWithErrorDisplay": "re-raises after its popup: use ErrorDisplay.guarded in button slots",
    "pydeps": "slicer.pydeps exists in no Slicer: slicer.packaging (5.12) or slicer.util.pip_install",
}
