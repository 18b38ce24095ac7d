"""lmmteach.grading: the homework checks pass on right answers and explain wrong ones."""

import re

import numpy as np
import pandas as pd
import pytest

from lmmteach import grading as g


def fails(match):
    return pytest.raises(AssertionError, match=match)


def test_check_close_scalar():
    g.check_close("F", 2.5105561, 2.510556, rtol=1e-6)
    g.check_close("F", np.float64(2.0), 2)
    g.check_close("F", np.array([2.0]), 2.0)  # a length-1 array is a number
    g.check_close("p", np.nan, np.nan)
    with fails(re.escape("F: expected 2.510556 (within rtol=1e-06), got 2.48")):
        g.check_close("F", 2.48, 2.510556, rtol=1e-6)
    with fails(re.escape("within rtol=0.01, atol=0.5")):
        g.check_close("x", 10.0, 1.0, rtol=0.01, atol=0.5)
    with fails("x: expected 1 \\(exactly\\), got 1.1"):
        g.check_close("x", 1.1, 1, rtol=0)


def test_check_close_array():
    g.check_close("alphas", [1.0, 2.0, 3.0], np.array([1.0, 2.0, 3.0 + 1e-9]))
    g.check_close("alphas", pd.Series([1.0, 2.0]), [1.0, 2.0])
    g.check_close("column", np.array([[1.0], [2.0]]), [1.0, 2.0])  # same values, column shape
    with fails(re.escape("alphas: 1 of 3 entries differ (within rtol=1e-06): [2] expected 3, got 4")):
        g.check_close("alphas", [1.0, 2.0, 4.0], [1.0, 2.0, 3.0])
    with fails(re.escape("(and 2 more)")):
        g.check_close("v", np.zeros(5), np.ones(5))
    with fails(re.escape("rhos: expected an array of shape (12,), got shape (4,)")):
        g.check_close("rhos", np.zeros(4), np.zeros(12))
    with fails("expected a single number, got 4 values"):
        g.check_close("mu", np.zeros(4), 0.0)


def test_check_close_wrong_kind():
    with fails("mu: no value yet"):
        g.check_close("mu", None, 1.0)
    with fails("mu: expected a number, got a str"):
        g.check_close("mu", "1.0", 1.0)
    with fails("expected a number, got a dict"):
        g.check_close("mu", {"a": 1}, 1.0)


def test_check_type_and_shape():
    g.check_type("F", np.float64(1.0), float)
    g.check_type("F", 3, float)
    g.check_type("n", np.int64(3), int)
    g.check_type("t", pd.DataFrame(), pd.DataFrame)
    g.check_type("x", 1.0, (np.ndarray, float))
    with fails("F: expected a float, got a str"):
        g.check_type("F", "2.5", float)
    with fails("flag: expected a float, got a bool"):
        g.check_type("flag", True, float)
    with fails("t: expected a DataFrame, got a dict"):
        g.check_type("t", {}, pd.DataFrame)
    g.check_shape("S", np.zeros((4, 4)), (4, 4))
    g.check_shape("v", [1, 2, 3], (None,))
    with fails(re.escape("S: expected shape (4, 4), got shape (3, 4)")):
        g.check_shape("S", np.zeros((3, 4)), (4, 4))
    with fails(re.escape("v: expected shape (any,), got shape (2, 2)")):
        g.check_shape("v", np.zeros((2, 2)), (None,))


def test_check_equal_between_true():
    g.check_equal("df", np.int64(3), 3)
    g.check_equal("levels", pd.Index(["a", "b"]), ["a", "b"])
    g.check_equal("order", np.array([1, 2]), (1, 2))
    with fails("df: expected 33, got 32"):
        g.check_equal("df", 32, 33)
    with fails("levels: expected"):
        g.check_equal("levels", ["a"], ["a", "b"])
    g.check_between("eps", 0.6, 1 / 3, 1.0)
    with fails("eps: expected a value between 0.3333333 and 1, got 1.2"):
        g.check_between("eps", 1.2, 1 / 3, 1.0)
    with fails("eps: expected a float, got a str"):
        g.check_between("eps", "0.5", 0, 1)
    g.check_true("ok", 1 < 2, "never shown")
    with fails("order: the REML estimate should be larger"):
        g.check_true("order", False, "the REML estimate should be larger")


