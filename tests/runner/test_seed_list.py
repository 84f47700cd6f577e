"""`--seeds` text to seeds (bnbench.runner.seeds): integers and inclusive ranges, refused in one line otherwise."""

import pytest

from bnbench.errors import BnbenchError
from bnbench.experiment.config import MAX_TRIALS
from bnbench.runner.seeds import seed_list


def test_integers_and_ranges_in_the_given_order():
    assert seed_list("1,2,5-8") == [1, 2, 5, 6, 7, 8]
    assert seed_list(" 3 , 0-1") == [3, 0, 1]
    assert seed_list("7-7") == [7]
    assert seed_list(None) is None


@pytest.mark.parametrize(
    "text, said",
    [
        ("1,x", "--seeds 1,x: 'x' is not a seed or a range; use integers below 2**63"),
        ("٣", "'٣' is not a seed or a range"),
        ("1_0", "'1_0' is not a seed or a range"),
        ("-1", "'-1' is not a seed or a range"),
        ("1" * 20, "is not a seed or a range"),
        ("5-1", "--seeds 5-1: the range '5-1' runs backwards; write it low-high"),
    ],
)
def test_anything_else_is_one_line(text, said):
    with pytest.raises(BnbenchError, match=None) as raised:
        seed_list(text)
    assert said in str(raised.value)


def test_more_seeds_than_a_run_holds_are_refused_before_they_are_listed():
    with pytest.raises(BnbenchError) as raised:
        seed_list(f"0-{10**18}")
    assert f"more than the {MAX_TRIALS:,} trials one run may hold" in str(raised.value)
    assert len(seed_list(f"0-{MAX_TRIALS - 1}")) == MAX_TRIALS
