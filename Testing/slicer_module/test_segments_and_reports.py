"""The three segments of Segment heart, the labels sent to Enhance scar, the engine's reports, and the
MRML calls as every supported Slicer has them (terminology tag, owned oriented images), on slicer-core."""

from __future__ import annotations

import json

import numpy as np
import pytest
import slicer
import vtk

from ScarEnhanceLib import MrmlIO
from ScarEnhanceLib.Logic import ScarEnhanceLogic
from ScarEnhanceLib.MrmlIO import (BLOOD_POOL_SEGMENT_NAME, HEART_SEGMENT_NAME, MYOCARDIUM_SEGMENT_NAME, addHeartSegmentation,
                                   labelsForEngine, orientedImageFromVolume, segmentMask)
from ScarEnhanceLib.Reports import (SafetyReport, SegmentReport, readSafetyReport, readSegmentReport, safetyNote,
                                    segmentNote)


def node_ids(scene) -> list[str]:
    return [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())]


def sh_items(scene) -> int:
    ids = vtk.vtkIdList()
    scene.GetSubjectHierarchyNode().GetItemChildren(scene.GetSubjectHierarchyNode().GetSceneItemID(), ids, True)
    return ids.GetNumberOfIds()


def write_like(volume, array, path):
    """A labelmap file on the volume's grid, as the engine writes it."""
    MrmlIO.writeMask(array.astype(np.uint8), volume, str(path))
    return str(path)


def segment_ids(segmentation) -> dict:
    s = segmentation.GetSegmentation()
    return {s.GetNthSegment(i).GetName(): s.GetNthSegmentID(i) for i in range(s.GetNumberOfSegments())}


def test_segment_heart_adds_three_segments_from_the_engines_files(scene, phantom_volume, tmp_path):
    shape = slicer.util.arrayFromVolume(phantom_volume).shape
    roi, labels = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    roi[:, 60:120, 60:120] = 1
    labels[:, 70:110, 70:110] = 2
    labels[:, 80:100, 80:100] = 1
    node, heart_id = addHeartSegmentation(write_like(phantom_volume, roi, tmp_path / "roi.nrrd"),
                                          write_like(phantom_volume, labels, tmp_path / "labels.nrrd"), phantom_volume, "LGE heart")
    ids = segment_ids(node)
    assert list(ids) == [HEART_SEGMENT_NAME, BLOOD_POOL_SEGMENT_NAME, MYOCARDIUM_SEGMENT_NAME] and ids[HEART_SEGMENT_NAME] == heart_id
    for name, expected in ((HEART_SEGMENT_NAME, roi), (BLOOD_POOL_SEGMENT_NAME, labels == 1), (MYOCARDIUM_SEGMENT_NAME, labels == 2)):
        np.testing.assert_array_equal(segmentMask(node, ids[name], phantom_volume), expected.astype(np.uint8))
    np.testing.assert_array_equal(labelsForEngine(node, phantom_volume), labels)  # back out as the engine's labels


def test_labels_go_to_the_engine_only_when_both_segments_exist_and_myocardium_wins_overlaps(scene, phantom_volume, tmp_path):
    shape = slicer.util.arrayFromVolume(phantom_volume).shape
    roi, labels = np.ones(shape, np.uint8), np.zeros(shape, np.uint8)
    labels[:, 70:110, 70:110] = 2
    labels[:, 80:100, 80:100] = 1
    node, _ = addHeartSegmentation(write_like(phantom_volume, roi, tmp_path / "roi.nrrd"),
                                   write_like(phantom_volume, labels, tmp_path / "labels.nrrd"), phantom_volume, "LGE heart")
    ids = segment_ids(node)
    grown = segmentMask(node, ids[BLOOD_POOL_SEGMENT_NAME], phantom_volume)
    grown[:, 75:105, 75:105] = 1  # the user paints blood pool over part of the myocardium…
    slicer.util.updateSegmentBinaryLabelmapFromArray(grown, node, ids[BLOOD_POOL_SEGMENT_NAME], phantom_volume)
    sent = labelsForEngine(node, phantom_volume)
    assert set(np.unique(sent)) == {0, 1, 2}
    np.testing.assert_array_equal(sent == 2, labels == 2)  # …the myocardium stays myocardium
    node.GetSegmentation().RemoveSegment(ids[MYOCARDIUM_SEGMENT_NAME])
    assert labelsForEngine(node, phantom_volume) is None  # the engine segments the myocardium itself


