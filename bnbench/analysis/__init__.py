"""The answer's arithmetic: reading run folders, combining runs, per-trial measures, the paired summary with its
declared columns, and the verdict sentences (see each module). `compare` is the entry point."""

from .compare import compare_runs
from .reading import Results, load_run
from .summary import Comparison, compare_run

__all__ = ["Comparison", "Results", "compare_run", "compare_runs", "load_run"]
