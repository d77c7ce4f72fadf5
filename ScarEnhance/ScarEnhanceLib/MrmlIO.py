"""Between the scene and the engine's files: volumes and segments out to NRRD, results back in as new nodes.

Nothing here adds a node to the scene until a result is complete and checked, so a failed or
cancelled run leaves the scene as it was. Results take the input's exact geometry (IJK→RAS and parent
transform), sit beside or under the input in the subject hierarchy, and never replace an existing node
unless the caller passes that node as the output.
"""

from __future__ import annotations

import numpy as np
import vtk
from vtk.util import numpy_support

import slicer

HEART_SEGMENT_NAME = "Heart ROI"  # the segment Enhance scar uses
BLOOD_POOL_SEGMENT_NAME = "LV blood pool"
MYOCARDIUM_SEGMENT_NAME = "LV myocardium"  # scar counted as myocardium
# Values in the engine's labels file (`scarenhance segment --labels-output`, `enhance --labels`).
LABEL_VALUES = {BLOOD_POOL_SEGMENT_NAME: 1, MYOCARDIUM_SEGMENT_NAME: 2}
# 3D Slicer General Anatomy list: SNOMED CT "Anatomical Structure" / "Heart", with its recommended colour.
# (That list and the DICOM master list have no code for the LV cavity or the LV myocardium: those two
# segments carry their names and colours only.)
HEART_TERMINOLOGY = (
    "Segmentation category and type - 3D Slicer General Anatomy list"
    "~SCT^123037004^Anatomical Structure~SCT^80891009^Heart~^^"
    "~Anatomic codes - DICOM master list~^^~^^"
)
HEART_COLOR = (206 / 255, 110 / 255, 84 / 255)
SEGMENT_COLORS = {BLOOD_POOL_SEGMENT_NAME: (0.85, 0.25, 0.25), MYOCARDIUM_SEGMENT_NAME: (0.55, 0.35, 0.75)}
GEOMETRY_TOLERANCE = 1e-4  # mm; NRRD stores doubles as text, a round trip is exact to ~1e-12


def ijkToRas(volumeNode) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return matrix


def writeVolume(volumeNode, path: str) -> None:
    """The volume's voxels and IJK→RAS to a file (its parent transform is not applied)."""
    if volumeNode is None or volumeNode.GetImageData() is None:
        raise ValueError("the input volume has no image data")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()  # not added to the scene
    storage.SetFileName(str(path))
    storage.SetUseCompression(False)  # faster, and the file is deleted after the run
    if not storage.WriteData(volumeNode):
        raise OSError(f"could not write {volumeNode.GetName()} to {path}")


def orientedImageFromVolume(volumeNode, transformNode=None):
    """The volume's grid as a vtkOrientedImageData owned by Python. Slicer's
    CreateOrientedImageDataFromVolumeNode returns a new object the caller owns (Slicer's own Python
    calls UnRegister(None) on it): without that, one volume-sized image leaks per call."""
    image = slicer.vtkSlicerSegmentationsModuleLogic.CreateOrientedImageDataFromVolumeNode(volumeNode, transformNode)
    if image is None:
        raise RuntimeError(f"could not read the voxel grid of {volumeNode.GetName()}")
    image.UnRegister(None)
    return image


def segmentMask(segmentationNode, segmentId: str, referenceVolumeNode) -> np.ndarray:
    """(K, J, I) uint8 0/1 array of one segment on the reference volume's voxel grid, as it is now
    (after any editing). Works on a copy: the segmentation is not touched and no node is added."""
    segmentation = segmentationNode.GetSegmentation()
    segment = segmentation.GetSegment(segmentId) if segmentId else None
    if segment is None:
        raise ValueError(f"segmentation {segmentationNode.GetName()!r} has no segment {segmentId!r}")
    segmentImage = slicer.vtkOrientedImageData()
    # Only this segment's voxels (value 1), even when segments share one labelmap layer. False when the
    # segmentation holds no binary labelmap (e.g. only closed surfaces imported from a model file).
    if not segmentationNode.GetBinaryLabelmapRepresentation(segmentId, segmentImage):
        raise ValueError(f"segment {segment.GetName()!r} of {segmentationNode.GetName()!r} has no binary labelmap "
                         "(Segmentations module → Representations → Binary labelmap → Create), so it cannot be the ROI")
    # The reference grid expressed in the segmentation's own frame, so parent transforms line up.
    reference = orientedImageFromVolume(referenceVolumeNode, segmentationNode.GetParentTransformNode())
    resampled = slicer.vtkOrientedImageData()
    if not slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(segmentImage, reference, resampled, False, False):
        raise RuntimeError(f"could not resample segment {segmentId!r} onto {referenceVolumeNode.GetName()}")
    dims = resampled.GetDimensions()
    scalars = resampled.GetPointData().GetScalars()
    if scalars is None:  # an empty segment has no voxels at all
        return np.zeros(dims[::-1], np.uint8)
    return (numpy_support.vtk_to_numpy(scalars).reshape(dims[::-1]) > 0).astype(np.uint8)


