"""ScarEnhanceLogic on Slicer's real MRML (slicer-core): Segment heart → edit → Enhance scar.

The workflow test runs the real engine (`python -m scarenhance.cli`, shipped demo models). The other
tests swap in a scripted engine (fake_engine.py) to check, in seconds, what must hold whatever the
models: geometry, the input untouched, no overwrites, Cancel and failures leaving the scene as it
was, and a saved scene keeping the results.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import slicer
import vtk

from scarenhance.errors import Cancelled
from ScarEnhanceLib.Logic import ScarEnhanceLogic
from ScarEnhanceLib.MrmlIO import (BLOOD_POOL_SEGMENT_NAME, HEART_SEGMENT_NAME, HEART_TERMINOLOGY, MYOCARDIUM_SEGMENT_NAME)
from ScarEnhanceLib.Parameters import EnhanceOptions
from ScarEnhanceLib.ProcessRunner import RunStatus


def ijk_to_ras(node) -> np.ndarray:
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return slicer.util.arrayFromVTKMatrix(m)


def node_ids(scene) -> list[str]:
    return [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())]


def heart_segment(segmentation) -> str:
    segment_id = segmentation.GetSegmentation().GetSegmentIdBySegmentName(HEART_SEGMENT_NAME)
    assert segment_id, "no Heart ROI segment"
    return segment_id


def terminology(segment) -> str:
    """The terminology tag, read the way every Slicer version stores it."""
    value = vtk.reference("")
    return value.get() if segment.GetTag(segment.GetTerminologyEntryTagName(), value) else ""


def engine_speaks_the_new_contract() -> bool:
    """The engine's parser takes segment --labels-output/--report and enhance --labels/--safety-output
    (the lead's engine branch adds them; until it lands the real-engine workflow cannot run)."""
    import contextlib
    import io

    from scarenhance.cli import build_parser

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            build_parser().parse_args(["segment", "--input", "a", "--output", "b", "--labels-output", "c", "--report", "d"])
            build_parser().parse_args(["enhance", "--input", "a", "--roi", "b", "--output", "c", "--labels", "d", "--safety-output", "e"])
    except SystemExit:
        return False
    return True


def check_workflow(scene, volume, logic, **enhance_kwargs):
    """Segment heart → erase the ROI on the first slice with numpy → enhance; checks on the way."""
    original = slicer.util.arrayFromVolume(volume).copy()
    before = set(node_ids(scene))

    segmentation = logic.segmentHeart(volume)
    segment_id = heart_segment(segmentation)
    segment = segmentation.GetSegmentation().GetSegment(segment_id)
    assert terminology(segment) == HEART_TERMINOLOGY
    assert np.allclose(segment.GetColor(), (206 / 255, 110 / 255, 84 / 255))
    names = [segmentation.GetSegmentation().GetNthSegment(i).GetName() for i in range(segmentation.GetSegmentation().GetNumberOfSegments())]
    assert names == [HEART_SEGMENT_NAME, BLOOD_POOL_SEGMENT_NAME, MYOCARDIUM_SEGMENT_NAME]
    assert logic.lastReport.plausible
    assert segmentation.GetNodeReference(slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()) is volume
    sh = scene.GetSubjectHierarchyNode()
    assert sh.GetItemParent(sh.GetItemByDataNode(segmentation)) == sh.GetItemByDataNode(volume)  # under the input

    roi = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume)
    assert roi.shape == original.shape and roi.any()
    roi[0] = 0  # the user's correction: no ROI on the first slice
    slicer.util.updateSegmentBinaryLabelmapFromArray(roi, segmentation, segment_id, volume)

    enhanced, uncertainty = logic.enhanceScar(volume, segmentation, segment_id, keepUncertainty=True, **enhance_kwargs)
    out = slicer.util.arrayFromVolume(enhanced)
    assert out.shape == original.shape
    np.testing.assert_array_equal(ijk_to_ras(enhanced), ijk_to_ras(volume))  # exact, not close
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), original)  # input untouched
    assert np.array_equal(out[roi == 0], original[roi == 0])  # bit for bit outside the (edited) ROI
    assert not np.allclose(out[roi == 1], original[roi == 1], atol=0.5)
    assert logic.lastReport.verdict in ("ok", "caution") and logic.lastReport.summary
    assert enhanced.GetName() == "LGE enhanced" and uncertainty.GetName() == "LGE uncertainty"
    display, input_display = enhanced.GetDisplayNode(), volume.GetDisplayNode()
    assert (display.GetWindow(), display.GetLevel()) == (input_display.GetWindow(), input_display.GetLevel())
    assert set(node_ids(scene)) > before
    return segmentation, segment_id, enhanced


