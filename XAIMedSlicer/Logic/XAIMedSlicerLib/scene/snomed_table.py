"""SNOMED CT codes for the structures of the shipped label sets (data table; see ``terminology.py``).

Covered: the TotalSegmentator ``total`` and ``total_mr`` classes (``class_map_total.json``), the MeshNet
tissue (white/grey matter) and 18 subcortical classes, and the FreeSurfer aseg subcortical names.
Every code here is the DICOM standard's SNOMED CT concept (the ``SCT`` codes in DICOM Part 16, as
shipped in ``pydicom.sr.codedict``); ``Testing/test_scene_terminology.py`` checks each code and
meaning against that dictionary and SNOMED's Verhoeff check digit.

Keys are normalised structure names without the side (``left``/``right`` is a modifier). Where no exact
concept exists in that dictionary the table uses a correct, coarser parent (ribs -> "Rib", gluteal and
iliopsoas muscles -> "Skeletal muscle", Destrieux ``ctx_*`` parcels -> "Cerebral cortex"); anything not
listed falls back to the generic "Anatomical Structure" concept (``terminology.GENERIC``).
"""

from __future__ import annotations

# code, meaning (DICOM code meaning)
Code = tuple[str, str]

BODY_STRUCTURE: Code = ("123037004", "Anatomical Structure")  # category used by Slicer and TotalSegmentator
ALTERED_STRUCTURE: Code = ("49755003", "Morphologically Abnormal Structure")
ANATOMICAL_STRUCTURE: Code = ("91723000", "Anatomical Structure")  # generic type (fallback)
LEFT: Code = ("7771000", "Left")
RIGHT: Code = ("24028007", "Right")

# base structure -> type code. A side found in the name becomes the type modifier.
STRUCTURES: dict[str, Code] = {
    # abdomen and pelvis
    "spleen": ("78961009", "Spleen"),
    "kidney": ("64033007", "Kidney"),
    "gallbladder": ("28231008", "Gallbladder"),
    "liver": ("10200004", "Liver"),
    "stomach": ("69695003", "Stomach"),
    "pancreas": ("15776009", "Pancreas"),
    "adrenal_gland": ("23451007", "Adrenal gland"),
    "esophagus": ("32849002", "Esophagus"),
    "small_bowel": ("30315005", "Small intestine"),
    "duodenum": ("38848004", "Duodenum"),
    "colon": ("71854001", "Colon"),
    "urinary_bladder": ("89837001", "Bladder"),
    "prostate": ("41216001", "Prostate"),
    # thorax and neck
    "lung": ("39607008", "Lung"),
    "lung_upper_lobe": ("45653009", "Upper lobe of lung"),
    "lung_lower_lobe": ("90572001", "Lower lobe of lung"),
    "lung_middle_lobe": ("72481006", "Middle lobe of right lung"),
    "trachea": ("44567001", "Trachea"),
    "thyroid_gland": ("69748006", "Thyroid"),
    "heart": ("80891009", "Heart"),
    "atrial_appendage": ("33626005", "Left auricular appendage"),  # TotalSegmentator has the left one only
    # vessels
    "aorta": ("15825003", "Aorta"),
    "pulmonary_vein": ("122972007", "Pulmonary vein"),
    "brachiocephalic_trunk": ("12691009", "brachiocephalic trunk"),
    "subclavian_artery": ("36765005", "Subclavian artery"),
    "common_carotid_artery": ("32062004", "Common carotid artery"),
    "brachiocephalic_vein": ("8887007", "Brachiocephalic vein"),
    "superior_vena_cava": ("48345005", "Superior vena cava"),
    "inferior_vena_cava": ("64131007", "Inferior vena cava"),
    "iliac_artery": ("73634005", "Common iliac artery"),
    "iliac_vena": ("46027005", "Common iliac vein"),
    # bones
    "sacrum": ("54735007", "Sacrum"),
    "vertebrae": ("51282000", "Vertebra"),
    "humerus": ("85050009", "Humerus"),
    "scapula": ("79601000", "Scapula"),
    "clavicula": ("51299004", "Clavicle"),
    "femur": ("71341001", "Femur"),
    "hip": ("29836001", "Hip"),
    "skull": ("89546000", "Skull"),
    "rib": ("113197003", "Rib"),
    "sternum": ("56873002", "Sternum"),
    "costal_cartilages": ("50016007", "Costal Cartilage"),
    # muscles
    "gluteus_maximus": ("127954009", "Skeletal muscle"),
    "gluteus_medius": ("127954009", "Skeletal muscle"),
    "gluteus_minimus": ("127954009", "Skeletal muscle"),
    "iliopsoas": ("127954009", "Skeletal muscle"),
    "autochthon": ("44947003", "Erector spinae muscle"),
    # central nervous system
    "brain": ("12738006", "Brain"),
    "spinal_cord": ("2748008", "Spinal cord"),
    "white_matter": ("389080008", "White Matter"),
    "grey_matter": ("389081007", "Gray Matter"),
    "cerebral_white_matter": ("68523003", "Cerebral White Matter"),
    "cerebral_cortex": ("40146001", "Cerebral cortex"),
    "lateral_ventricle": ("66720007", "Lateral Ventricle"),
    "inferior_lateral_ventricle": ("53118009", "Inferior Horn of Lateral Ventricle"),
    "cerebellum_white_matter": ("33060004", "Cerebellar White Matter"),
    "cerebellum_cortex": ("25991003", "Cerebellar Cortex"),
    "cerebellum": ("113305005", "Cerebellum"),
    "thalamus": ("42695009", "Thalamus"),
    "caudate": ("11000004", "Caudate Nucleus"),
    "putamen": ("89278009", "Putamen"),
    "pallidum": ("14738005", "Globus Pallidus"),
    "3rd_ventricle": ("49841001", "Third ventricle"),
    "4th_ventricle": ("35918002", "Fourth Ventricle"),
    "brain_stem": ("119238007", "Brain Stem"),
    "hippocampus": ("5366008", "Hippocampus"),
    "amygdala": ("4958002", "Amygdala"),
    "accumbens_area": ("427667007", "Nucleus Accumbens"),
    "csf": ("280371009", "Brain cerebrospinal fluid pathway"),
    "optic_chiasm": ("244453006", "Optic chiasm"),
}

