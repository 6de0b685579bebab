"""The shared option checks (pyama_steps._validate)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyama_steps._validate import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_real,
)


@pytest.mark.parametrize("value", [0, 3, np.int64(5)])
def test_check_int_accepts_integers_in_range(value):
    assert check_int("n", value, minimum=0, maximum=5) == int(value)
    assert type(check_int("n", value, minimum=0)) is int


@pytest.mark.parametrize("value", [True, np.bool_(False), 1.0, "1", None])
def test_check_int_rejects_non_integers(value):
    with pytest.raises(TypeError, match="n must be an integer; got"):
        check_int("n", value, minimum=0)


def test_check_int_names_the_range():
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 3\]; got 4"):
        check_int("n", 4, minimum=1, maximum=3)
    with pytest.raises(ValueError, match="n must be an integer >= 1; got 0"):
        check_int("n", 0, minimum=1)


def test_check_real_bounds_open_and_closed():
    assert check_real("x", 0, minimum=0.0) == 0.0
    assert check_real("x", np.float32(0.5), minimum=0.0, maximum=1.0) == 0.5
    with pytest.raises(ValueError, match=r"x must be a finite number > 0\.0; got 0"):
        check_real("x", 0, minimum=0.0, open_min=True)
    with pytest.raises(ValueError, match=r"in \[0.0, 1.0\); got 1.0"):
        check_real("x", 1.0, minimum=0.0, maximum=1.0, open_max=True)
    with pytest.raises(ValueError, match=r"x must be a finite number <= 2\.0"):
        check_real("x", 3.0, maximum=2.0)
    with pytest.raises(ValueError, match="finite"):
        check_real("x", math.nan)
    with pytest.raises(ValueError, match="finite"):
        check_real("x", math.inf)
    with pytest.raises(TypeError, match="x must be a real number"):
        check_real("x", True)


def test_check_fraction():
    assert check_fraction("f", 0) == 0.0
    assert check_fraction("f", 1) == 1.0
    with pytest.raises(ValueError, match=r"f must be a finite number in \(0.0, 1.0\]"):
        check_fraction("f", 0.0, allow_zero=False)
    with pytest.raises(ValueError, match=r"in \[0.0, 1.0\]; got 1.5"):
        check_fraction("f", 1.5)


def test_check_bool_and_choice():
    assert check_bool("b", np.bool_(True)) is True
    with pytest.raises(TypeError, match="b must be True or False; got 1"):
        check_bool("b", 1)
    assert check_choice("m", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"m must be one of \('a', 'b'\); got 'c'"):
        check_choice("m", "c", ("a", "b"))
    with pytest.raises(ValueError, match="got 3"):
        check_choice("m", 3, ("a", "b"))