def test_terminology_is_stored_as_the_tag_every_slicer_reads(scene, phantom_volume, tmp_path):
    """vtkSegment.SetTerminology() exists only from Slicer 5.10; the tag is what it writes there."""
    roi = np.ones(slicer.util.arrayFromVolume(phantom_volume).shape, np.uint8)
    node, heart_id = addHeartSegmentation(write_like(phantom_volume, roi, tmp_path / "roi.nrrd"),
                                          write_like(phantom_volume, 0 * roi, tmp_path / "labels.nrrd"), phantom_volume, "LGE heart")
    segment = node.GetSegmentation().GetSegment(heart_id)
    tag = vtk.reference("")
    assert segment.GetTag("TerminologyEntry", tag) and tag.get() == MrmlIO.HEART_TERMINOLOGY
    assert segment.GetTerminology() == MrmlIO.HEART_TERMINOLOGY  # what Slicer ≥ 5.10 reads


def test_a_failure_while_adding_the_segmentation_leaves_no_orphan(scene, phantom_volume, tmp_path, monkeypatch):
    roi = np.ones(slicer.util.arrayFromVolume(phantom_volume).shape, np.uint8)
    roi_path = write_like(phantom_volume, roi, tmp_path / "roi.nrrd")
    labels_path = write_like(phantom_volume, 0 * roi, tmp_path / "labels.nrrd")
    sh = scene.GetSubjectHierarchyNode()
    sh.CreateItem(sh.GetSceneItemID(), phantom_volume)  # as the application's subject hierarchy plugin does
    before, items = node_ids(scene), sh_items(scene)
    bad = write_like(phantom_volume, 3 * roi, tmp_path / "labels3.nrrd")
    with pytest.raises(ValueError, match=r"labels3.nrrd: labels must be 0, 1 .* found \[3\]"):
        addHeartSegmentation(roi_path, bad, phantom_volume, "LGE heart")
    assert node_ids(scene) == before

    real = MrmlIO._placeInScene

    def place_then_fail(node, *args, **kwargs):  # fails once the node is in the scene
        real(node, *args, **kwargs)
        raise RuntimeError("display node could not be made")

    monkeypatch.setattr(MrmlIO, "_placeInScene", place_then_fail)
    with pytest.raises(RuntimeError, match="display node"):
        addHeartSegmentation(roi_path, labels_path, phantom_volume, "LGE heart")
    assert node_ids(scene) == before and sh_items(scene) == items


def test_the_oriented_reference_image_is_owned_by_python(scene, phantom_volume):
    """CreateOrientedImageDataFromVolumeNode hands its caller a reference (Slicer's code calls
    UnRegister(None)); kept, it leaks one volume-sized image per Enhance click."""
    raw = slicer.vtkSlicerSegmentationsModuleLogic.CreateOrientedImageDataFromVolumeNode(phantom_volume, None)
    assert raw.GetReferenceCount() == 2  # what the wrapped call returns: one reference too many
    raw.UnRegister(None)
    assert orientedImageFromVolume(phantom_volume).GetReferenceCount() == 1


def test_a_segment_without_a_binary_labelmap_is_refused_by_name(scene, phantom_volume):
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "surfaces")
    closed = slicer.vtkSegmentationConverter.GetClosedSurfaceRepresentationName()
    node.GetSegmentation().SetSourceRepresentationName(closed)
    sphere = vtk.vtkSphereSource()
    sphere.SetCenter(phantom_volume.GetOrigin())
    sphere.SetRadius(20)
    sphere.Update()
    segment_id = node.AddSegmentFromClosedSurfaceRepresentation(sphere.GetOutput(), "imported heart")
    with pytest.raises(ValueError, match="'imported heart' of 'surfaces' has no binary labelmap"):
        segmentMask(node, segment_id, phantom_volume)


# -- the runs, with the scripted engine -----------------------------------------------------------

