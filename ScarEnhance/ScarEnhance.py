"""ScarEnhance: make myocardial scar easier to see in LGE cardiac MRI (Hasny et al., MICCAI 2024).

A thin module shell: metadata, the widget built from ScarEnhanceLib, and the self-test. What the
buttons do is in ScarEnhanceLib/Logic.py; the engine (scarenhance/) runs in a child process.
Supports 3D Slicer 5.10 and later (ScarEnhanceLib/Compatibility.py); an older Slicer gets one message.
"""

import os
import unittest

import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)

from ScarEnhanceLib.Compatibility import SUPPORTED_SLICER, runningVersionProblem, showVersionProblem

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer before 5.4 (turned away below, but the message must still show)
    def _(text):
        return text

CONTRIBUTORS = ["ScarEnhance maintainers (ScarEnhance project)"]  # "Name (Organization)", as in CMakeLists.txt

if runningVersionProblem() is None:  # scripts: `from ScarEnhance import ScarEnhanceLogic`
    from ScarEnhanceLib.Logic import ScarEnhanceLogic


class ScarEnhance(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Scar Enhance")
        self.parent.categories = [_("Cardiac")]
        self.parent.dependencies = []
        self.parent.contributors = CONTRIBUTORS
        self.parent.helpText = _(
            "Makes myocardial scar easier to see in late-gadolinium-enhancement (LGE) cardiac MRI. "
            "<b>Segment heart</b> adds an editable segmentation (Heart ROI, LV blood pool, LV myocardium); "
            "<b>Enhance scar</b> adds an enhanced copy of the volume made by a localized conditional diffusion "
            "model (what its k samples agree on), with the engine's safety verdict. The input volume is never changed. "
            "For research use, not for diagnosis. Supported: {supported}."
        ).format(supported=SUPPORTED_SLICER)
        self.parent.acknowledgementText = _(
            "Method: Hasny et al., \"Enhancing Scar Visibility in LGE Cardiac MRI using Localized Conditional "
            "Diffusion\", MICCAI 2024. Built on MONAI, PyTorch and 3D Slicer."
        )
        if runningVersionProblem() is None:
            slicer.app.connect("startupCompleted()", _registerSampleData)


def _registerSampleData():
    from ScarEnhanceLib.SampleData import registerSampleData

    registerSampleData()


class ScarEnhanceWidget(ScriptedLoadableModuleWidget):
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.panel = None
        if showVersionProblem(self.layout):  # one clear message instead of a failure in the middle of a run
            return
        from ScarEnhanceLib.Widget import ScarEnhancePanel

        self.logic = ScarEnhanceLogic()  # slicer.util.getModuleLogic("ScarEnhance") returns this
        self.panel = ScarEnhancePanel(self.resourcePath("UI/ScarEnhance.ui"), self.logic)
        self.layout.addWidget(self.panel.uiWidget)
        self.layout.addStretch(1)

    def enter(self):
        if self.panel:
            self.panel.enter()

    def exit(self):
        if self.panel:
            self.panel.exit()

    def cleanup(self):
        if self.panel:
            self.panel.cleanup()


class ScarEnhanceTest(ScriptedLoadableModuleTest):
    """The whole workflow on a synthetic LGE case: Segment heart → edit the ROI → Enhance scar.
    Skipped, with the reason, where the engine's packages (torch, MONAI) are not installed: a test
    never installs packages."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):  # Reload and Test: a skip is a message, not a failure
        self.setUp()
        try:
            self.test_workflow()
        except unittest.SkipTest as skipped:
            self.delayDisplay(f"ScarEnhanceTest {skipped}")

    def test_workflow(self):  # CTest (slicer.testing.runUnitTest) reports the skip as a skip
        from ScarEnhanceLib.InstallLogic import InstallLogic, selfTestSkipReason

        reason = runningVersionProblem() or selfTestSkipReason(InstallLogic(confirm=lambda text: False, testing=True).missing())
        if reason:
            raise unittest.SkipTest(reason)
        self._workflow()

    def _workflow(self):
        import tempfile

        import numpy as np

        from ScarEnhanceLib.MrmlIO import HEART_SEGMENT_NAME
        from ScarEnhanceLib.SampleData import writePhantom

        self.delayDisplay("Making a synthetic LGE case")
        volume = slicer.util.loadVolume(str(writePhantom(os.path.join(tempfile.mkdtemp(), "phantom.nrrd"))))
        original = slicer.util.arrayFromVolume(volume).copy()
        logic = ScarEnhanceLogic()

        self.delayDisplay("Segment heart")
        segmentation = logic.segmentHeart(volume)
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 3)
        segmentId = segmentation.GetSegmentation().GetSegmentIdBySegmentName(HEART_SEGMENT_NAME)
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
        self.assertTrue(np.array_equal(out[roi == 0], original[roi == 0]))  # outside the ROI: bit for bit
        self.assertIsNotNone(uncertainty)
        self.assertIn(logic.lastReport.verdict, ("ok", "caution"))
        self.delayDisplay("Test passed")


if __name__ == "__main__":
    unittest.main()
