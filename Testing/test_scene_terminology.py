"""SNOMED CT terminology of segments: every code checked against DICOM's dictionary (pydicom) and SNOMED's
check digit; the shipped label sets (TotalSegmentator, MeshNet, FreeSurfer) are covered; colour tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydicom.sr.codedict import codes

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.geometry.frames import ras_to_lps_points
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import read_volume
from XAIMedSlicerLib.scene import (
    add_segmentation,
    create_scene,
    palette_color,
    parse_terminology,
    read_color_table,
    segment_ids,
    terminology_entry,
)
from XAIMedSlicerLib.scene import snomed_table as table
from XAIMedSlicerLib.scene.segmentation import segment_tag

# Verhoeff tables (SNOMED CT identifiers end in a Verhoeff check digit)
_MUL = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_PERM = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]]
for _ in range(6):
    _PERM.append([_PERM[1][v] for v in _PERM[-1]])


def verhoeff_ok(number: str) -> bool:
    check = 0
    for position, digit in enumerate(reversed(number)):
        check = _MUL[check][_PERM[position % 8][int(digit)]]
    return check == 0


def _dicom_sct() -> dict[str, set[str]]:
    meanings: dict[str, set[str]] = {}
    for keyword in codes.SCT.dir():
        code = getattr(codes.SCT, keyword)
        meanings.setdefault(code.value, set()).add(code.meaning.lower())
    return meanings


def _all_codes():
    yield from table.STRUCTURES.values()
    for kind, region in table.ALTERED.values():
        yield kind
        yield region
    yield from (
        table.BODY_STRUCTURE,
        table.ANATOMICAL_STRUCTURE,
        table.ALTERED_STRUCTURE,
        table.LEFT,
        table.RIGHT,
    )


def test_every_code_is_a_dicom_sct_concept_with_its_meaning():
    dicom = _dicom_sct()
    for value, meaning in _all_codes():
        assert verhoeff_ok(value), value
        assert value in dicom, (value, meaning)
        if value != table.BODY_STRUCTURE[0]:  # Slicer names this category "Anatomical Structure"
            assert meaning.lower() in dicom[value], (value, meaning, dicom[value])


def test_verhoeff_check_rejects_a_wrong_digit():
    assert verhoeff_ok("10200004") and not verhoeff_ok("10200005") and not verhoeff_ok("12989008")


@pytest.mark.parametrize(
    ("name", "type_code", "modifier"),
    [
        ("liver", "10200004", None),
        ("kidney_left", "64033007", "7771000"),
        ("Right-Putamen", "89278009", "24028007"),
        ("Left-Thalamus-Proper", "42695009", "7771000"),
        ("rib_right_7", "113197003", "24028007"),
        ("vertebrae_L3", "36470004", None),
        ("lung_middle_lobe_right", "72481006", None),  # the side is part of the concept
        ("Cerebral-White-Matter", "68523003", None),
        ("Grey Matter", "389081007", None),
        ("ctx_lh_G_front_sup", "40146001", "7771000"),
        ("3rd-Ventricle", "49841001", None),
    ],
)
def test_structure_names_map_to_codes(name, type_code, modifier):
    entry = terminology_entry(name)
    assert not entry["generic"]
    assert entry["category"][0] == "123037004"
    assert entry["type"][0] == type_code
    assert (entry["modifier"][0] if entry["modifier"] else None) == modifier


def test_unknown_names_get_the_generic_concept():
    entry = terminology_entry("VentralDC")
    assert entry["generic"] and entry["type"] == ("91723000", "Anatomical Structure")
    cyst = terminology_entry("kidney_cyst_left")
    assert cyst["category"][0] == "49755003" and cyst["type"][0] == "367643001"
    assert cyst["region"][0] == "64033007" and cyst["region_modifier"][0] == "7771000"


def test_shipped_label_sets_are_covered(shared_data):
    classes = json.loads(shared_data("ct/class_map_total.json").read_text())
    total = list(classes["total"].values())
    total_mr = list(classes["total_mr"].values())
    meshnet = json.loads(shared_data("models/meshnet/model18cls/colormap.json").read_text())["labels"][1:]
    tissue = json.loads(shared_data("models/meshnet/model5_gw_ae/colormap3.json").read_text())["labels"][1:]
    aseg = [
        n
        for n in json.loads(shared_data("brain/aparc.a2009s+aseg_labels_present.json").read_text()).values()
        if n != "Unknown"
    ]
    for names, minimum in ((total, 0.95), (total_mr, 0.95), (meshnet, 0.9), (tissue, 1.0), (aseg, 0.9)):
        specific = [n for n in names if not terminology_entry(n)["generic"]]
        assert len(specific) >= minimum * len(names), sorted(set(names) - set(specific))


def test_segments_carry_names_colours_and_terminology(shared_data):
    colours = read_color_table(shared_data("models/meshnet/model18cls/colormap.json"))
    t1 = read_volume(shared_data("brain/t1_crop_subcortical18_pred_model18cls.nii.gz"))
    crop = t1.array[100:140, 100:140, 100:140]
    origin = ras_to_lps_points(t1.index_to_ras((100, 100, 100)))
    labels = Volume(crop.astype(np.int16), t1.spacing, origin, t1.direction)
    present = [int(v) for v in np.unique(crop) if v != 0]
    assert len(present) >= 3
    ss = create_scene()
    names = {k: v[0] for k, v in colours.items()}
    segmentation, labelmap = add_segmentation(
        ss, labels, names, colors={k: v[1] for k, v in colours.items()}, closed_surface=False
    )
    seg = segmentation.GetSegmentation()
    found = {}
    for segment_id in segment_ids(segmentation):
        segment = seg.GetSegment(segment_id)
        found[int(segment_tag(segment, "XAIMed.label"))] = segment
    assert sorted(found) == present
    for value, segment in found.items():
        assert segment.GetName() == names[value]
        np.testing.assert_allclose(segment.GetColor(), colours[value][1], atol=1e-6)
        codes_ = parse_terminology(segment.GetTerminology())
        assert codes_["type"][1] == terminology_entry(names[value])["type"][0]
    # the segment voxels are exactly the label's voxels, on the label map's grid
    import slicer

    for value, segment in found.items():
        array = slicer.util.arrayFromSegmentBinaryLabelmap(
            segmentation, seg.GetSegmentIdBySegment(segment), labelmap
        )
        np.testing.assert_array_equal(array > 0, crop == value)


def test_segmentation_without_labelmap_leaves_nothing_behind(oblique_volume):
    labels = oblique_volume.with_array((oblique_volume.array > 1.0).astype(np.uint8) * 3)
    ss = create_scene()
    before = ss.scene.GetNumberOfNodes()
    segmentation, labelmap = add_segmentation(ss, labels, {3: "liver"}, keep_labelmap=False)
    assert labelmap is None
    assert ss.scene.GetNodesByClass("vtkMRMLLabelMapVolumeNode").GetNumberOfItems() == 0
    added = {ss.scene.GetNthNode(i).GetClassName() for i in range(before, ss.scene.GetNumberOfNodes())}
    assert "vtkMRMLColorTableNode" not in added
    assert [segmentation.GetSegmentation().GetNthSegment(0).GetName()] == ["liver"]
    with pytest.raises(XAIError, match="no structures"):
        add_segmentation(ss, labels.with_array(np.zeros_like(labels.array)), {})


def test_colour_tables_and_palette(tmp_path):
    lut = tmp_path / "FreeSurferColorLUT.txt"
    lut.write_text(
        "# comment\n0 Unknown 0 0 0 0\n17 Left-Hippocampus 220 216 20 0\n53 Right-Hippocampus 220 216 20 0\n"
    )
    table_ = read_color_table(lut)
    assert table_ == {
        17: ("Left-Hippocampus", (220 / 255, 216 / 255, 20 / 255)),
        53: ("Right-Hippocampus", (220 / 255, 216 / 255, 20 / 255)),
    }
    names = tmp_path / "names.json"
    names.write_text('{"1": "spleen", "5": "liver"}')
    assert read_color_table(names) == {1: ("spleen", None), 5: ("liver", None)}
    bad = tmp_path / "bad.txt"
    bad.write_text("x y z\n")
    with pytest.raises(XAIError, match="line 1"):
        read_color_table(bad)
    with pytest.raises(XAIError, match="does not exist"):
        read_color_table(tmp_path / "missing.json")
    colours = [palette_color(v) for v in range(1, 120)]
    assert palette_color(7) == palette_color(7)  # stable
    assert len({tuple(np.round(c, 3)) for c in colours}) == len(colours)  # distinct
