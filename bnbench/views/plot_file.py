"""The file `--plot` writes, checked before anything is compared (a comparison can take a while): matplotlib is
installed (it is the optional `plot` extra) and the path is one a figure can be saved to.

A module apart from `plots` and `probe_plots`, which import matplotlib, so that a missing extra is one line saying
how to install it rather than a traceback.
"""

from pathlib import Path

from bnbench.errors import BnbenchError

FORMATS = ["png", "pdf", "svg"]
EXTRA = "pip install 'bnbench[plot]'"


def check_path(path: Path) -> Path:
    """The file --plot writes: `path`, or FILE.png for a name without an extension. Refuses, before anything is
    compared, a plot without matplotlib, and a path that cannot be written: a folder, something that is not a
    regular file (a device such as /dev/null, a named pipe: never FILE.png beside it), an extension that is not one
    of FORMATS (matplotlib takes the format from it), a folder that does not exist."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BnbenchError(f"--plot {path}: drawing needs matplotlib, an optional extra: {EXTRA}") from None
    formats = ", ".join(f".{f}" for f in FORMATS[:-1]) + f" or .{FORMATS[-1]}"
    if path.is_dir():
        raise BnbenchError(f"--plot {path}: is a folder; name a file in it, e.g. {path / 'compare.png'}")
    _refuse_special(path)
    if not path.suffix:
        path = path.with_name(f"{path.name}.{FORMATS[0]}")
        _refuse_special(path)
    if path.suffix.lower()[1:] not in FORMATS:
        raise BnbenchError(f"--plot {path}: unknown format '{path.suffix}'; use {formats}")
    if not path.parent.is_dir():
        raise BnbenchError(f"--plot {path}: folder {path.parent} does not exist; create it or choose another")
    return path


def _refuse_special(path: Path) -> None:
    if path.exists() and not path.is_file():
        raise BnbenchError(f"--plot {path}: not a regular file (a device or named pipe); name a file, e.g. compare.png")
