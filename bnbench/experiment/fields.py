"""The field types every part of the experiment config's schema shares: names that become file names, numbers
that refuse booleans, the strict base model (unknown keys refused), and `brief` for values quoted in messages.
"""

import re
import reprlib
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PositiveInt, model_serializer

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
MAX_NAME_CHARS = 100  # names become folder and file names (255 bytes at most on common file systems)


def _file_name(name: str) -> str:
    """Experiment and variant names become folder and file names: plain ASCII, short."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(
            "String should match the name rule: only ASCII letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"is {len(name)} characters long; use at most {MAX_NAME_CHARS} (it names files)")
    return name


def _not_bool(value: Any) -> Any:
    """YAML reads `true` and `false` as booleans, and pydantic takes a boolean for 1 or 0 where a number is due
    (`epochs: true` trained one epoch): a number field refuses them. Strict fields would also refuse '1e-3', which
    YAML reads as a string."""
    if isinstance(value, bool):
        raise ValueError(f"Input should be a number, not {str(value).lower()}")
    return value


Name = Annotated[str, AfterValidator(_file_name)]
Number = BeforeValidator(_not_bool)
FiniteFloat = Annotated[float, Field(allow_inf_nan=False), Number]
Count = Annotated[PositiveInt, Number]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    # Fields added after run folders were first written: a dump leaves each out while it holds its default, so a
    # config that does not use it keeps its config.yaml, meta.json and pooling keys byte for byte.
    LATER: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _without_later_defaults(self, handler):
        data = handler(self)
        for name in self.LATER:
            if name in data and getattr(self, name) == type(self).model_fields[name].get_default():
                del data[name]
        return data


_BRIEF = reprlib.Repr()
_BRIEF.maxstring, _BRIEF.maxother, _BRIEF.maxlist, _BRIEF.maxdict, _BRIEF.maxlevel = 60, 60, 8, 8, 3


def brief(value: Any) -> str:
    """repr(value), cut to fit one line of a message (a sweep may list thousands of values)."""
    return _BRIEF.repr(value)
