"""The ScarEnhance panel: selectors, Segment heart, ROI correction, Enhance scar, progress and Cancel.

Built from Resources/UI/ScarEnhance.ui. Widgets with a `SlicerParameterName` are bound to the typed
parameter node by `connectGui`; model lists and the ROI segment are synced here. A running job is
polled by a QTimer on the GUI thread (the GUI stays responsive, MRML is touched on one thread only);
while it runs its button reads "Cancel".
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
from .InstallLogic import InstallLogic
from .Logic import ScarEnhanceLogic
from .ModelRegistry import DIFFUSION, SEGMENTATION, ModelRegistry
from .ProcessRunner import PanelState, RunStatus, formatDuration

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer before 5.4
    def _(text):
        return text

POLL_MS = 250  # the status line and time left refresh at least this often while a job runs

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
        self.job: Optional[EngineJob] = None
        self._jobButton = None
        self._param = None
        self._guiTag = None
        self._updating = False
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._onTimer)
        self._setupSegmentEditor()
        self._connect()
        self._fillModelLists()
        self.ui.progressBar.hide()

    # -- module lifecycle (called by ScarEnhanceWidget) ------------------------------------------
    def enter(self) -> None:
        self._initializeParameterNode()
        self._attachSegmentEditor()

    def exit(self) -> None:
        self.segmentEditor.setActiveEffect(None)
        self.segmentEditor.uninstallKeyboardShortcuts()
        self._setParameterNode(None)

    def cleanup(self) -> None:
        if self.job is not None and not self.job.finished:
            self.job.cancel()
        self.timer.stop()
        self.removeObservers()
        self._setParameterNode(None)

    def onSceneStartClose(self, caller=None, event=None) -> None:
        if self.job is not None and not self.job.finished:
            self.job.cancel()  # its results would belong to a scene that is going away
        self._setParameterNode(None)

    def onSceneEndClose(self, caller=None, event=None) -> None:
        self._segmentEditorNode = None
        self._initializeParameterNode()
        self._attachSegmentEditor()

    # -- parameter node --------------------------------------------------------------------------
    def _initializeParameterNode(self) -> None:
        self._setParameterNode(self.logic.getParameterNode())
        if not self._param.inputVolume:
            self._param.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def _setParameterNode(self, param) -> None:
        if self._param is not None:
            if self._guiTag is not None:
                self._param.disconnectGui(self._guiTag)
                self._guiTag = None
            self.removeObserver(self._param, vtk.vtkCommand.ModifiedEvent, self._updateGUI)
        self._param = param
        if param is not None:
            self._guiTag = param.connectGui(self.ui)
            self.addObserver(param, vtk.vtkCommand.ModifiedEvent, self._updateGUI)
            self._updateGUI()

    def _updateGUI(self, caller=None, event=None) -> None:
        """Parameter node → the widgets connectGui does not bind, and button states."""
        if self._param is None or self._updating:
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
        self._updateButtons()

    def _updateButtons(self) -> None:
        running = self.job is not None and not self.job.finished
        hasInput = self._param is not None and self._param.inputVolume is not None
        hasRoi = hasInput and self._param.roiSegmentation is not None and bool(self._param.roiSegmentId)
        for button, ready, idleText in ((self.ui.segmentHeartButton, hasInput, _("Segment heart")),
                                        (self.ui.enhanceScarButton, hasRoi, _("Enhance scar"))):
            isJobButton = running and button is self._jobButton
            button.text = _("Cancel") if isJobButton else idleText
            button.enabled = isJobButton and self.job.state is not PanelState.CANCELLING or (not running and ready)
        for widget in (self.ui.inputsCollapsibleButton, self.ui.roiCollapsibleButton, self.ui.advancedCollapsibleButton):
            widget.enabled = not running
        self.ui.openSegmentEditorButton.enabled = hasRoi and not running

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
        if self._param is not None and not self._updating:
            setattr(self._param, field, combo.itemData(combo.currentIndex) or "")

    def _roiChosen(self, *args) -> None:
        if self._param is None or self._updating:
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
        with slicer.util.tryWithErrorDisplay(_("The model folder could not be imported."), waitCursor=True):
            info = self.registry.importFolder(folder)
            self._fillModelLists()
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
        with slicer.util.tryWithErrorDisplay(_("The model could not be downloaded."), waitCursor=True):
            self.registry.fetch(info)
            self._fillModelLists()
            return True
        return False

    def onSegmentHeart(self) -> None:
        if self._cancelIfRunning(self.ui.segmentHeartButton) or not self._ensureDependencies():
            return
        if not self._ensureModel(self._param.segmentationModel, SEGMENTATION):
            return
        p = self._param
        self._start(self.ui.segmentHeartButton, lambda: self.logic.segmentHeartAsync(p.inputVolume, p.segmentOptions(p.segmentationModel or None)),
                    self._onHeartSegmented)

    def onEnhanceScar(self) -> None:
        if self._cancelIfRunning(self.ui.enhanceScarButton) or not self._ensureDependencies():
            return
        if not self._ensureModel(self._param.diffusionModel, DIFFUSION):
            return
        p = self._param
        self._start(self.ui.enhanceScarButton, lambda: self.logic.enhanceScarAsync(
            p.inputVolume, p.roiSegmentation, p.roiSegmentId, p.enhanceOptions(p.diffusionModel or None), p.outputVolume),
            self._onScarEnhanced)

    def _cancelIfRunning(self, button) -> bool:
        if self.job is None or self.job.finished:
            return False
        if button is self._jobButton:
            self.job.cancel()
            self._updateButtons()
        return True

    def _ensureDependencies(self) -> bool:
        try:
            return self.installer.ensureDependencies()
        except Exception as e:
            logging.exception("ScarEnhance: installing dependencies failed")
            slicer.util.errorDisplay(_("Installing ScarEnhance's Python packages failed: {error}").format(error=e))
            return False

    def _start(self, button, makeJob, onSuccess) -> None:
        try:
            job = makeJob()
        except (ScarEnhanceError, ValueError, OSError, RuntimeError) as e:  # bad input, no model…: nothing started
            self._setStatus(str(e), error=True)
            return
        self.job, self._jobButton, self._onSuccess = job, button, onSuccess
        job.onStateChanged = lambda state: self._updateButtons()
        self.ui.progressBar.value = 0
        self.ui.progressBar.show()
        self.ui.deviceStatusLabel.text = ""
        self._setStatus(_("{title}: starting…").format(title=job.title))
        self._updateButtons()
        self.timer.start()

    def _onTimer(self) -> None:
        job = self.job
        running = job.poll()
        if running:
            self._showProgress(job)
            return
        self.timer.stop()
        self.ui.progressBar.hide()
        self.ui.deviceStatusLabel.text = job.deviceMessage
        if job.status is RunStatus.SUCCEEDED:
            self._onSuccess(job)
        elif job.status is RunStatus.CANCELLED:
            self._setStatus(_("{title} was cancelled; nothing was added to the scene.").format(title=job.title))
        else:
            self._setStatus(_("{title} failed: {error}").format(title=job.title, error=job.error), error=True)
            slicer.util.errorDisplay(_("{title} failed:\n{error}").format(title=job.title, error=job.error),
                                     detailedText=job.runner.errorSummary(40) if job.runner else None)
        self._updateButtons()

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

    def _onHeartSegmented(self, job: EngineJob) -> None:
        segmentationNode, segmentId = job.result
        with slicer.util.NodeModify(self._param.parameterNode):
            self._param.roiSegmentation = segmentationNode
            self._param.roiSegmentId = segmentId
        self._attachSegmentEditor()
        self._setStatus(_("Added segmentation \"{name}\". Check the heart ROI in the slice views and correct it if "
                          "needed (Segment Editor), then click Enhance scar.").format(name=segmentationNode.GetName()))

    def _onScarEnhanced(self, job: EngineJob) -> None:
        mean, std = job.result
        # Original in the background, enhanced in the foreground: the views' fader compares the two.
        slicer.util.setSliceViewerLayers(background=self._param.inputVolume, foreground=mean, foregroundOpacity=1.0)
        roiDisplay = self._param.roiSegmentation.GetDisplayNode() if self._param.roiSegmentation else None
        if roiDisplay is not None:
            roiDisplay.SetVisibility2DFill(False)  # the ROI as an outline: the scar underneath stays visible
        added = f"\"{mean.GetName()}\"" + (f" and \"{std.GetName()}\"" if std is not None else "")
        self._setStatus(_("Added {added} in {time}. Drag the slice views' foreground fader to compare with the original.").format(
            added=added, time=formatDuration(job.elapsedS)))

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
        self.segmentEditor.installKeyboardShortcuts()

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
        self.ui.statusLabel.text = text
        self.ui.statusLabel.setStyleSheet("color: #c0392b;" if error else "")
        (logging.error if error else logging.info)("ScarEnhance: %s", text)

    def _confirm(self, text: str) -> bool:
        return slicer.util.confirmOkCancelDisplay(text, windowTitle=_("ScarEnhance: install Python packages"))


def _setSourceVolume(editor, volumeNode) -> None:
    # Slicer ≥ 5.2 calls it the source volume; earlier versions the master volume.
    (editor.setSourceVolumeNode if hasattr(editor, "setSourceVolumeNode") else editor.setMasterVolumeNode)(volumeNode)
