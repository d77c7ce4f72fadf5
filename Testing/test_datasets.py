"""Dataset readers: each layout's label mapping, layout detection, and an error naming the file for each bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from scarenhance import labels as L
from scarenhance.datasets import detect_layout, iter_cases, list_cases, load_case, map_labels
from scarenhance.errors import InputError

SHAPE = (3, 8, 9)  # z, y, x


def _image(seed=0, spacing=(1.25, 1.25, 10.0), origin=(-80.0, 12.5, 40.0)) -> sitk.Image:
    rng = np.random.default_rng(seed)
    image = sitk.GetImageFromArray(rng.integers(0, 800, SHAPE).astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def _label_array(values, seed=0) -> np.ndarray:
    """Every value in ``values`` appears at least once; the rest is random among them."""
    rng = np.random.default_rng(seed)
    array = rng.choice(np.asarray(values), size=SHAPE)
    array.reshape(-1)[: len(values)] = values
    return array


def _labels_like(image: sitk.Image, array: np.ndarray) -> sitk.Image:
    labels = sitk.GetImageFromArray(array)
    labels.CopyInformation(image)
    return labels


def _write(image: sitk.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def _emidec_case(root: Path, name: str, values=(0, 1, 2, 3, 4), ext=".nii.gz", label_dtype=np.uint8, seed=0):
    image = _image(seed)
    source = _label_array(list(values), seed).astype(label_dtype)
    _write(image, root / name / "Images" / f"{name}{ext}")
    _write(_labels_like(image, source), root / name / "Contours" / f"{name}{ext}")
    return image, source


# ---------------------------------------------------------------------------------------------- EMIDEC


def test_emidec_label_mapping(tmp_path):
    image, source = _emidec_case(tmp_path, "Case_001")
    case = load_case(tmp_path, "Case_001")
    expected = np.select(
        [source == 0, source == 1, source == 2, source == 3, source == 4],
        [L.BACKGROUND, L.BLOOD, L.MYOCARDIUM, L.SCAR, L.SCAR],
    )
    got = sitk.GetArrayFromImage(case.labels)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.uint8 and case.labels.GetPixelID() == sitk.sitkUInt8
    # no-reflow (4) is scar
    assert np.all(got[source == 4] == L.SCAR)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.image), sitk.GetArrayFromImage(image))
    assert case.image_path == tmp_path / "Case_001" / "Images" / "Case_001.nii.gz"
    assert case.label_path == tmp_path / "Case_001" / "Contours" / "Case_001.nii.gz"
    assert case.labels.GetOrigin() == case.image.GetOrigin() and case.labels.GetSpacing() == case.image.GetSpacing()


def test_emidec_written_by_someone_else(tmp_path):
    """Float labels 0.0..4.0, uncompressed .nii, challenge-style case names, clinical .txt files beside."""
    _, src_n = _emidec_case(tmp_path, "Case_N012", values=(0.0, 1.0, 2.0), ext=".nii", label_dtype=np.float32, seed=1)
    _, src_p = _emidec_case(tmp_path, "Case_P045", values=(0.0, 1.0, 2.0, 3.0, 4.0), ext=".nii", label_dtype=np.float64, seed=2)
    (tmp_path / "Case_N012.txt").write_text("Sex: F\nAge: 61\n")
    assert detect_layout(tmp_path) == "emidec"
    assert list_cases(tmp_path) == ["Case_N012", "Case_P045"]
    cases = {c.name: c for c in iter_cases(tmp_path)}
    np.testing.assert_array_equal(sitk.GetArrayFromImage(cases["Case_N012"].labels), src_n.astype(np.uint8))
    got = sitk.GetArrayFromImage(cases["Case_P045"].labels)
    np.testing.assert_array_equal(got, np.where(src_p == 4, 3, src_p).astype(np.uint8))


def test_emidec_missing_contours_is_an_error_unless_labels_are_optional(tmp_path):
    _emidec_case(tmp_path, "Case_001")
    (tmp_path / "Case_001" / "Contours" / "Case_001.nii.gz").unlink()
    with pytest.raises(InputError, match="label file missing") as e:
        load_case(tmp_path, "Case_001")
    assert "Contours/Case_001.nii.gz" in str(e.value)
    case = load_case(tmp_path, "Case_001", require_labels=False)
    assert case.labels is None and case.label_path is None and case.image.GetSize() == SHAPE[::-1]


def test_emidec_unknown_label_values_are_listed(tmp_path):
    _emidec_case(tmp_path, "Case_001", values=(0, 1, 2, 7, 9))
    with pytest.raises(InputError) as e:
        load_case(tmp_path, "Case_001")
    message = str(e.value)
    assert "Case_001.nii.gz" in message and "unknown label values [7, 9]" in message and "[0, 1, 2, 3, 4]" in message


def test_emidec_non_integer_float_labels(tmp_path):
    _emidec_case(tmp_path, "Case_001", values=(0.0, 1.0, 2.5), label_dtype=np.float32)
    with pytest.raises(InputError, match=r"non-integer values \[2.5\]") as e:
        load_case(tmp_path, "Case_001")
    assert "Contours/Case_001.nii.gz" in str(e.value)


@pytest.mark.parametrize(
    "change, what",
    [
        (dict(spacing=(1.25, 1.3, 10.0)), "spacing"),
        (dict(origin=(-80.0, 14.0, 40.0)), "origin"),
    ],
)
def test_geometry_mismatch_names_both_files_and_what_differs(tmp_path, change, what):
    image = _image()
    _write(image, tmp_path / "Case_001" / "Images" / "Case_001.nii.gz")
    other = _image(**change)
    _write(_labels_like(other, _label_array([0, 1, 2])), tmp_path / "Case_001" / "Contours" / "Case_001.nii.gz")
    with pytest.raises(InputError, match=what) as e:
        load_case(tmp_path, "Case_001")
    message = str(e.value)
    assert "Images/Case_001.nii.gz" in message and "Contours/Case_001.nii.gz" in message


def test_geometry_mismatch_size_and_direction(tmp_path):
    image = _image()
    _write(image, tmp_path / "A" / "Images" / "A.nii.gz")
    small = sitk.GetImageFromArray(np.zeros((3, 8, 8), np.uint8))
    small.CopyInformation(sitk.GetImageFromArray(np.zeros((3, 8, 8), np.uint8)))
    _write(small, tmp_path / "A" / "Contours" / "A.nii.gz")
    with pytest.raises(InputError, match=r"size \(8, 8, 3\) vs \(9, 8, 3\)"):
        load_case(tmp_path, "A")

    rotated = _labels_like(image, _label_array([0, 1]))
    rotated.SetDirection((0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    _write(rotated, tmp_path / "A" / "Contours" / "A.nii.gz")
    with pytest.raises(InputError, match="direction"):
        load_case(tmp_path, "A")


def test_geometry_within_tolerance_is_accepted_and_snapped_to_the_image(tmp_path):
    image = _image()
    _write(image, tmp_path / "A" / "Images" / "A.nii.gz")
    near = _labels_like(image, _label_array([0, 1]))
    near.SetOrigin(tuple(o + 2e-6 for o in image.GetOrigin()))
    near.SetSpacing(tuple(s * (1 + 1e-6) for s in image.GetSpacing()))
    _write(near, tmp_path / "A" / "Contours" / "A.nii.gz")
    case = load_case(tmp_path, "A")
    assert case.labels.GetOrigin() == case.image.GetOrigin()


def test_4d_label_file_is_refused(tmp_path):
    _emidec_case(tmp_path, "A")
    sitk.WriteImage(sitk.Image([9, 8, 3, 2], sitk.sitkUInt8), str(tmp_path / "A" / "Contours" / "A.nii.gz"))
    with pytest.raises(InputError, match="4D image") as e:
        load_case(tmp_path, "A")
    assert "Contours/A.nii.gz" in str(e.value)


def test_unreadable_image_file(tmp_path):
    _emidec_case(tmp_path, "A")
    (tmp_path / "A" / "Images" / "A.nii.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(InputError) as e:
        next(iter_cases(tmp_path))
    assert "Images/A.nii.gz" in str(e.value)


# ---------------------------------------------------------------------------------------------- MyoPS

MYOPS_VALUES = [0, 200, 500, 600, 1220, 2221]


def _myops_case(folder: Path, name: str, label_folder: "Path | None" = None, values=MYOPS_VALUES, seed=0):
    image = _image(seed)
    source = _label_array(values, seed).astype(np.int16)
    _write(image, folder / f"{name}_LGE.nii.gz")
    _write(_image(seed + 10), folder / f"{name}_C0.nii.gz")  # other modalities are ignored
    _write(_image(seed + 20), folder / f"{name}_T2.nii.gz")
    _write(_labels_like(image, source), (label_folder or folder) / f"{name}_gd.nii.gz")
    return source


def test_myops_label_mapping_and_other_modalities_ignored(tmp_path):
    source = _myops_case(tmp_path, "Case101")
    _myops_case(tmp_path, "Case102", seed=3)
    assert detect_layout(tmp_path) == "myops"
    assert list_cases(tmp_path) == ["Case101", "Case102"]
    case = load_case(tmp_path, "Case101")
    expected = {0: L.BACKGROUND, 200: L.MYOCARDIUM, 500: L.BLOOD, 600: L.OTHER, 1220: L.MYOCARDIUM, 2221: L.SCAR}
    got = sitk.GetArrayFromImage(case.labels)
    for value, canonical in expected.items():
        assert np.all(got[source == value] == canonical), value
    assert case.image_path.name == "Case101_LGE.nii.gz" and case.label_path.name == "Case101_gd.nii.gz"


def test_myops_challenge_layout_with_labels_in_a_sibling_folder(tmp_path):
    (tmp_path / "train25").mkdir()
    _myops_case(tmp_path / "train25", "myops_training_101", label_folder=tmp_path / "train25_myops_gd")
    (tmp_path / "train25" / "myops_training_101_LGE.nii.gz").rename(tmp_path / "train25" / "myops_training_101_DE.nii.gz")
    assert list_cases(tmp_path) == ["myops_training_101"]
    case = load_case(tmp_path, "myops_training_101")
    assert case.label_path == tmp_path / "train25_myops_gd" / "myops_training_101_gd.nii.gz"


def test_myops_missing_and_unknown_labels(tmp_path):
    _myops_case(tmp_path, "Case101", values=[0, 200, 500, 1500])
    with pytest.raises(InputError, match=r"unknown label values \[1500\]") as e:
        load_case(tmp_path, "Case101")
    assert "Case101_gd.nii.gz" in str(e.value) and "2221" in str(e.value)
    (tmp_path / "Case101_gd.nii.gz").unlink()
    with pytest.raises(InputError, match="label file missing") as e:
        load_case(tmp_path, "Case101")
    assert "Case101_gd.nii.gz" in str(e.value)


# ---------------------------------------------------------------------------------------------- generic


def _generic(root: Path, mapping=None):
    mapping = mapping or {"blood": [1], "myocardium": [2], "scar": [3, 4], "other": [5]}
    (root / "images").mkdir(parents=True)
    (root / "labels.json").write_text(json.dumps(mapping))
    image = _image()
    source = _label_array([0, 1, 2, 3, 4, 5]).astype(np.uint16)
    _write(image, root / "images" / "patient7.nrrd")
    _write(_labels_like(image, source), root / "labels" / "patient7.nii.gz")  # extensions may differ
    return source


def test_generic_layout_uses_the_json_label_map(tmp_path):
    source = _generic(tmp_path)
    assert detect_layout(tmp_path) == "generic"
    assert list_cases(tmp_path) == ["patient7"]
    got = sitk.GetArrayFromImage(load_case(tmp_path, "patient7").labels)
    lut = np.array([L.BACKGROUND, L.BLOOD, L.MYOCARDIUM, L.SCAR, L.SCAR, L.OTHER])
    np.testing.assert_array_equal(got, lut[source])


def test_generic_value_missing_from_the_map(tmp_path):
    _generic(tmp_path, mapping={"blood": [1], "myocardium": [2], "scar": [3]})
    with pytest.raises(InputError, match=r"unknown label values \[4, 5\]") as e:
        load_case(tmp_path, "patient7")
    assert "patient7.nii.gz" in str(e.value)


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"blood": [1], "fat": [9]}', "unknown class 'fat'"),
        ('{"blood": [1], "scar": [1]}', "label value 1 is given to two classes"),
        ('{"blood": "one"}', "list of integer"),
        ("{not json", "cannot read the label map"),
    ],
)
def test_generic_bad_label_map(tmp_path, text, problem):
    _generic(tmp_path)
    (tmp_path / "labels.json").write_text(text)
    with pytest.raises(InputError, match=problem) as e:
        load_case(tmp_path, "patient7")
    assert "labels.json" in str(e.value)


def test_generic_missing_label_map(tmp_path):
    _generic(tmp_path)
    (tmp_path / "labels.json").unlink()
    with pytest.raises(InputError, match="label map missing") as e:
        load_case(tmp_path, "patient7")
    assert "labels.json" in str(e.value)


# ---------------------------------------------------------------------------------------------- folders


def test_empty_folder_and_unknown_layout(tmp_path):
    with pytest.raises(InputError, match="empty folder") as e:
        list_cases(tmp_path)
    assert str(tmp_path) in str(e.value)
    (tmp_path / "scan.nii.gz").write_bytes(b"")
    with pytest.raises(InputError, match="no known dataset layout") as e:
        list_cases(tmp_path)
    assert "scan.nii.gz" in str(e.value)
    with pytest.raises(InputError, match="not found"):
        list_cases(tmp_path / "missing")
    with pytest.raises(InputError, match="unknown layout 'nnunet'"):
        list_cases(tmp_path, layout="nnunet")


def test_map_labels_keeps_shape_and_accepts_any_dtype():
    values = np.array([[0, 4], [2, 1]], dtype=np.int64)
    out = map_labels(values.astype(np.float32), {0: 0, 1: 1, 2: 2, 4: 3})
    np.testing.assert_array_equal(out, [[0, 3], [2, 1]])
    assert out.dtype == np.uint8


def test_phantom_cases_load_through_the_emidec_reader(tmp_path):
    from scarenhance.phantom import canonical_labels, case_seed, generate_case, write_cases

    overrides = dict(n_slices=3, size=(96, 80), spacing=1.8, scar_pattern="transmural", oblique=True)
    write_cases(tmp_path, n=2, seed=4, **overrides)
    assert detect_layout(tmp_path) == "emidec"
    assert list_cases(tmp_path) == ["Case_001", "Case_002"]
    case = load_case(tmp_path, "Case_002")
    original = generate_case(case_seed(4, 2), **overrides)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.image), sitk.GetArrayFromImage(original.image))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.labels), canonical_labels(original))
    assert np.any(sitk.GetArrayFromImage(case.labels) == L.SCAR)
    np.testing.assert_allclose(case.image.GetDirection(), original.image.GetDirection(), atol=1e-6)


def test_generic_image_may_be_a_dicom_series_folder(tmp_path):
    from test_io import _write_dicom_series

    image = _image()
    _write_dicom_series(tmp_path / "images" / "lge01", image, "1.2.826.0.1.3680043.2.1125.9.1")
    _write(_labels_like(image, _label_array([0, 1, 2]).astype(np.uint8)), tmp_path / "labels" / "lge01.nrrd")
    (tmp_path / "labels.json").write_text('{"blood": [1], "myocardium": [2]}')
    assert list_cases(tmp_path) == ["lge01"]
    case = load_case(tmp_path, "lge01")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.image), sitk.GetArrayFromImage(image))
    assert case.image_path == tmp_path / "images" / "lge01"


def test_emidec_image_with_another_name_is_found_and_its_contour_expected_beside(tmp_path):
    image = _image()
    _write(image, tmp_path / "P7" / "Images" / "scan.nii")
    with pytest.raises(InputError, match="label file missing") as e:
        load_case(tmp_path, "P7")
    assert "Contours/scan.nii" in str(e.value)
    _write(_labels_like(image, _label_array([0, 1, 2])), tmp_path / "P7" / "Contours" / "scan.nii.gz")
    assert load_case(tmp_path, "P7").image_path.name == "scan.nii"
    _write(image, tmp_path / "P7" / "Images" / "other.nii")
    with pytest.raises(InputError, match="expected the image P7.nii.gz; found other.nii, scan.nii") as e:
        load_case(tmp_path, "P7")
