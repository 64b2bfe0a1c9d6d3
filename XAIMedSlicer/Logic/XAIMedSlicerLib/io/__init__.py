"""Reading and writing volumes (NIfTI, NRRD, DICOM series) and atomic file output."""
