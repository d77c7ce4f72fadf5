"""The ScarEnhance panel: selectors, Segment heart, ROI correction, Enhance scar, progress and Cancel.

Built from Resources/UI/ScarEnhance.ui. Widgets with a `SlicerParameterName` are bound to the typed
parameter node by `connectGui`; model lists and the ROI segment are synced here. What a job does and
what its end shows is PanelController's (no Qt, tested); this file draws it. A running job is polled
by a QTimer on the GUI thread (the GUI stays responsive, MRML is touched on one thread only); while it
runs its button reads "Cancel". Leaving the module disconnects the GUI only: a running job finishes and
its results land. The embedded Segment Editor's keyboard shortcuts exist only while the module is shown
(as in SegmentEditor.py), so they never clash with the Segment Editor module's own.
"""

from __future__ import annotations

import logging
from typing import Optional

import qt
import slicer
import vtk
from slicer.util import VTKObservationMixin

from scarenhance.errors import ScarEnhanceError

from .EngineJob import EngineJob
from .ErrorDisplay import guarded
from .InstallLogic import InstallLogic
from .Logic import ScarEnhanceLogic
from .ModelRegistry import DIFFUSION, SEGMENTATION, ModelRegistry
from .PanelController import ENHANCE, ERROR, SEGMENT, WARNING, PanelController
from .ProcessRunner import PanelState, formatDuration

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer before 5.4
    def _(text):
        return text

POLL_MS = 250  # the status line and time left refresh at least this often while a job runs
STYLES = {"info": "", "warning": "color: #a04000; font-weight: bold;", "error": "color: #c0392b;"}

# Every widget this file uses, with the class it must have in the .ui (a test checks both ways).
UI_WIDGETS = {
    "inputsCollapsibleButton": "ctkCollapsibleButton",
    "inputVolumeSelector": "qMRMLNodeComboBox",
    "segmentationModelComboBox": "QComboBox",
    "diffusionModelComboBox": "QComboBox",
    "importModelButton": "QPushButton",
    "segmentHeartButton": "QPushButton",
    "roiCollapsibleButton": "ctkCollapsibleButton",
    "roiSegmentSelector": "qMRMLSegmentSelectorWidget",
    "openSegmentEditorButton": "QPushButton",
    "segmentEditorGroupBox": "ctkCollapsibleGroupBox",
    "advancedCollapsibleButton": "ctkCollapsibleButton",
    "outputVolumeSelector": "qMRMLNodeComboBox",
    "enhanceScarButton": "QPushButton",
    "progressBar": "QProgressBar",
    "statusLabel": "QLabel",
    "verdictLabel": "QLabel",
    "deviceStatusLabel": "QLabel",
}


