"""Background work for the Slicer module: the explanation runs in a separate Python process.

The parent (3D Slicer, or any script) writes the inputs as NRRD files into a temporary job folder and
starts ``python -m XAIMedSlicerLib.worker job.json`` (PythonSlicer inside Slicer). The worker reports
JSON-lines progress at least every 0.5 s (:mod:`.protocol`), runs :func:`XAIMedSlicerLib.explain.explain`
with an out-of-memory fallback (smaller chunks, then the CPU: :mod:`.fallback`), and renames its output
folder into place only when complete. Cancel kills the process tree; a crash or an out-of-memory in the
worker becomes a one-line message in the parent and never takes the parent down.

Public API::

    folder = create_job_folder()
    job = WorkerJob(image=..., model=..., out_dir=str(folder.out_dir), method="ig", ...)
    proc = WorkerProcess(folder, job).start()   # GUI: call proc.poll() from a QTimer
    outcome = proc.wait(on_message=print)       # or blocking: run_job(job, folder)
    outcome.status in ("done", "cancelled", "failed"); outcome.message; outcome.result
"""

from .fallback import Attempt, OutOfMemory, is_out_of_memory, run_with_fallback  # noqa: F401
from .job import JobFolder, WorkerJob, create_job_folder  # noqa: F401
from .process import WorkerOutcome, WorkerProcess, probe_devices, python_executable, run_job  # noqa: F401
from .protocol import HEARTBEAT_S, ExitCode, decode  # noqa: F401
from .results import load_explanation, load_labels, load_validation  # noqa: F401
