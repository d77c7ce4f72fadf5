"""ScarEnhance: make myocardial scar easier to see in LGE cardiac MRI (Hasny et al., MICCAI 2024).

A thin module shell: metadata, the widget built from ScarEnhanceLib, and the self-test. What the
buttons do is in ScarEnhanceLib/Logic.py; the engine (scarenhance/) runs in a child process.
"""

import os
import unittest

import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)

from ScarEnhanceLib.Logic import ScarEnhanceLogic  # noqa: F401  (scripts: `from ScarEnhance import ScarEnhanceLogic`)

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer before 5.4
    def _(text):
        return text


class ScarEnhance(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Scar Enhance")
        self.parent.categories = [_("Cardiac")]
        self.parent.dependencies = []
        self.parent.contributors = ["ScarEnhance developers"]
        self.parent.helpText = _(
            "Makes myocardial scar easier to see in late-gadolinium-enhancement (LGE) cardiac MRI. "
            "<b>Segment heart</b> adds an editable heart ROI; <b>Enhance scar</b> adds an enhanced copy of the "
            "volume made by a localized conditional diffusion model (the mean of k samples). "
            "The input volume is never changed. For research use, not for diagnosis."
        )
        self.parent.acknowledgementText = _(
            "Method: Hasny et al., \"Enhancing Scar Visibility in LGE Cardiac MRI using Localized Conditional "
            "Diffusion\", MICCAI 2024. Built on MONAI, PyTorch and 3D Slicer."
        )
        slicer.app.connect("startupCompleted()", _registerSampleData)


def _registerSampleData():
    from ScarEnhanceLib.SampleData import registerSampleData

    registerSampleData()


class ScarEnhanceWidget(ScriptedLoadableModuleWidget):
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        from ScarEnhanceLib.Widget import ScarEnhancePanel

        self.panel = ScarEnhancePanel(self.resourcePath("UI/ScarEnhance.ui"))
        self.layout.addWidget(self.panel.uiWidget)
        self.layout.addStretch(1)
        self.panel.enter()

    def enter(self):
        self.panel.enter()

    def exit(self):
        self.panel.exit()

    def cleanup(self):
        self.panel.cleanup()


class ScarEnhanceTest(ScriptedLoadableModuleTest):
    """The whole workflow on a synthetic LGE case: Segment heart → edit the ROI → Enhance scar."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_workflow()

    def test_workflow(self):
        import tempfile

        import numpy as np

        from ScarEnhanceLib.SampleData import writePhantom

        self.delayDisplay("Making a synthetic LGE case")
        volume = slicer.util.loadVolume(str(writePhantom(os.path.join(tempfile.mkdtemp(), "phantom.nrrd"))))
        original = slicer.util.arrayFromVolume(volume).copy()
        logic = ScarEnhanceLogic()

        self.delayDisplay("Segment heart")
        segmentation = logic.segmentHeart(volume)
        segmentId = segmentation.GetSegmentation().GetSegmentIdBySegmentName("Heart")
        roi = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, volume)
        self.assertGreater(roi.sum(), 0)

        self.delayDisplay("Edit the ROI: drop its first slice")
        roi[0] = 0
        slicer.util.updateSegmentBinaryLabelmapFromArray(roi, segmentation, segmentId, volume)

        self.delayDisplay("Enhance scar (fast settings)")
        enhanced, uncertainty = logic.enhanceScar(volume, segmentation, segmentId, lam=20, k=2, steps=4, seed=1, keepUncertainty=True)
        out = slicer.util.arrayFromVolume(enhanced)
        self.assertEqual(out.shape, original.shape)
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), original)  # input untouched
        np.testing.assert_allclose(out[roi == 0], original[roi == 0], atol=0.5)  # outside the ROI unchanged
        self.assertIsNotNone(uncertainty)
        self.delayDisplay("Test passed")


if __name__ == "__main__":
    unittest.main()
