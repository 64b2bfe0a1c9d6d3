"""``python -m XAIMedSlicerLib.worker JOB.json``: run one job (see :mod:`.main`)."""

import os
import sys

from .main import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)  # outputs are complete and flushed; skip the slow interpreter teardown (fast cancel)
