"""The `bnbench` command called as a user calls it (typer's CliRunner), for the tests: its exit code and output."""

from typer.testing import CliRunner

from bnbench.cli import app


def invoke(*args):
    """`bnbench ARGS...` (paths and numbers as text); the click Result."""
    return CliRunner().invoke(app, [str(a) for a in args])


def ok(*args) -> str:
    """The output of a call that must succeed."""
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args) -> str:
    """The one line of a call the user's input must make fail (exit status 2)."""
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    return line
