"""The homework answer keys (the numbers in the hidden tests) are the ones lectures/homework/keys/make_homework_keys.py
computes from the committed data: regenerating the data and rerunning the script regenerates them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import _shared as shared

ROOT = Path(__file__).resolve().parents[2]


KEYS = shared.keys_script("make_homework_keys.py")


def _hidden_blocks(path: Path) -> dict:
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        found = re.findall(re.escape(KEYS.BEGIN) + r"(.*?)" + re.escape(KEYS.END), text, flags=re.S)
        if found:
            out[cell["metadata"]["nbgrader"]["grade_id"]] = found[0]
    return out


@pytest.mark.parametrize("name", list(KEYS.NOTEBOOKS))
def test_hidden_tests_hold_the_keys_computed_from_the_data(name):
    committed = _hidden_blocks(KEYS.NOTEBOOKS[name])
    expected = KEYS.rendered(name)
    # every hidden block of the notebook is written by the script, and holds what it computes now
    assert set(committed) == set(expected), name
    for grade_id, block in expected.items():
        assert KEYS.same_block(committed[grade_id], block), f"{name} {grade_id}: run python lectures/homework/keys/make_homework_keys.py"


@pytest.mark.parametrize("script", ["make_homework_keys_hw4.py", "make_homework_keys_hw5.py"])
def test_one_homework_script_holds_its_keys(script):
    """hw4's and hw5's scripts each write one notebook's hidden blocks: the committed ones are what they compute."""
    keys = shared.keys_script(script)
    committed = keys.hidden_blocks(json.loads(keys.NOTEBOOK.read_text(encoding="utf-8")))
    expected = keys.rendered()
    assert set(committed) == set(expected)  # every hidden block is written by the script
    for grade_id, block in expected.items():
        assert keys.same_block(committed[grade_id], block), f"{grade_id}: run python lectures/homework/keys/{script}"


def test_reml_key_is_the_error_contrast_likelihood_minus_half_log_det_xtx():
    # the REML key follows the notes' definition w = K'y; check it against a hand computation on a tiny case
    import numpy as np

    y_list = [np.array([1.0, 2.0]), np.array([4.0, 3.0, 5.0])]
    X_list = [np.ones((2, 1)), np.ones((3, 1))]
    # Sigma_* = bdiag(J_2 + 2 I, J_3 + 2 I); K'y for the all-ones X: any orthonormal contrasts of the 5 values
    S = np.zeros((5, 5))
    S[:2, :2] = np.ones((2, 2)) + 2 * np.eye(2)
    S[2:, 2:] = np.ones((3, 3)) + 2 * np.eye(3)
    y = np.concatenate(y_list)
    Si = np.linalg.inv(S)
    one = np.ones(5)
    b = (one @ Si @ y) / (one @ Si @ one)
    r = y - b
    # the notes' REML formula with n_T - p - 1 = 4
    by_formula = (-4 / 2 * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(S)[1] - 0.5 * np.log(one @ Si @ one)
                  - 0.5 * r @ Si @ r)  # fmt: skip
    assert KEYS.reml_contrasts(1.0, 2.0, y_list, X_list) == pytest.approx(by_formula, rel=shared.ROUNDING_RTOL)


def test_keys_compare_at_the_tolerance_their_hidden_test_grades_with():
    """A key that moves only below what its grading call can see is not out of date; a real change is caught."""
    block = 'check_close("slope", slope, 4.406417189, rtol=1e-3)\n'
    assert KEYS.same_block(block, block.replace("4.406417189", "4.406417188"))
    assert KEYS.same_block(block, block.replace("4.406417189", "4.406427189"))  # 2e-6: 1/2 % of what 1e-3 sees
    assert not KEYS.same_block(block, block.replace("4.406417189", "4.406517189"))  # 2e-5 > 1% of 1e-3
    assert not KEYS.same_block(block, block.replace("rtol=1e-3", "rtol=1e-2"))
    assert not KEYS.same_block(block, block.replace("slope", "intercept"))
    tight = 'check_close("F", F, 12.34567891, rtol=1e-9)\n'  # a closed form graded at 1e-9: no drift allowed
    assert not KEYS.same_block(tight, tight.replace("12.34567891", "12.34567901"))


def test_a_zero_key_is_compared_absolutely():
    # hw1's centred covariance has an eigenvalue that is zero up to rounding; it is graded with atol=1e-6
    block = 'check_close("lambdas", np.sort(lambdas), [-1.492035662e-13, 2.5, 7.25], rtol=1e-6, atol=1e-6)\n'
    assert KEYS.same_block(block, block.replace("-1.492035662e-13", "-2.62924231e-13"))
    assert KEYS.same_block(block, block.replace("-1.492035662e-13", "3.1e-14"))  # the sign of a zero
    assert not KEYS.same_block(block, block.replace("-1.492035662e-13", "1e-7"))  # 1e-7 > 1% of atol
    exact_zero = 'check_close("z", z, 0.0, rtol=1e-6)\n'  # graded with atol=0: zero stays zero
    assert not KEYS.same_block(exact_zero, exact_zero.replace("0.0", "1e-300"))


def test_a_monte_carlo_key_is_compared_at_its_own_tolerance():
    # hw3's simulation keys move in the 8th digit between BLAS kernels; the test grades them at rtol=1e-2, atol=2e-3
    block = ('if np.allclose(fit_ri(y_list, X_list, reml=False), [18.16886613, 31.5], rtol=1e-3):\n'
             '    check_close("bias_ml", bias_ml, [-0.5301662097, 0.25], rtol=1e-2, atol=2e-3)\n')
    moved = block.replace("18.16886613", "18.16886657").replace("-0.5301662097", "-0.5301660919")
    assert KEYS.same_block(block, moved)
    assert not KEYS.same_block(block, block.replace("-0.5301662097", "-0.5401662097"))
    # numbers outside an expected value (tolerances, seeds, shapes) must agree; integers exactly
    assert not KEYS.same_block(block, block.replace("rtol=1e-3", "rtol=2e-3"))
    seeded = "_y0, _X0 = simulate_dataset(np.random.default_rng(20240611))\n"
    assert not KEYS.same_block(seeded, seeded.replace("20240611", "20240612"))