def labelsForEngine(segmentationNode, referenceVolumeNode) -> "np.ndarray | None":
    """The "LV blood pool" (1) and "LV myocardium" (2) segments as one (K, J, I) uint8 labelmap on the
    reference grid, for `scarenhance enhance --labels`; None unless both segments exist (the engine then
    segments the myocardium itself). Where the two overlap after editing, myocardium wins."""
    segmentation = segmentationNode.GetSegmentation()
    ids = {name: segmentation.GetSegmentIdBySegmentName(name) for name in LABEL_VALUES}
    if not all(ids.values()):
        return None
    labels = np.zeros(referenceVolumeNode.GetImageData().GetDimensions()[::-1], np.uint8)
    for name, value in LABEL_VALUES.items():  # blood pool first, so myocardium overwrites
        labels[segmentMask(segmentationNode, ids[name], referenceVolumeNode) > 0] = value
    return labels


def writeMask(mask: np.ndarray, referenceVolumeNode, path: str) -> None:
    """A (K, J, I) uint8 array (a 0/1 mask or 0/1/2 labels) to a labelmap file with the reference
    volume's geometry."""
    labelmap = slicer.vtkMRMLLabelMapVolumeNode()  # not added to the scene
    labelmap.CopyOrientation(referenceVolumeNode)
    image = vtk.vtkImageData()
    image.SetDimensions(mask.shape[::-1])
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = mask.astype(np.uint8).ravel()
    labelmap.SetAndObserveImageData(image)
    writeVolume(labelmap, path)


def readVolumeLike(path: str, referenceVolumeNode, nodeClass: str = "vtkMRMLScalarVolumeNode"):
    """A file the engine wrote (input geometry) as a node that is NOT in the scene yet, with the
    reference's geometry copied exactly. Raises if the file's grid is not the reference's."""
    read = getattr(slicer, nodeClass)()
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    if not storage.ReadData(read) or read.GetImageData() is None:
        raise OSError(f"could not read the engine's result {path}")
    expected = referenceVolumeNode.GetImageData().GetDimensions()
    if read.GetImageData().GetDimensions() != expected:
        raise ValueError(f"{path}: result has {read.GetImageData().GetDimensions()} voxels, the input {expected}")
    got, want = slicer.util.arrayFromVTKMatrix(ijkToRas(read)), slicer.util.arrayFromVTKMatrix(ijkToRas(referenceVolumeNode))
    if not np.allclose(got, want, atol=GEOMETRY_TOLERANCE):
        raise ValueError(f"{path}: result geometry differs from the input's (IJK→RAS {got.tolist()} vs {want.tolist()})")
    # A fresh node takes origin, spacing and directions from the input: bit-exact, not just close
    # (setting them on `read` would be skipped as "unchanged" within VTK's tolerance).
    node = getattr(slicer, nodeClass)()
    node.CopyOrientation(referenceVolumeNode)
    node.SetAndObserveImageData(read.GetImageData())
    return node


def _placeInScene(node, referenceVolumeNode, name: str, parentIsReference: bool) -> None:
    """Add a node with a unique name, under the reference's transform, in the subject hierarchy."""
    scene = referenceVolumeNode.GetScene()
    node.SetName(scene.GenerateUniqueName(name))
    scene.AddNode(node)
    node.SetAndObserveTransformNodeID(referenceVolumeNode.GetTransformNodeID())
    sh = scene.GetSubjectHierarchyNode()
    referenceItem = _shItem(sh, referenceVolumeNode)
    parent = referenceItem if parentIsReference else sh.GetItemParent(referenceItem)
    item = sh.GetItemByDataNode(node)
    if item:
        sh.SetItemParent(item, parent)
    else:  # in the application a subject hierarchy plugin creates the item; without it we do
        sh.CreateItem(parent, node)


def _shItem(sh, node) -> int:
    item = sh.GetItemByDataNode(node)
    return item if item else sh.CreateItem(sh.GetSceneItemID(), node)