class ScarEnhancePanel(VTKObservationMixin):
    def __init__(self, uiPath: str, logic: Optional[ScarEnhanceLogic] = None):
        VTKObservationMixin.__init__(self)
        self.uiWidget = slicer.util.loadUI(uiPath)
        self.ui = slicer.util.childWidgetVariables(self.uiWidget)
        self.uiWidget.setMRMLScene(slicer.mrmlScene)
        self.registry = ModelRegistry()  # shipped models + the user folder beside Slicer's settings
        self.logic = logic or ScarEnhanceLogic(self.registry)
        self.logic.registry = self.registry
        self.installer = InstallLogic(confirm=self._confirm, log=self._setStatus)
        self.controller = PanelController(self, modify=lambda param: slicer.util.NodeModify(param.parameterNode))
        self._guiTag = None
        self._observedParam = None
        self._updating = False
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._onTimer)
        self._setupSegmentEditor()
        self._connect()
        self._fillModelLists()
        self.ui.progressBar.hide()
        self.ui.verdictLabel.hide()

    @property
    def _param(self):
        return self.controller.param

    # -- module lifecycle (called by ScarEnhanceWidget) ------------------------------------------
    def enter(self) -> None:
        self._initializeParameterNode()
        self._attachSegmentEditor()
        self.segmentEditor.installKeyboardShortcuts()

    def exit(self) -> None:
        """Only the GUI is disconnected (as Slicer's template does): a running job goes on and lands."""
        self.segmentEditor.setActiveEffect(None)
        self.segmentEditor.uninstallKeyboardShortcuts()
        self.segmentEditor.removeViewObservations()
        self._disconnectGui()
        self.controller.exit()

    def cleanup(self) -> None:
        if self.controller.busy:
            self.controller.running.job.cancel()
        self.timer.stop()
        self.segmentEditor.uninstallKeyboardShortcuts()
        self.segmentEditor.removeViewObservations()
        self._disconnectGui()
        self.removeObservers()

    def onSceneStartClose(self, caller=None, event=None) -> None:
        self.controller.sceneClosing()  # a running job is cancelled: its results would have no scene
        self._disconnectGui()
        self.segmentEditor.setSegmentationNode(None)
        self.segmentEditor.removeViewObservations()

    def onSceneEndClose(self, caller=None, event=None) -> None:
        self._segmentEditorNode = None
        if self.controller.shown:
            self._initializeParameterNode()
            self._attachSegmentEditor()

    # -- parameter node --------------------------------------------------------------------------
    def _initializeParameterNode(self) -> None:
        self._disconnectGui()
        param = self.logic.getParameterNode()
        if not param.inputVolume:
            param.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        self.controller.enter(param)
        self._guiTag = param.connectGui(self.ui)
        self._observedParam = param
        self.addObserver(param, vtk.vtkCommand.ModifiedEvent, self._updateGUI)
        self._updateGUI()

    def _disconnectGui(self) -> None:
        if self._observedParam is not None:
            if self._guiTag is not None:
                self._observedParam.disconnectGui(self._guiTag)
            self.removeObserver(self._observedParam, vtk.vtkCommand.ModifiedEvent, self._updateGUI)
        self._guiTag = self._observedParam = None

    def _updateGUI(self, caller=None, event=None) -> None:
        """Parameter node → the widgets connectGui does not bind, and button states."""
        if self._param is None or self._guiTag is None or self._updating:
            self.refresh()
            return
        self._updating = True
        try:
            for combo, modelId in ((self.ui.segmentationModelComboBox, self._param.segmentationModel),
                                   (self.ui.diffusionModelComboBox, self._param.diffusionModel)):
                index = combo.findData(modelId) if modelId else 0
                combo.setCurrentIndex(max(index, 0))
            self.ui.roiSegmentSelector.setCurrentNode(self._param.roiSegmentation)
            if self._param.roiSegmentId:
                self.ui.roiSegmentSelector.setCurrentSegmentID(self._param.roiSegmentId)
        finally:
            self._updating = False
        self.refresh()

    def refresh(self) -> None:
        """Button texts and states from the controller (PanelView)."""
        running = self.controller.busy
        job = self.controller.running.job if running else None
        hasInput = self._param is not None and self._param.inputVolume is not None
        hasRoi = hasInput and self._param.roiSegmentation is not None and bool(self._param.roiSegmentId)
        for button, ready, idleText in ((self.ui.segmentHeartButton, hasInput, _("Segment heart")),
                                        (self.ui.enhanceScarButton, hasRoi, _("Enhance scar"))):
            isJobButton = self.controller.isJobButton(button)
            button.text = _("Cancel") if isJobButton else idleText
            button.enabled = isJobButton and job.state is not PanelState.CANCELLING or (not running and ready)
        for widget in (self.ui.inputsCollapsibleButton, self.ui.roiCollapsibleButton, self.ui.advancedCollapsibleButton):
            widget.enabled = not running
        self.ui.openSegmentEditorButton.enabled = hasRoi and not running
        if not running:
            self.timer.stop()
            self.ui.progressBar.hide()

    # -- connections -----------------------------------------------------------------------------
    def _connect(self) -> None:
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.segmentHeartButton.clicked.connect(self.onSegmentHeart)
        self.ui.enhanceScarButton.clicked.connect(self.onEnhanceScar)
        self.ui.importModelButton.clicked.connect(self.onImportModel)
        self.ui.openSegmentEditorButton.clicked.connect(self.onOpenSegmentEditor)
        self.ui.segmentationModelComboBox.currentIndexChanged.connect(lambda i: self._modelChosen("segmentationModel", self.ui.segmentationModelComboBox))
        self.ui.diffusionModelComboBox.currentIndexChanged.connect(lambda i: self._modelChosen("diffusionModel", self.ui.diffusionModelComboBox))
        self.ui.roiSegmentSelector.connect("currentNodeChanged(vtkMRMLNode*)", self._roiChosen)
        self.ui.roiSegmentSelector.connect("currentSegmentChanged(QString)", self._roiChosen)

    def _modelChosen(self, field: str, combo) -> None:
        if self._param is not None and self._guiTag is not None and not self._updating:
            setattr(self._param, field, combo.itemData(combo.currentIndex) or "")

    def _roiChosen(self, *args) -> None:
        if self._param is None or self._guiTag is None or self._updating:
            return
        with slicer.util.NodeModify(self._param.parameterNode):
            self._param.roiSegmentation = self.ui.roiSegmentSelector.currentNode()
            self._param.roiSegmentId = self.ui.roiSegmentSelector.currentSegmentID() or ""
        self._attachSegmentEditor()

    # -- models ----------------------------------------------------------------------------------
    def _fillModelLists(self) -> None:
        for combo, kind in ((self.ui.segmentationModelComboBox, SEGMENTATION), (self.ui.diffusionModelComboBox, DIFFUSION)):
            wasUpdating, self._updating = self._updating, True
            combo.clear()
            try:
                models = self.registry.models(kind)
            except ScarEnhanceError as e:
                models = []
                self._setStatus(str(e), error=True)
            for info in models:
                combo.addItem(info.label, info.id)
                combo.setItemData(combo.count - 1, info.description, qt.Qt.ToolTipRole)
            if not models:
                combo.addItem(_("(no model installed: import one)"), "")
            self._updating = wasUpdating
        self._updateGUI()

    def onImportModel(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(self.uiWidget, _("Choose a ScarEnhance model folder"))
        if not folder or not self._ensureDependencies():
            return
        ok, info = guarded(lambda: self.registry.importFolder(folder), _("The model folder could not be imported."), slicer.util.errorDisplay)
        if not ok:
            return
        self._fillModelLists()
        if self._param is not None:
            setattr(self._param, "segmentationModel" if info.kind == SEGMENTATION else "diffusionModel", info.id)
        self._setStatus(_("Imported model {id} ({kind}); its checksum is verified.").format(id=info.id, kind=info.kind))

    # -- actions ---------------------------------------------------------------------------------
    def _ensureModel(self, modelId: str, kind: str) -> bool:
        """A registered model that is not downloaded yet is fetched, with the user's consent."""
        try:
            info = self.registry.find(modelId or None, kind)
        except ScarEnhanceError:
            return True  # reported with the rest when the job is made
        if info.installed or not info.url:
            return True
        if not self._confirm(_("The model {id} is not on this computer yet. Download it now from {url}?").format(id=info.id, url=info.url)):
            return False
        ok, _fetched = guarded(lambda: self.registry.fetch(info), _("The model could not be downloaded."), slicer.util.errorDisplay)
        if ok:
            self._fillModelLists()
        return ok

    def onSegmentHeart(self) -> None:
        button = self.ui.segmentHeartButton
        if self.controller.cancelIfRunning(button) or self._param is None or not self._ensureDependencies():
            return
        p = self._param
        if self._ensureModel(p.segmentationModel, SEGMENTATION):
            self._start(SEGMENT, button, lambda: self.logic.segmentHeartAsync(p.inputVolume, p.segmentOptions(p.segmentationModel or None)))

    def onEnhanceScar(self) -> None:
        button = self.ui.enhanceScarButton
        if self.controller.cancelIfRunning(button) or self._param is None or not self._ensureDependencies():
            return
        p = self._param
        if self._ensureModel(p.diffusionModel, DIFFUSION):
            self._start(ENHANCE, button, lambda: self.logic.enhanceScarAsync(
                p.inputVolume, p.roiSegmentation, p.roiSegmentId, p.enhanceOptions(p.diffusionModel or None), p.outputVolume))

    def _ensureDependencies(self) -> bool:
        ok, ready = guarded(self.installer.ensureDependencies, _("Installing ScarEnhance's Python packages failed."), slicer.util.errorDisplay)
        return ok and ready

    def _start(self, kind: str, button, makeJob) -> None:
        if not self.controller.start(kind, button, makeJob):  # bad input, no model…: shown, nothing started
            return
        job = self.controller.running.job
        job.onStateChanged = lambda state: self.refresh()
        self.ui.progressBar.value = 0
        self.ui.progressBar.show()
        self.ui.deviceStatusLabel.text = ""
        self.refresh()
        self.timer.start()

    def _onTimer(self) -> None:
        running = self.controller.running
        if running is None:
            self.timer.stop()
            return
        if self.controller.poll():
            self._showProgress(running.job)
            return
        self.ui.deviceStatusLabel.text = running.job.deviceMessage

    def _showProgress(self, job: EngineJob) -> None:
        if job.state is PanelState.CANCELLING:
            self._setStatus(_("Cancelling {title}…").format(title=job.title))
            return
        if job.state is PanelState.IMPORTING:
            self._setStatus(_("Loading the results into the scene…"))
            return
        progress = job.progress
        fraction = progress.fraction if progress else 0.0
        self.ui.progressBar.value = int(round(fraction * 1000))
        stage = progress.message if progress else _("starting")
        left = formatDuration(progress.remainingS) if progress else ""
        timing = _("{left} left").format(left=left) if left else _("{elapsed} so far").format(elapsed=formatDuration(job.elapsedS))
        self._setStatus(f"{job.title}: {stage} · {timing}")

    # -- PanelView: what the controller shows ----------------------------------------------------
    def showStatus(self, text: str, kind: str) -> None:
        self.ui.statusLabel.text = text
        self.ui.statusLabel.setStyleSheet(STYLES[kind])
        (logging.error if kind == ERROR else logging.warning if kind == WARNING else logging.info)("ScarEnhance: %s", text)

    def showVerdict(self, text: str, kind: str) -> None:
        self.ui.verdictLabel.text = text
        self.ui.verdictLabel.setStyleSheet(STYLES[kind])
        self.ui.verdictLabel.visible = bool(text)

    def showError(self, text: str, detailedText: Optional[str] = None) -> None:
        slicer.util.errorDisplay(text, detailedText=detailedText)

    def showSegmentation(self, param, segmentationNode, segmentId: str) -> None:
        if self.controller.shown:
            self._attachSegmentEditor()

    def showEnhanced(self, param, result) -> None:
        # Original in the background, enhanced in the foreground: the views' fader compares the two.
        slicer.util.setSliceViewerLayers(background=param.inputVolume, foreground=result.enhanced, foregroundOpacity=1.0)
        roiDisplay = param.roiSegmentation.GetDisplayNode() if param.roiSegmentation else None
        if roiDisplay is not None:
            roiDisplay.SetVisibility2DFill(False)  # the ROI as an outline: the scar underneath stays visible

    # -- ROI correction --------------------------------------------------------------------------
    def _setupSegmentEditor(self) -> None:
        self.segmentEditor = slicer.qMRMLSegmentEditorWidget()
        self.segmentEditor.setMaximumNumberOfUndoStates(10)
        self.segmentEditor.setMRMLScene(slicer.mrmlScene)
        self.ui.segmentEditorGroupBox.layout().addWidget(self.segmentEditor)
        self._segmentEditorNode = None

    def _attachSegmentEditor(self) -> None:
        """Point the embedded editor at the ROI segmentation and the LGE volume."""
        if self._param is None:
            return
        if self._segmentEditorNode is None or self._segmentEditorNode.GetScene() is None:
            # One editor node per scene (a singleton), so saving and reloading does not pile them up.
            node = slicer.mrmlScene.GetSingletonNode("ScarEnhance", "vtkMRMLSegmentEditorNode")
            if node is None:
                node = slicer.vtkMRMLSegmentEditorNode()
                node.SetSingletonTag("ScarEnhance")
                node.SetName("ScarEnhanceSegmentEditor")
                node.SetHideFromEditors(True)
                node = slicer.mrmlScene.AddNode(node)
            self._segmentEditorNode = node
            self.segmentEditor.setMRMLSegmentEditorNode(node)
        self.segmentEditor.setSegmentationNode(self._param.roiSegmentation)
        _setSourceVolume(self.segmentEditor, self._param.inputVolume)
        if self._param.roiSegmentId:
            self.segmentEditor.setCurrentSegmentID(self._param.roiSegmentId)

    def onOpenSegmentEditor(self) -> None:
        """One click to the Segment Editor module with the ROI segmentation and volume chosen."""
        segmentationNode, volumeNode, segmentId = self._param.roiSegmentation, self._param.inputVolume, self._param.roiSegmentId
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.SegmentEditorWidget.editor
        editor.setSegmentationNode(segmentationNode)
        _setSourceVolume(editor, volumeNode)
        if segmentId:
            editor.setCurrentSegmentID(segmentId)

    # -- messages --------------------------------------------------------------------------------
    def _setStatus(self, text: str, error: bool = False) -> None:
        self.showStatus(text, ERROR if error else "info")

    def _confirm(self, text: str) -> bool:
        return slicer.util.confirmOkCancelDisplay(text, windowTitle=_("ScarEnhance: install Python packages"))


def _setSourceVolume(editor, volumeNode) -> None:
    # Slicer ≥ 5.2 calls it the source volume; earlier versions the master volume.
    (editor.setSourceVolumeNode if hasattr(editor, "setSourceVolumeNode") else editor.setMasterVolumeNode)(volumeNode)
