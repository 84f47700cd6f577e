"""A run's tags and note: words the user gives a run when it starts (`run --tag --note`), so that runs can be
found and told apart later. meta.json keeps them; `list` and `show` show them, `list --tag` selects by them."""

import re
from typing import Optional

from bnbench.errors import BnbenchError
from bnbench.rundir.meta import Meta

MAX_TAG_CHARS = 100
MAX_NOTE_CHARS = 1000
TAG = re.compile(r"[^\s,]+")  # a word: the runs table lists tags comma-separated


def labels(tags: tuple[str, ...], note: Optional[str]) -> dict:
    """meta.json's `tags` (each once, in the order given) and `note` of a new run, checked: one clear line for a
    tag with a space or comma (it would read as two tags), an empty one, a note of more than one line, or a
    control character in either (an escape sequence would act on the terminal that `show` and `list` print to)."""
    for tag in tags:
        if not TAG.fullmatch(tag) or len(tag) > MAX_TAG_CHARS or not tag.isprintable():
            raise BnbenchError(
                f"--tag {tag!r}: a tag is one word of at most {MAX_TAG_CHARS} printable characters, "
                f"without spaces or commas; give several with --tag A --tag B"
            )
    if note is not None and (not note.strip() or len(note) > MAX_NOTE_CHARS or not note.isprintable()):
        raise BnbenchError(
            f"--note: a note is one line of text of at most {MAX_NOTE_CHARS} characters, without tabs or control "
            f"characters; keep longer notes beside the run"
        )
    return {"tags": list(dict.fromkeys(tags)), "note": note.strip() if note is not None else None}


def refuse_on_resume(tags: tuple[str, ...], note: Optional[str], run: str) -> None:
    """A run's tags and note are given when it starts: resuming or growing it keeps its own."""
    if tags or note is not None:
        option = "--tag" if tags else "--note"
        raise BnbenchError(
            f"{option}: tags and a note are given to a run when it starts; {run} keeps its own "
            f"(see bnbench show); drop {option} to continue it"
        )


def tags_of(meta: Meta) -> list[str]:
    """The run's tags, printable; none where meta.json has none (a run from before tags) or a damaged list."""
    return [printable(tag) for tag in meta.fields.tags]


def note_of(meta: Meta) -> str:
    """The run's note, printable."""
    return printable(meta.fields.note or "")


def has_tags(meta: Meta, wanted: tuple[str, ...]) -> bool:
    """`list --tag A --tag B`: the runs tagged with all of them."""
    return set(wanted) <= set(meta.fields.tags)


def printable(text: str) -> str:
    """`text` with each character a terminal would act on (ESC, BEL, backspace, DEL, a newline, any C0 or C1
    control, a bidi override) written as Python writes it in a string ('\\x1b'): a run made before they were
    refused, or a hand-edited meta.json, cannot reach the terminal through `show` or `list`."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
