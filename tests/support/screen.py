"""What a terminal shows: a small terminal emulator (`Screen`) that replays what a command wrote to a
pseudo-terminal of ROWS x COLUMNS, and the ANSI escape sequences to strip from it."""

import re

from rich.cells import cell_len

ROWS, COLUMNS = 24, 80
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


class Screen:
    """Just enough of a terminal for what rich writes: printable characters (with the pending wrap at the last
    column), CR, LF, BS and the CSI sequences for the cursor (A, B, C, D, G) and erasing (K, J); colours and
    modes are ignored. `lines` holds the scrollback and the screen: what a user can scroll back to."""

    def __init__(self, rows: int = ROWS, columns: int = COLUMNS):
        self.rows, self.columns = rows, columns
        self.lines: list[list[str]] = [[]]
        self.row = self.col = 0
        self.pending = False  # the cursor sits past the last column: the next character wraps
        self.wraps = 0  # lines the terminal wrapped (a program's line wider than the terminal)

    @property
    def top(self) -> int:
        """The first line of the screen; the cursor cannot go up past it."""
        return max(0, len(self.lines) - self.rows)

    def feed(self, text: str) -> None:
        for match in re.finditer(r"\x1b\[([0-9;?]*)([ -/]*[@-~])|\x1b[()][0-9A-Za-z]|\x1b.|[\s\S]", text):
            token = match.group(0)
            if match.group(2) is not None:
                self._csi(match.group(1), match.group(2))
            elif token.startswith("\x1b"):
                continue
            elif token == "\r":
                self.col, self.pending = 0, False
            elif token == "\n":
                self._down()
            elif token == "\b":
                self.col, self.pending = max(0, self.col - 1), False
            elif token >= " ":
                self._put(token)

    def _down(self) -> None:
        self.row += 1
        self.pending = False
        if self.row == len(self.lines):
            self.lines.append([])

    def _put(self, char: str) -> None:
        width = cell_len(char)
        if width == 0:
            return
        if self.pending:
            self.wraps += 1
            self.col = 0
            self._down()
        line = self.lines[self.row]
        line.extend(" " * (self.col + width - len(line)))
        line[self.col] = char
        for i in range(1, width):
            line[self.col + i] = ""
        self.col += width
        if self.col >= self.columns:
            self.col, self.pending = self.columns - 1, True

    def _csi(self, params: str, final: str) -> None:
        if params.startswith("?"):
            return  # ?25l / ?25h: the cursor hidden, shown
        numbers = [int(n) if n else 0 for n in params.split(";")] if params else []
        n = numbers[0] if numbers else 0
        line = self.lines[self.row]
        if final in "ABCDG":
            self.pending = False
        if final == "A":
            self.row = max(self.top, self.row - max(n, 1))
        elif final == "B":
            for _ in range(max(n, 1)):
                self._down()
        elif final == "C":
            self.col = min(self.columns - 1, self.col + max(n, 1))
        elif final == "D":
            self.col = max(0, self.col - max(n, 1))
        elif final == "G":
            self.col = min(self.columns - 1, max(n, 1) - 1)
        elif final == "K":
            if n == 0:
                del line[self.col :]
            elif n == 1:
                line[: self.col + 1] = " " * min(len(line), self.col + 1)
            else:
                line.clear()
        elif final == "J":
            if n == 0:
                del line[self.col :]
                del self.lines[self.row + 1 :]
            elif n in (2, 3):
                for i in range(self.top, len(self.lines)):
                    self.lines[i] = []

    def text(self) -> list[str]:
        return ["".join(line).rstrip() for line in self.lines]
