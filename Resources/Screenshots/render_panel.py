"""Renders the panel picture for the README from ScarEnhance.ui, offscreen, without Slicer.

    pip install PySide6-Essentials
    QT_QPA_PLATFORM=offscreen python Resources/Screenshots/render_panel.py Resources/Screenshots/panel.png

Slicer's and CTK's widget classes do not exist outside Slicer, so for the picture only they are drawn
as plain Qt look-alikes (ctkCollapsibleButton → QGroupBox, qMRMLNodeComboBox and
qMRMLSegmentSelectorWidget → QComboBox, qMRMLWidget → QWidget). Left: after a run; right: while
Enhance scar runs (its button reads Cancel). The picture is labelled as a drawing of the layout, and
every text in it is one the code writes: the shipped models' list labels (ModelRegistry.label), the
panel's status lines (PanelController), a device line (EngineJob.describeDevice, as on a computer
without a CUDA GPU) and a progress message of the engine's sampler. The verdict line, which holds the
engine's own summary after a run, is left out.
"""
import os
import sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import xml.etree.ElementTree as ET
from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtWidgets import QApplication, QComboBox, QGroupBox, QLabel, QPushButton, QProgressBar, QStyleFactory
from PySide6.QtUiTools import QUiLoader
from PySide6.QtGui import QFont

HERE = os.path.dirname(os.path.abspath(__file__))
ui = os.path.join(HERE, "..", "..", "ScarEnhance", "Resources", "UI", "ScarEnhance.ui")
sys.path.insert(0, os.path.join(HERE, "..", "..", "ScarEnhance"))
from ScarEnhanceLib.EngineJob import describeDevice  # noqa: E402  (the texts the code writes)
from ScarEnhanceLib.ModelRegistry import SHIPPED_REGISTRY, ModelRegistry  # noqa: E402

_registry = ModelRegistry(userDir="/nonexistent", shippedRegistry=SHIPPED_REGISTRY)
MODELS = {kind: _registry.default(kind).label for kind in ("heart-segmentation", "scar-diffusion")}  # what the panel selects first
tree = ET.parse(ui)
root = tree.getroot()
for cw in root.findall("customwidgets"):
    root.remove(cw)
for c in root.findall("connections"):
    root.remove(c)
SUB = {"qMRMLWidget": "QWidget", "ctkCollapsibleButton": "QGroupBox", "ctkCollapsibleGroupBox": "QGroupBox",
       "qMRMLNodeComboBox": "QComboBox", "qMRMLSegmentSelectorWidget": "QComboBox"}
for w in root.iter("widget"):
    cls = w.get("class")
    if cls in SUB:
        w.set("class", SUB[cls])
        for p in list(w.findall("property")):
            if p.get("name") in ("nodeTypes", "showChildNodeTypes", "addEnabled", "removeEnabled", "noneEnabled",
                                 "editEnabled", "noneDisplay", "collapsed"):
                w.remove(p)
            elif p.get("name") == "text" and cls == "ctkCollapsibleButton":
                p.set("name", "title")
data = ET.tostring(root)
app = QApplication([])
app.setStyle(QStyleFactory.create("Fusion"))
f = QFont(); f.setPointSize(9); app.setFont(f)
buf = QBuffer(); buf.setData(QByteArray(data)); buf.open(QIODevice.ReadOnly)
w = QUiLoader().load(buf)

def build(running):
    buf = QBuffer(); buf.setData(QByteArray(data)); buf.open(QIODevice.ReadOnly)
    w = QUiLoader().load(buf)
    def find(t, n): return w.findChild(t, n)
    find(QComboBox, "inputVolumeSelector").addItem("LGE phantom")
    find(QComboBox, "segmentationModelComboBox").addItem(MODELS["heart-segmentation"])
    find(QComboBox, "diffusionModelComboBox").addItem(MODELS["scar-diffusion"])
    find(QComboBox, "roiSegmentSelector").addItem("LGE phantom heart  ›  Heart ROI")
    find(QLabel, "verdictLabel").hide()
    find(QComboBox, "outputVolumeSelector").addItem("Create new volume")
    find(QComboBox, "deviceComboBox").addItems(["auto", "cpu", "cuda"])
    box = find(QGroupBox, "segmentEditorGroupBox"); box.setTitle("▸ Correct the ROI here (Segment Editor)"); box.setFlat(True); box.setMaximumHeight(22)
    bar = find(QProgressBar, "progressBar")
    if running:
        find(QPushButton, "enhanceScarButton").setText("Cancel")
        find(QPushButton, "segmentHeartButton").setEnabled(False)
        for n in ("inputsCollapsibleButton", "roiCollapsibleButton", "advancedCollapsibleButton"):
            find(QGroupBox, n).setEnabled(False)
        bar.setValue(420)
        find(QLabel, "statusLabel").setText("Enhance scar: reverse step 60/250 of samples 1-8 of 40 · 1 min 20 s left")
    else:
        bar.hide()
        find(QLabel, "statusLabel").setText('Added "LGE phantom enhanced" in 2 min 05 s. Drag the slice views\' foreground fader to compare with the original.')
        find(QLabel, "deviceStatusLabel").setText(describeDevice("auto", ["fake enhance on cpu"], fellBack=False))
    w.setFixedWidth(380)
    w.adjustSize()
    w.show(); app.processEvents()
    return w

from PySide6.QtGui import QPixmap, QPainter, QColor
left, right = build(False), build(True)
h = max(left.sizeHint().height(), right.sizeHint().height()) - 30
CAPTION = 28
out = QPixmap(380 * 2 + 24, h + CAPTION); out.fill(QColor("#efefef"))
painter = QPainter(out)
painter.drawPixmap(0, CAPTION, left.grab())
painter.drawPixmap(380 + 24, CAPTION, right.grab())
painter.setPen(QColor("#7a1f1f"))
painter.drawText(8, 18, "Drawing of the panel layout (ScarEnhance.ui outside Slicer), not a screenshot of Slicer. "
                 "Left: after a run; right: running.")
painter.end()
out.save(sys.argv[1])
print(out.width(), out.height())
