"""The machine a run trains on, as meta.json records it: versions, host, device, threads, bnbench's commit."""

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Optional

import torch


def environment(device: torch.device) -> dict:
    def version(package):
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_name()
    return {
        "bnbench": version("bnbench"),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "device": str(device),
        "device_name": name,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit(checkout: Path = Path(__file__).parent) -> Optional[str]:
    """The commit of the bnbench checkout that ran this (with '+dirty' for uncommitted changes), if any. Read
    without git's optional locks: a plain `git status` refreshes the index under `.git/index.lock`, which would
    make the user's own `git commit` in that checkout fail while a run starts."""
    git = ["git", "--no-optional-locks", "-C", str(checkout)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
