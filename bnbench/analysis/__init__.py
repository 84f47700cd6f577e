"""The answer's arithmetic: reading run folders, combining runs, per-trial measures, the paired summary with its
declared columns, and the verdict sentences (see each module). `compare` is the entry point."""

from bnbench.analysis.compare import compare_runs
from bnbench.analysis.reading import Results, load_run
from bnbench.analysis.summary import Comparison, compare_run

__all__ = ["Comparison", "Results", "compare_run", "compare_runs", "load_run"]