# per-level vertebrae (TotalSegmentator vertebrae_C1 ... vertebrae_L5): level -> code of "<level> vertebra"
VERTEBRAE: dict[str, str] = {
    "C1": "14806007",
    "C2": "39976000",
    "C3": "113205007",
    "C4": "5329002",
    "C5": "36978003",
    "C6": "36054005",
    "C7": "87391001",
    "T1": "64864005",
    "T2": "53733008",
    "T3": "1626008",
    "T4": "73071006",
    "T5": "56401006",
    "T6": "45296009",
    "T7": "62487009",
    "T8": "11068009",
    "T9": "82687006",
    "T10": "7610001",
    "T11": "12989004",
    "T12": "23215003",
    "L1": "66794005",
    "L2": "14293000",
    "L3": "36470004",
    "L4": "11994002",
    "L5": "49668003",
}
STRUCTURES.update(
    {f"vertebrae_{level.lower()}": (code, f"{level} vertebra") for level, code in VERTEBRAE.items()}
)

# other spellings -> table key (after normalisation)
ALIASES: dict[str, str] = {
    "thalamus_proper": "thalamus",
    "inf_lat_vent": "inferior_lateral_ventricle",
    "third_ventricle": "3rd_ventricle",
    "fourth_ventricle": "4th_ventricle",
    "brainstem": "brain_stem",
    "gray_matter": "grey_matter",
    "cerebral_grey_matter": "cerebral_cortex",
    "cortex": "cerebral_cortex",
    "clavicle": "clavicula",
    "bladder": "urinary_bladder",
    "small_intestine": "small_bowel",
    "thyroid": "thyroid_gland",
    "accumbens": "accumbens_area",
}

# structures that are morphologically altered, not anatomy: key -> (type, anatomic region)
ALTERED: dict[str, tuple[Code, Code]] = {
    "kidney_cyst": (("367643001", "Cyst"), ("64033007", "Kidney")),
}

# name prefixes of parcellations mapped to a parent structure (Destrieux / Desikan cortex)
PREFIXES: dict[str, str] = {"ctx": "cerebral_cortex", "wm": "cerebral_white_matter"}
