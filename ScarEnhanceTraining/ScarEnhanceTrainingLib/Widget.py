"""The minimal ScarEnhanceTraining panel: folders, preset, Start/Cancel, progress, log, import.

Built in code (a handful of widgets needs no .ui file). The run itself is TrainingLogic's; a QTimer on
the GUI thread drains the runner's events, so nothing here runs on another thread.
"""

from __future__ import annotations

from pathlib import Path

import ctk
import qt
import slicer

from .TrainingLogic import PRESETS, RunStatus, TrainingLogic, TrainingParameters, describeState  # (puts ScarEnhanceLib on the path)

from ScarEnhanceLib.ErrorDisplay import guarded  # noqa: E402  isort: skip

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer before 5.4
    def _(text):
        return text

SETTINGS_PREFIX = "ScarEnhanceTraining/"


class TrainingPanel:
    def __init__(self, logic: TrainingLogic):
        self.logic = logic
        self.params: TrainingParameters | None = None
        self.installer = None  # ScarEnhanceLib.InstallLogic, made at the first Start
        self.widget = qt.QWidget()
        form = qt.QFormLayout(self.widget)

        self.dataPath = self._folderEdit("dataFolder")
        self.dataPath.toolTip = _("Labelled LGE data set: EMIDEC (Case_X/Images + Contours), MyoPS 2020, or images/ + labels/ + labels.json")
        form.addRow(_("Data folder:"), self.dataPath)
        self.outputPath = self._folderEdit("outputFolder")
        self.outputPath.toolTip = _("Run folder: pipeline.json, targets/, models/, report/")
        form.addRow(_("Output folder:"), self.outputPath)
        self.evalPath = self._folderEdit("evalDataFolder")
        self.evalPath.toolTip = _("Optional labelled test set for the report (default: the validation cases)")
        form.addRow(_("Test data (optional):"), self.evalPath)

        self.presetCombo = qt.QComboBox()
        self.presetCombo.addItems(list(PRESETS))
        self.presetCombo.toolTip = _("cpu-small: small networks and fast sampling (a CPU); gpu-paper: the paper's settings (a GPU)")
        form.addRow(_("Preset:"), self.presetCombo)
        self.resumeCheck = qt.QCheckBox(_("Resume the run in the output folder"))
        form.addRow("", self.resumeCheck)
        self.importCheck = qt.QCheckBox(_("Add the trained models to Scar Enhance when done"))
        self.importCheck.checked = True
        form.addRow("", self.importCheck)

        buttons = qt.QHBoxLayout()
        self.startButton = qt.QPushButton(_("Start training"))
        self.cancelButton = qt.QPushButton(_("Cancel"))
        self.cancelButton.enabled = False
        self.reportButton = qt.QPushButton(_("Open report folder"))
        self.reportButton.enabled = False
        for b in (self.startButton, self.cancelButton, self.reportButton):
            buttons.addWidget(b)
        form.addRow(buttons)

        self.progressBar = qt.QProgressBar()
        self.progressBar.setRange(0, 1000)
        form.addRow(self.progressBar)
        self.statusLabel = qt.QLabel(_("Idle"))
        self.statusLabel.wordWrap = True
        form.addRow(self.statusLabel)
        self.logView = qt.QPlainTextEdit()
        self.logView.readOnly = True
        self.logView.maximumBlockCount = 5000
        form.addRow(self.logView)

        self.timer = qt.QTimer()
        self.timer.setInterval(100)
        self.timer.connect("timeout()", self._poll)
        self.startButton.connect("clicked()", self.onStart)
        self.cancelButton.connect("clicked()", self.onCancel)
        self.reportButton.connect("clicked()", self.onOpenReport)
        self.outputPath.connect("currentPathChanged(QString)", self._showState)
        self._restoreSettings()

    def _folderEdit(self, name: str):
        edit = ctk.ctkPathLineEdit()
        edit.filters = ctk.ctkPathLineEdit.Dirs
        edit.settingKey = SETTINGS_PREFIX + name
        return edit

    def _restoreSettings(self):
        settings = qt.QSettings()
        self.presetCombo.currentText = settings.value(SETTINGS_PREFIX + "preset", PRESETS[0])

    def currentParameters(self) -> TrainingParameters:
        return TrainingParameters(dataFolder=self.dataPath.currentPath, outputFolder=self.outputPath.currentPath,
                                  evalDataFolder=self.evalPath.currentPath, preset=self.presetCombo.currentText,
                                  resume=self.resumeCheck.checked)

    def onStart(self):
        params = self.currentParameters()
        problems = params.problems()
        if problems:
            slicer.util.errorDisplay("\n".join(problems), windowTitle=_("Scar Enhance Training"))
            return
        if not self._ensureDependencies():  # torch and MONAI, with the user's consent (as Scar Enhance does)
            return
        qt.QSettings().setValue(SETTINGS_PREFIX + "preset", params.preset)
        for edit in (self.dataPath, self.outputPath, self.evalPath):
            edit.addCurrentPathToHistory()
        self.params = params
        self.logView.clear()
        ok, _runner = guarded(lambda: self.logic.start(params), _("The training could not be started."), slicer.util.errorDisplay)
        if not ok:
            return
        self._setRunning(True)
        self.statusLabel.text = _("Starting…")
        self.timer.start()

    def _ensureDependencies(self) -> bool:
        if self.installer is None:  # one installer per panel: it remembers that a restart is pending
            from ScarEnhanceLib.InstallLogic import InstallLogic

            def log(text):
                self.statusLabel.text = text

            self.installer = InstallLogic(confirm=lambda text: slicer.util.confirmOkCancelDisplay(
                text, windowTitle=_("ScarEnhance: install Python packages")), log=log)
        ok, ready = guarded(self.installer.ensureDependencies, _("Installing ScarEnhance's Python packages failed."), slicer.util.errorDisplay)
        return ok and ready

    def onCancel(self):
        self.statusLabel.text = _("Cancelling…")
        self.logic.cancel()

    def onOpenReport(self):
        folder = Path(self.outputPath.currentPath) / "report"
        qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(folder)))

    def _poll(self):
        runner = self.logic.runner
        if runner is None:
            return
        runner.poll(onProgress=self._onProgress, onLog=self.logView.appendPlainText)
        if runner.finished:
            self.timer.stop()
            self._finished()

    def _onProgress(self, p):
        from ScarEnhanceLib.ProcessRunner import formatDuration

        self.progressBar.value = int(1000 * p.fraction)
        left = formatDuration(p.remainingS)
        self.statusLabel.text = p.message + (f" — about {left} left" if left else "")

    def _finished(self):
        self._setRunning(False)
        result = self.logic.result(self.params)
        if result.status == RunStatus.SUCCEEDED:
            text = _("Finished: ") + describeState(result.state)
            if self.importCheck.checked and {"segmentation", "diffusion"} <= set(result.stepsDone):
                try:
                    infos = self.logic.importModels(result.outputFolder)
                    text += "\n" + _("Added to Scar Enhance: ") + ", ".join(i.id for i in infos)
                except Exception as e:  # e.g. a model of that name was imported before
                    text += "\n" + _("Models not added: ") + str(e)
        elif result.status == RunStatus.CANCELLED:
            text = _("Cancelled. Tick Resume and Start to continue from the last finished epoch.")
        else:
            text = _("Failed: ") + (result.error or _("see the log"))
        self.statusLabel.text = text
        self._showState()

    def _showState(self, *args):
        state = self.logic.readState(self.outputPath.currentPath) if self.outputPath.currentPath else None
        self.reportButton.enabled = bool(state) and state["steps"]["evaluation"]["status"] == "done"
        if state and not self.cancelButton.enabled:
            self.resumeCheck.checked = any(s["status"] != "done" for s in state["steps"].values())
            self.statusLabel.toolTip = describeState(state)

    def _setRunning(self, running: bool):
        self.startButton.enabled = not running
        self.cancelButton.enabled = running
        for w in (self.dataPath, self.outputPath, self.evalPath, self.presetCombo, self.resumeCheck):
            w.enabled = not running

    def cleanup(self):
        self.timer.stop()
        if self.logic.runner is not None and not self.logic.runner.finished:
            self.logic.cancel()
