"""Reader studies: disagreement annotations, their agreement with maps, blinded trust ratings.

* ``annotation`` / ``coding``: a reader's coded disagreement regions (label map + XAIMED codes + provenance);
* ``segfile``: Slicer ``.seg.nrrd`` files, written atomically;
* ``agreement``: attribution mass in "irrelevant" regions, share of "missed" regions missed, Dice;
* ``database`` / ``store``: the study database (SQLite, WAL, one transaction per write);
* ``blinding`` / ``reader``: seeded case order, secret A/B/C labels, 5-point trust, time per case;
* ``cohort`` / ``report`` / ``dicom_seg``: cohort CSV, summary per method, DICOM SEG export;
* ``benchmark`` (import it from ``study.benchmark``: ``run_benchmark``, ``SETTINGS``): the
  synthetic-lesion benchmark behind ``xaimed benchmark``.
"""

from .agreement import AgreementResult, agreement  # noqa: F401
from .annotation import DisagreementAnnotation, Provenance, Segment  # noqa: F401
from .coding import CATEGORIES, SCHEME, category, terminology_entry  # noqa: F401
from .cohort import cohort_rows, write_cohort_csv  # noqa: F401
from .dicom_seg import export_dicom_seg  # noqa: F401
from .reader import ReaderSession, ReaderView  # noqa: F401
from .report import study_summary, write_study_report  # noqa: F401
from .segfile import read_seg_nrrd, write_seg_nrrd  # noqa: F401
from .store import CaseSpec, Study  # noqa: F401
