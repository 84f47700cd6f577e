"""The one line and exit status of each error a user can cause (bnbench.views.error_lines)."""

import errno
import json

from bnbench.errors import BnbenchError, Interrupted
from bnbench.views.error_lines import error_line


def test_a_users_error_is_one_line_and_status_2():
    assert error_line(BnbenchError("x.yaml: bad")) == ("error: x.yaml: bad", 2)
    assert error_line(Interrupted("stopped; resume with ...", 143)) == ("stopped; resume with ...", 143)


def test_a_full_disk_names_the_file_and_a_run_folders_file_says_how_to_resume(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({}))
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "checkpoints" / "t0.pt"))
    line, status = error_line(full)
    assert status == 2 and line.startswith(f"error: {tmp_path / 'checkpoints' / 't0.pt'}: cannot write (No space")
    assert line.endswith(f"then resume with: bnbench run --resume {tmp_path}")
    line, _ = error_line(OSError(errno.ENOSPC, "No space left on device"))
    assert line.startswith("error: standard output: cannot write") and line.endswith("then run the command again")


def test_a_bug_has_no_line():
    assert error_line(OSError(errno.ENOENT, "No such file")) is None
    assert error_line(ValueError("a bug")) is None
