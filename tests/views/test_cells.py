"""bnbench.views.cells: a number in a text cell."""

import math

import numpy as np
import pandas as pd
import pytest

from bnbench.views.cells import number


@pytest.mark.parametrize(
    "x, digits, sign, text",
    [
        (91.6667, 2, False, "91.67"),
        (0.51234, 4, False, "0.5123"),
        (1.2, 4, False, "1.2000"),
        (6.17, 2, True, "+6.17"),
        (-0.5, 2, True, "-0.50"),
        (0.0, 1, True, "+0.0"),
        (np.float64(1.25), 1, False, "1.2"),
        (math.nan, 2, False, "-"),
        (None, 4, False, "-"),
        (pd.NA, 2, True, "-"),
    ],
)
def test_number(x, digits, sign, text):
    assert number(x, digits, sign) == text