def addResultVolume(loaded, referenceVolumeNode, name: str, matchWindowLevel: bool, outputNode=None):
    """Put a volume from `readVolumeLike` into the scene: into `outputNode` when the user chose one
    (never the reference itself), else as a new node named `name` (made unique) beside the reference."""
    if outputNode is not None:
        if outputNode is referenceVolumeNode:
            raise ValueError("the output volume must not be the input volume")
        outputNode.SetAndObserveImageData(loaded.GetImageData())
        outputNode.CopyOrientation(referenceVolumeNode)
        outputNode.SetAndObserveTransformNodeID(referenceVolumeNode.GetTransformNodeID())
        node = outputNode
    else:
        node = loaded
        _placeInScene(node, referenceVolumeNode, name, parentIsReference=False)
    node.CreateDefaultDisplayNodes()
    display, inputDisplay = node.GetDisplayNode(), referenceVolumeNode.GetDisplayNode()
    if matchWindowLevel and display is not None and inputDisplay is not None:
        # Same window/level as the input, so brighter scar shows as brighter, not as a rescaled image.
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(inputDisplay.GetWindow(), inputDisplay.GetLevel())
        if inputDisplay.GetColorNodeID():
            display.SetAndObserveColorNodeID(inputDisplay.GetColorNodeID())
    elif display is not None:
        display.SetAutoWindowLevel(True)
    return node


def _readLabelValues(path: str, referenceVolumeNode) -> np.ndarray:
    """(K, J, I) integer voxels of an engine labelmap on the reference grid (checked by readVolumeLike)."""
    node = readVolumeLike(path, referenceVolumeNode, "vtkMRMLLabelMapVolumeNode")
    dims = node.GetImageData().GetDimensions()
    return numpy_support.vtk_to_numpy(node.GetImageData().GetPointData().GetScalars()).reshape(dims[::-1])


def _orientedBinary(values: np.ndarray, referenceVolumeNode):
    binary = vtk.vtkImageData()
    binary.SetDimensions(values.shape[::-1])
    binary.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(binary.GetPointData().GetScalars())[:] = values.astype(np.uint8).ravel()
    oriented = slicer.vtkOrientedImageData()
    oriented.ShallowCopy(binary)
    oriented.SetImageToWorldMatrix(ijkToRas(referenceVolumeNode))
    return oriented


def addHeartSegmentation(roiPath: str, labelsPath: str, referenceVolumeNode, name: str):
    """A new segmentation node from `scarenhance segment`'s files: "Heart ROI" (the ROI for Enhance
    scar, standard terminology and colour) from the ROI mask, "LV blood pool" and "LV myocardium" from
    the labels (1, 2). Geometry = the input volume; placed under the input in the subject hierarchy.
    Returns (node, Heart ROI segment id). Every file is read and every segment built before the node
    enters the scene, and a failure after that removes it again: no orphan segmentation stays behind."""
    roi = _readLabelValues(roiPath, referenceVolumeNode) > 0
    labels = _readLabelValues(labelsPath, referenceVolumeNode)
    unexpected = sorted(set(np.unique(labels).tolist()) - {0, *LABEL_VALUES.values()})
    if unexpected:
        raise ValueError(f"{labelsPath}: labels must be 0, 1 (LV blood pool) or 2 (LV myocardium); found {unexpected}")

    segmentationNode = slicer.vtkMRMLSegmentationNode()  # not in the scene yet
    heartId = segmentationNode.AddSegmentFromBinaryLabelmapRepresentation(_orientedBinary(roi, referenceVolumeNode), HEART_SEGMENT_NAME, HEART_COLOR)
    for segmentName, value in LABEL_VALUES.items():
        segmentationNode.AddSegmentFromBinaryLabelmapRepresentation(
            _orientedBinary(labels == value, referenceVolumeNode), segmentName, SEGMENT_COLORS[segmentName])
    heart = segmentationNode.GetSegmentation().GetSegment(heartId)
    # The terminology is a tag: vtkSegment.SetTerminology() exists only from Slicer 5.10; the tag works in all.
    heart.SetTag(heart.GetTerminologyEntryTagName(), HEART_TERMINOLOGY)

    try:
        _placeInScene(segmentationNode, referenceVolumeNode, name, parentIsReference=True)
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolumeNode)
        segmentationNode.CreateDefaultDisplayNodes()
        # A smooth surface in 3D views; the binary labelmap stays the source the Segment Editor edits.
        segmentationNode.CreateClosedSurfaceRepresentation()
    except Exception:
        removeNode(segmentationNode)
        raise
    return segmentationNode, heartId


def removeNode(node) -> None:
    """Take a node we added out of the scene again, with its display nodes and subject hierarchy item."""
    scene = node.GetScene()
    if scene is None:
        return
    displays = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())] if hasattr(node, "GetNumberOfDisplayNodes") else []
    sh = scene.GetSubjectHierarchyNode()
    item = sh.GetItemByDataNode(node)
    for display in displays:
        if display is not None:
            scene.RemoveNode(display)
    scene.RemoveNode(node)
    if item and sh.GetItemByDataNode(node) == item:  # the application's plugins remove it; without them we do
        sh.RemoveItem(item, False, False)