@pytest.mark.skipif(not engine_speaks_the_new_contract(), reason="the engine does not take segment --labels-output/--report "
                    "and enhance --labels/--safety-output yet (being added on the engine side)")
def test_workflow_with_the_real_engine(scene, phantom_volume):
    """The engine's CLI in a child process, the shipped demo models, fast settings (λ 20, 4 steps, k 2)."""
    check_workflow(scene, phantom_volume, ScarEnhanceLogic(), lam=20, k=2, steps=4, seed=1)


def test_workflow_results_never_overwrite(scene, phantom_volume, fake_python, engine_mode, fake_registry):
    logic = ScarEnhanceLogic(registry=fake_registry, python=fake_python)
    segmentation, segment_id, first = check_workflow(scene, phantom_volume, logic)
    first_values = slicer.util.arrayFromVolume(first).copy()
    second, std = logic.enhanceScar(phantom_volume, segmentation, segment_id)
    assert std is None  # no uncertainty map unless asked
    assert second is not first and second.GetName() == "LGE enhanced_1"
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(first), first_values)
    with pytest.raises(ValueError, match="must not overwrite the input"):
        logic.enhanceScar(phantom_volume, segmentation, segment_id, outputVolumeNode=phantom_volume)
    chosen = logic.enhanceScar(phantom_volume, segmentation, segment_id, outputVolumeNode=second)[0]
    assert chosen is second  # the user picked it as the output


def test_cancel_leaves_the_scene_as_it_was(scene, phantom_volume, fake_python, engine_mode, fake_registry, tmp_path, monkeypatch):
    logic = ScarEnhanceLogic(registry=fake_registry, python=fake_python)
    segmentation, segment_id = logic.segmentHeart(phantom_volume), None
    segment_id = heart_segment(segmentation)
    engine_mode("slow")
    monkeypatch.setenv("FAKE_ENGINE_PIDS", str(tmp_path / "pids"))
    before = node_ids(scene)
    job = logic.enhanceScarAsync(phantom_volume, segmentation, segment_id, EnhanceOptions(keepUncertainty=True))
    deadline = time.monotonic() + 30
    while job.progress is None or job.progress.fraction == 0:  # wait until it is really working
        assert job.poll() and time.monotonic() < deadline
        time.sleep(0.05)
    tic = time.monotonic()
    job.cancel()
    while job.poll():
        time.sleep(0.05)
    assert job.status is RunStatus.CANCELLED and time.monotonic() - tic < 5
    assert node_ids(scene) == before
    assert not (tmp_path / job.workDir).exists()

    cancel = threading.Event()  # the blocking path cancels from another thread
    threading.Timer(1.0, cancel.set).start()
    with pytest.raises(Cancelled):
        logic.enhanceScar(phantom_volume, segmentation, segment_id, cancel=cancel)
    assert node_ids(scene) == before


@pytest.mark.parametrize("mode", ["fail", "bad-geometry"])
def test_failures_add_nothing(scene, phantom_volume, fake_python, engine_mode, fake_registry, mode):
    logic = ScarEnhanceLogic(registry=fake_registry, python=fake_python)
    segmentation = logic.segmentHeart(phantom_volume)
    engine_mode(mode)
    before = node_ids(scene)
    with pytest.raises(RuntimeError, match="image is 2D|differs|voxels"):
        logic.enhanceScar(phantom_volume, segmentation, heart_segment(segmentation), keepUncertainty=True)
    assert node_ids(scene) == before


