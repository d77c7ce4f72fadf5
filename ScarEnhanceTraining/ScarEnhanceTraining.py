"""ScarEnhanceTraining: train and evaluate ScarEnhance's models on a site's own labelled LGE data.

A thin module shell: metadata, the panel from ScarEnhanceTrainingLib, a self-test, and a headless entry:

    Slicer --no-main-window --python-script ScarEnhanceTraining/ScarEnhanceTraining.py \
        --data /data/emidec --out /runs/site1 --preset cpu-small --import-models

or from Slicer's Python console:

    from ScarEnhanceTrainingLib.TrainingLogic import TrainingParameters
    logic = slicer.util.getModuleLogic("ScarEnhanceTraining")
    result = logic.run(TrainingParameters("/data/emidec", "/runs/site1"), importModels=True)

The pipeline (targets → heart segmentation → diffusion → evaluation) is `scarenhance train`, run in a
child process by ScarEnhanceTrainingLib/TrainingLogic.py.
"""

import os
import sys
import unittest

try:
    import slicer
    from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                               ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
except ImportError:  # plain Python (no Slicer application): only main(), the headless entry, is usable
    slicer = None
    ScriptedLoadableModule = ScriptedLoadableModuleLogic = ScriptedLoadableModuleTest = ScriptedLoadableModuleWidget = object

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # --python-script does not add it
from ScarEnhanceTrainingLib.Headless import main  # noqa: E402,F401  (the --python-script entry)
from ScarEnhanceTrainingLib.TrainingLogic import STEPS, TrainingLogic, TrainingParameters  # noqa: E402
from ScarEnhanceLib.Compatibility import SUPPORTED_SLICER, runningVersionProblem, showVersionProblem  # noqa: E402  (found by TrainingLogic)

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer before 5.4, or no Slicer
    def _(text):
        return text

# Settings small enough for a self-test on a CPU in about a minute (not for real models).
SMOKE_OVERRIDES = [
    "segmentation.epochs=1", "segmentation.batch_size=4", "segmentation.crop=64", "segmentation.steps_per_epoch=2",
    "diffusion.epochs=1", "diffusion.batch_size=4", "diffusion.crop_size=32", "diffusion.samples_per_epoch=4",
    "diffusion.val_crops=4", "diffusion.sample_every=0", "diffusion.roi_source=\"labels\"",
    "evaluation.k=2", "evaluation.steps=2", "evaluation.lam=20", "evaluation.lam_sweep=[5,20]",
]


class ScarEnhanceTraining(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Scar Enhance Training")
        self.parent.categories = [_("Cardiac")]
        self.parent.dependencies = ["ScarEnhance"]  # its ScarEnhanceLib runs the child process and holds the registry
        self.parent.contributors = ["ScarEnhance maintainers (ScarEnhance project)"]  # "Name (Organization)"
        self.parent.helpText = _(
            "Trains ScarEnhance's heart segmentation and scar diffusion models on your own labelled LGE data "
            "(EMIDEC, MyoPS 2020, or images/ + labels/ folders), then writes an evaluation report (SSIM, PSNR, "
            "CNR before/after, Wilcoxon tests, λ curve, figures). Runs in a background process; Cancel keeps "
            "what is finished, and Resume continues from the last epoch. Works headless: see the module's "
            "Python file. For research use. Supported: {supported}."
        ).format(supported=SUPPORTED_SLICER)
        self.parent.acknowledgementText = _(
            "Method: Hasny et al., \"Myocardial Scar Enhancement in LGE Cardiac MRI using Localized Diffusion\", "
            "MICCAI 2024. Built on MONAI, PyTorch and 3D Slicer."
        )


class ScarEnhanceTrainingWidget(ScriptedLoadableModuleWidget):
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.panel = None
        if showVersionProblem(self.layout):  # one clear message instead of a failure in the middle of a run
            return
        from ScarEnhanceTrainingLib.Widget import TrainingPanel

        self.logic = ScarEnhanceTrainingLogic()  # slicer.util.getModuleLogic("ScarEnhanceTraining") returns this
        self.panel = TrainingPanel(self.logic)
        self.layout.addWidget(self.panel.widget)
        self.layout.addStretch(1)

    def cleanup(self):
        if self.panel:
            self.panel.cleanup()


_LOGIC_BASES = (TrainingLogic,) if ScriptedLoadableModuleLogic is object else (ScriptedLoadableModuleLogic, TrainingLogic)


class ScarEnhanceTrainingLogic(*_LOGIC_BASES):
    """TrainingLogic as Slicer's module logic (`slicer.util.getModuleLogic("ScarEnhanceTraining")`)."""

    def __init__(self, registry=None, python=None):
        if ScriptedLoadableModuleLogic is not object:
            ScriptedLoadableModuleLogic.__init__(self)
        TrainingLogic.__init__(self, registry=registry, python=python)


class ScarEnhanceTrainingTest(ScriptedLoadableModuleTest):
    """The whole pipeline on four synthetic cases with smoke-test settings, then the import of its models.
    Skipped, with the reason, where the engine's packages (torch, MONAI) are not installed."""

    def runTest(self):  # Reload and Test: a skip is a message, not a failure
        try:
            self.test_pipeline_and_import()
        except unittest.SkipTest as skipped:
            self.delayDisplay(f"ScarEnhanceTrainingTest {skipped}")

    def test_pipeline_and_import(self):  # CTest reports the skip as a skip
        from ScarEnhanceLib.InstallLogic import InstallLogic, selfTestSkipReason

        reason = runningVersionProblem() or selfTestSkipReason(InstallLogic(confirm=lambda text: False, testing=True).missing())
        if reason:
            raise unittest.SkipTest(reason)
        self._pipelineAndImport()

    def _pipelineAndImport(self):
        import tempfile
        from pathlib import Path

        from ScarEnhanceLib.ModelRegistry import ModelRegistry
        from scarenhance.phantom import write_cases

        root = Path(tempfile.mkdtemp())
        self.delayDisplay("Writing four synthetic cases")
        write_cases(root / "data", n=4, seed=9100, n_slices=4, size=(96, 96))
        logic = ScarEnhanceTrainingLogic(registry=ModelRegistry(root / "registry"))
        params = TrainingParameters(str(root / "data"), str(root / "run"), device="cpu", overrides=SMOKE_OVERRIDES)
        self.delayDisplay("Training and evaluating (smoke-test settings)")
        result = logic.run(params, timeoutS=900, importModels=True)
        self.assertTrue(result.succeeded, result.error)
        self.assertEqual(result.stepsDone, list(STEPS))
        self.assertIsNotNone(result.reportPath)
        ids = {m.id for m in logic.registry.models()}
        self.assertIn("run-heart-seg", ids)
        self.assertIn("run-scar-diffusion", ids)
        self.delayDisplay("Test passed")


if __name__ == "__main__":
    code = main(sys.argv[1:])
    if slicer is not None and hasattr(slicer, "app"):
        slicer.util.exit(code)
    else:
        sys.exit(code)
