"""How a number reads in a text cell (`compare`'s tables, `show`'s trials, the glance): rounded to a fixed number
of digits, "-" where there is none (NaN, or None in `show`'s plain data), so that the columns line up."""

import pandas as pd


def number(x: float, digits: int, sign: bool = False) -> str:
    """`x` with `digits` decimals ('+' before a positive one with `sign`), or "-" where it is missing."""
    return "-" if pd.isna(x) else f"{x:{'+' if sign else ''}.{digits}f}"