def test_bad_requests_are_refused_before_anything_runs(scene, phantom_volume, fake_python, fake_registry):
    logic = ScarEnhanceLogic(registry=fake_registry, python=fake_python)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "empty ROI")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(phantom_volume)
    empty = segmentation.GetSegmentation().AddEmptySegment("", "Heart")
    with pytest.raises(ValueError, match="is empty"):
        logic.enhanceScar(phantom_volume, segmentation, empty)
    with pytest.raises(ValueError, match="has no segment"):
        logic.enhanceScar(phantom_volume, segmentation, "no-such-segment")
    with pytest.raises(ValueError, match="fast-mode steps"):
        logic.enhanceScar(phantom_volume, segmentation, empty, lam=10, steps=20)
    with pytest.raises(ValueError, match="choose an LGE volume"):
        logic.segmentHeart(None)


def test_roi_follows_the_input_through_a_transform(scene, phantom_volume, fake_python, engine_mode, fake_registry):
    """A volume under a transform: results go under the same transform with the same IJK→RAS."""
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "registration")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 12.5)
    transform.SetMatrixTransformToParent(matrix)
    phantom_volume.SetAndObserveTransformNodeID(transform.GetID())
    logic = ScarEnhanceLogic(registry=fake_registry, python=fake_python)
    segmentation = logic.segmentHeart(phantom_volume)
    assert segmentation.GetTransformNodeID() == transform.GetID()
    enhanced = logic.enhanceScar(phantom_volume, segmentation, heart_segment(segmentation))[0]
    assert enhanced.GetTransformNodeID() == transform.GetID()
    np.testing.assert_array_equal(ijk_to_ras(enhanced), ijk_to_ras(phantom_volume))


def test_saved_and_reloaded_scene_keeps_the_results(scene, phantom_volume, fake_python, engine_mode, fake_registry, tmp_path):
    from mrml_scene import SlicerCoreScene

    logic = ScarEnhanceLogic(registry=fake_registry, python=fake_python)
    segmentation, segment_id, enhanced = check_workflow(scene, phantom_volume, logic)
    expected = slicer.util.arrayFromVolume(enhanced).copy()
    roi = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, phantom_volume)

    folder = tmp_path / "saved"
    folder.mkdir()
    for node in (phantom_volume, segmentation, enhanced):  # what Save Data does: a storage node per data node
        storage = node.GetStorageNode() or node.CreateDefaultStorageNode()
        if storage.GetScene() is None:
            scene.AddNode(storage)
            node.SetAndObserveStorageNodeID(storage.GetID())
        storage.SetFileName(str(folder / f"{node.GetName()}{storage.GetDefaultWriteFileExtension() and '.' + storage.GetDefaultWriteFileExtension()}"))
        assert storage.WriteData(node)
    scene.SetURL(str(folder / "scene.mrml"))
    assert scene.Commit()

    reloaded = SlicerCoreScene().install()
    try:
        reloaded.scene.SetURL(str(folder / "scene.mrml"))
        assert reloaded.scene.Connect()
        volume2 = reloaded.scene.GetFirstNodeByName("LGE")
        enhanced2 = reloaded.scene.GetFirstNodeByName("LGE enhanced")
        segmentation2 = reloaded.scene.GetFirstNodeByName(segmentation.GetName())
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(enhanced2), expected)
        np.testing.assert_array_equal(ijk_to_ras(enhanced2), ijk_to_ras(volume2))
        segment_id2 = heart_segment(segmentation2)
        assert terminology(segmentation2.GetSegmentation().GetSegment(segment_id2)) == HEART_TERMINOLOGY
        np.testing.assert_array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(segmentation2, segment_id2, volume2), roi)
    finally:
        reloaded.uninstall()