def test_check_table():
    expected = pd.DataFrame({"SS": [10.0, 5.0, 2.0], "df": [1, 2, 3], "F": [5.0, np.nan, np.nan]},
                            index=["A", "Error", "Total"])
    got = expected.copy()
    got["extra"] = 1
    g.check_table("table", got, expected)
    g.check_table("table", got.reset_index(drop=True), expected, check_index=False)
    g.check_table("table", got, {"SS": [10.0, 5.0, 2.0]}, check_index=False)
    bad = got.copy()
    bad.loc["A", "SS"] = 11.0
    with fails(re.escape("table: 1 cell(s) differ (within rtol=1e-06): [A, SS] expected 10, got 11")):
        g.check_table("table", bad, expected)
    g.check_table("table", bad, expected, columns=["df", "F"])
    with fails(re.escape("missing column(s) ['F']")):
        g.check_table("table", got.drop(columns="F"), expected)
    with fails("expected 3 rows, got 2"):
        g.check_table("table", got.iloc[:2], expected)
    with fails("expected rows"):
        g.check_table("table", got.rename(index={"A": "B"}), expected)
    with fails("expected a pandas DataFrame, got a ndarray"):
        g.check_table("table", np.zeros((3, 3)), expected)
    words = expected.assign(name=["x", "y", "z"])
    with fails(re.escape("[Total, name] expected 'z', got 'w'")):
        g.check_table("table", words.assign(name=["x", "y", "w"]), words)


# -- lecture self-checks ---------------------------------------------------------------------------------

def test_answer_key_is_a_hash_of_the_rounded_answer_and_hides_it():
    import hashlib
    key = g.answer_key(0.934851)
    assert key == hashlib.sha256("9.349e-01|()".encode()).hexdigest()[:12]  # 4 significant digits
    assert "9349" not in key and g.answer_key(0.9351) != g.answer_key(0.9348)


@pytest.mark.parametrize("got, verdict, words", [
    (0.9348499, True, "right"),              # agrees to 4 significant digits
    (0.9352, False, "not right yet"),
    ("0.93", None, "expected a number"),
])
def test_self_check_says_right_or_not_without_the_answer(capsys, got, verdict, words):
    key = g.answer_key(0.93485)
    assert g.self_check("lam", {"lam": got}, key) is verdict
    out = capsys.readouterr().out
    assert words in out and "0.934" not in out and "9.34" not in out


def test_self_check_on_a_rounding_boundary():
    key = g.answer_key(0.125, digits=2)                    # an exact tie: 0.125 rounds to 1.2e-01
    assert g.self_check("x", {"x": 0.125 * (1 + 1e-12)}, key, digits=2) is True  # 1.3e-01 unless nudged


def test_self_check_before_an_attempt_and_for_arrays(capsys):
    A = np.array([[1.0, -2.5], [0.0, 1 / 3]])
    key = g.answer_key(A)
    assert g.self_check("A", {}, key) is None
    assert "not attempted yet" in capsys.readouterr().out
    assert g.self_check("A", {"A": A + 1e-13}, key) is True        # noise around 0 is 0
    assert g.self_check("A", {"A": A.ravel()}, key) is False      # the shape is part of the answer
    assert "shape (4,)" in capsys.readouterr().out.splitlines()[-1]


def test_self_check_between(capsys):
    assert g.self_check_between("m", {"m": 3.7}, 3.4, 4.0) is True
    assert g.self_check_between("m", {"m": 4.2}, 3.4, 4.0) is False
    assert g.self_check_between("m", {}, 3.4, 4.0) is None
    out = capsys.readouterr().out
    assert "3.4" not in out and "4.0" not in out