def runs(path) -> list[list[str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_enhance_sends_the_labels_when_both_segments_exist(scene, phantom_volume, fake_python, engine_mode, fake_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_ARGS", str(tmp_path / "args.jsonl"))
    logic = ScarEnhanceLogic(registry=fake_registry, python=fake_python)
    segmentation = logic.segmentHeart(phantom_volume)
    heart = segment_ids(segmentation)[HEART_SEGMENT_NAME]
    logic.enhanceScar(phantom_volume, segmentation, heart)
    assert logic.lastReport.verdict == "ok"
    segmentation.GetSegmentation().RemoveSegment(segment_ids(segmentation)[BLOOD_POOL_SEGMENT_NAME])
    logic.enhanceScar(phantom_volume, segmentation, heart)
    segment_run, with_labels, without = runs(tmp_path / "args.jsonl")
    assert "--labels-output" in segment_run and "--report" in segment_run
    assert "--labels" in with_labels and "--safety-output" in with_labels
    assert "--labels" not in without and "--safety-output" in without


def test_an_implausible_segmentation_is_kept_and_reported(scene, phantom_volume, fake_python, engine_mode, fake_registry):
    engine_mode("implausible")
    logic = ScarEnhanceLogic(registry=fake_registry, python=fake_python)
    segmentation = logic.segmentHeart(phantom_volume)
    assert list(segment_ids(segmentation)) == [HEART_SEGMENT_NAME, BLOOD_POOL_SEGMENT_NAME, MYOCARDIUM_SEGMENT_NAME]
    report = logic.lastReport
    assert not report.plausible and len(report.warnings) == 2
    note = segmentNote(report)
    assert "implausible" in note and "912 ml" in note and "slices 1, 2" in note


def test_a_caution_verdict_names_the_flagged_slices(scene, phantom_volume, fake_python, engine_mode, fake_registry):
    logic = ScarEnhanceLogic(registry=fake_registry, python=fake_python)
    segmentation = logic.segmentHeart(phantom_volume)
    engine_mode("caution")
    logic.enhanceScar(phantom_volume, segmentation, segment_ids(segmentation)[HEART_SEGMENT_NAME])
    assert logic.lastReport == SafetyReport("caution", "Caution: the enhancement changed healthy myocardium on 2 of 3 slices.", (1, 2))
    assert safetyNote(logic.lastReport).endswith("Advise against trusting slices 1, 2.")


@pytest.mark.parametrize("command", ["segment", "enhance"])
def test_a_broken_report_adds_nothing(scene, phantom_volume, fake_python, engine_mode, fake_registry, command):
    logic = ScarEnhanceLogic(registry=fake_registry, python=fake_python)
    segmentation = logic.segmentHeart(phantom_volume)
    engine_mode("bad-report")
    before = node_ids(scene)
    with pytest.raises(RuntimeError, match=r"(report|safety)\.json: not a readable JSON report"):
        if command == "segment":
            logic.segmentHeart(phantom_volume)
        else:
            logic.enhanceScar(phantom_volume, segmentation, segment_ids(segmentation)[HEART_SEGMENT_NAME])
    assert node_ids(scene) == before


# -- the reports, pure ---------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    (None, "wrote no report"), ("[1]", "not a JSON object"), ("{", "not a readable JSON report"),
    ('{"plausible": "yes", "warnings": [], "volume_ml": 1}', "'plausible' must be true or false"),
    ('{"plausible": true, "warnings": [3], "volume_ml": 1}', "'warnings' must be a list of strings"),
    ('{"plausible": true, "warnings": [], "volume_ml": true}', "'volume_ml' must be a number"),
])
def test_segment_report_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message) as e:
        readSegmentReport(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("data, message", [
    ({"verdict": "fine", "summary": "x", "flagged_slices": []}, "'verdict' must be 'ok' or 'caution'"),
    ({"verdict": "ok", "summary": None, "flagged_slices": []}, "'summary' must be a line of text"),
    ({"verdict": "ok", "summary": "x", "flagged_slices": ["3"]}, "'flagged_slices' must be a list of slice numbers"),
])
def test_safety_report_errors_name_the_file(tmp_path, data, message):
    path = tmp_path / "safety.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as e:
        readSafetyReport(path)
    assert str(path) in str(e.value)


def test_report_texts():
    ok = readSegmentReport_from({"plausible": True, "warnings": [], "volume_ml": 151.5, "extra": 1})
    assert ok == SegmentReport(True, (), 151.5) and segmentNote(ok) == ""
    assert safetyNote(SafetyReport("ok", "All slices look consistent.", ())) == "All slices look consistent."
    assert safetyNote(SafetyReport("caution", "Check slice 4.", (4,))) == "Check slice 4. Advise against trusting slice 4."
    assert safetyNote(SafetyReport("caution", "", (3, 5))) == "Use with caution. Advise against trusting slices 3, 5."


def readSegmentReport_from(data):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.json"
        path.write_text(json.dumps(data))
        return readSegmentReport(path)
