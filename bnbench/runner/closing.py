"""The verdict lines `bnbench run` ends with, worked out by a process forked as the run starts.

`show.summary` needs pandas and scipy, slow to import (docs/performance.md: a good part of a quick run's fixed cost);
imported in a forked child while the run trains, they cost the run nothing on a machine with a core to spare
(Linux; elsewhere the lines are worked out here, after the run).
The child is forked before the run starts its lock, threads or workers; it ignores Ctrl-C (the run handles
it), is killed as soon as the run ends without asking for the lines, and dies with this process, silently.
Whatever goes wrong in it, the lines are worked out here.
"""

import ctypes
import multiprocessing as mp
import sys
from pathlib import Path

from bnbench.backends import stopping


class ClosingLines:
    def __init__(self):
        self.process = None
        if sys.platform != "linux":  # forking after torch's import is only known safe on Linux
            return
        context = mp.get_context("fork")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, self.pipe), daemon=True)
        with stopping.held():
            self.process.start()
        child.close()

    def lines(self, run_dir: Path) -> list[str]:
        lines = None
        if self.process is not None:
            try:
                self.pipe.send(str(run_dir))
                lines = self.pipe.recv()
            except (EOFError, OSError):  # the child died
                pass
            finally:
                self.close()
        if lines is None:
            from bnbench.analysis.show import summary

            lines = summary(run_dir)["verdicts"]
        return lines

    def close(self) -> None:
        """Once the lines are in, or when the run ends without them (a Ctrl-C in its first seconds, while the child
        still imports, then ends at once); again does nothing."""
        if self.process is None:
            return
        self.pipe.close()
        self.process.kill()
        self.process.join()


def _serve(pipe, parent_end) -> None:
    parent_end.close()  # else this process holds its own pipe open, and never sees the run's end
    stopping.detach()
    try:  # Linux: named in ps and top (and told apart from --jobs workers)
        ctypes.CDLL(None).prctl(15, b"bnbench-verdict")  # PR_SET_NAME
    except (OSError, AttributeError):
        pass
    from bnbench.analysis.show import summary  # the imports, while the run trains

    try:
        run_dir = pipe.recv()
    except EOFError:  # the run ended without asking (an error, Ctrl-C)
        return
    try:
        lines = summary(Path(run_dir))["verdicts"]
    except Exception:  # worked out again in the parent, where a bug shows its traceback
        lines = None
    try:
        pipe.send(lines)
    except BrokenPipeError:  # the run is gone (killed while this worked): nobody to tell, nothing to print
        pass
