"""Formula parsing and design matrices named as R names them."""

import numpy as np
import pandas as pd
import pytest

import lmmteach as lt
from lmmteach.lmm.formula import FormulaError, parse_formula


@pytest.fixture(scope="module")
def df():
    rng = np.random.default_rng(3)
    n = 60
    return pd.DataFrame({
        "y": rng.normal(size=n),
        "x": rng.normal(size=n),
        "z": rng.normal(size=n),
        "f": pd.Categorical(rng.choice(["b", "a", "c"], size=n), categories=["a", "b", "c"]),
        "s": rng.choice(["Male", "Female"], size=n),
        "k": rng.integers(1, 4, size=n),
        "g": np.repeat([f"g{i}" for i in range(12)], 5),
    })


@pytest.mark.parametrize("rhs,names", [
    ("x", ["(Intercept)", "x"]),
    ("1 + x + f", ["(Intercept)", "x", "fb", "fc"]),
    ("x * f", ["(Intercept)", "x", "fb", "fc", "x:fb", "x:fc"]),
    ("x + f + x:f", ["(Intercept)", "x", "fb", "fc", "x:fb", "x:fc"]),
    ("f:x", ["(Intercept)", "fa:x", "fb:x", "fc:x"]),
    ("0 + f", ["fa", "fb", "fc"]),
    ("f - 1", ["fa", "fb", "fc"]),
    ("x + s", ["(Intercept)", "x", "sMale"]),       # strings: sorted levels, first is the baseline
    ("x + x:s", ["(Intercept)", "x", "x:sMale"]),       # x is in the model: s coded by contrasts
    ("x * z", ["(Intercept)", "x", "z", "x:z"]),
    ("C(k)", ["(Intercept)", "k2", "k3"]),           # a numeric column treated as a factor
    ("factor(k) + x", ["(Intercept)", "k2", "k3", "x"]),
])
def test_fixed_effect_names_follow_r(df, rhs, names):
    design = lt.lformula(f"y ~ {rhs} + (1 | g)", df)
    assert list(design.fixef_names) == names
    assert design.X.shape == (len(df), len(names))


def test_treatment_coding_values(df):
    d = lt.lformula("y ~ f + (1 | g)", df)
    X = pd.DataFrame(d.X, columns=d.fixef_names)
    np.testing.assert_array_equal(X["fb"], (df.f == "b").astype(float))
    np.testing.assert_array_equal(X["fc"], (df.f == "c").astype(float))


def test_sum_coding_values(df):
    d = lt.lformula("y ~ f + (1 | g)", df, contrasts={"f": "sum"})
    assert list(d.fixef_names) == ["(Intercept)", "f1", "f2"]
    X = pd.DataFrame(d.X, columns=d.fixef_names)
    expected = np.select([df.f == "a", df.f == "b", df.f == "c"], [1.0, 0.0, -1.0])
    np.testing.assert_array_equal(X["f1"], expected)


@pytest.mark.parametrize("term,blocks", [
    ("(1 | g)", [["(Intercept)"]]),
    ("(x | g)", [["(Intercept)", "x"]]),
    ("(0 + x | g)", [["x"]]),
    ("(x + z || g)", [["(Intercept)"], ["x"], ["z"]]),
    ("(1 | g) + (0 + x + z | g)", [["(Intercept)"], ["x", "z"]]),
    ("(0 + f | g)", [["fa", "fb", "fc"]]),
    ("(f | g)", [["(Intercept)", "fb", "fc"]]),
])
def test_random_terms_expand_like_lme4(df, term, blocks):
    d = lt.lformula(f"y ~ x + {term}", df)
    assert [list(b.names) for b in d.blocks] == blocks
    assert d.block_names == ["g"] + [f"g.{k}" for k in range(1, len(blocks))]


@pytest.mark.parametrize("term,structure", [
    ("us(x | g)", "us"), ("diag(x + z | g)", "diag"), ("cs(0 + f | g)", "cs"),
    ("ar1(0 + f | g)", "ar1"), ("toep(0 + f | g)", "toep"),
])
def test_structure_wrappers(term, structure):
    f = parse_formula(f"y ~ x + {term}")
    assert f.random[0].structure == structure


def test_variables_in_order_of_appearance():
    f = parse_formula("y ~ x * f + (z | g)")
    assert f.variables() == ["y", "x", "f", "z", "g"]


def test_redundant_parentheses_from_r_deparse():
    f = parse_formula("y ~ x + ((1 | g) + (0 + x | g))")
    assert [r.text for r in f.random] == ["(1 | g)", "(0 + x | g)"]


@pytest.mark.parametrize("text,match", [
    ("y ~ x + (1 | g) ~ z", "exactly one '~'"),
    ("y ~ (x", "unbalanced"),
    ("y ~ x:", "':' needs a variable on both sides"),
    ("y ~ *x + (1 | g)", "'\\*' needs a term on both sides"),
    ("y ~ x + (1 || g) + cs(x || g)", "cannot be combined"),
    ("y ~ x + 2x + (1 | g)", "cannot read '2x'"),
    ("C(y) ~ x + (1 | g)", "response cannot be a factor"),
    ("y ~ x + (1 | g) - (1 | g)", "cannot be subtracted"),
])
def test_malformed_formulas_say_where(text, match):
    with pytest.raises(FormulaError, match=match):
        parse_formula(text)


def test_one_level_factor_is_refused(df):
    with pytest.raises(ValueError, match="factor 's' has only one level"):
        lt.lformula("y ~ x + s + (1 | g)", df.assign(s="Male"))


@pytest.mark.parametrize("rhs,names", [
    ("(x + z)^2", ["(Intercept)", "x", "z", "x:z"]),
    ("x:z + z + x", ["(Intercept)", "z", "x", "x:z"]),        # R's order: by degree, then as written
    ("0 + f:s", ["fa:sFemale", "fb:sFemale", "fc:sFemale", "fa:sMale", "fb:sMale", "fc:sMale"]),  # f fastest
    ("log(k) + I(x**2)", ["(Intercept)", "log(k)", "I(x ** 2)"]),
    ("poly(x, 2) + scale(z)", ["(Intercept)", "poly(x, 2)1", "poly(x, 2)2", "scale(z)"]),
])
def test_fixed_part_read_by_formulaic_names_columns_as_r(df, rhs, names):
    assert list(lt.lformula(f"y ~ {rhs} + (1 | g)", df).fixef_names) == names


@pytest.mark.parametrize("text,match", [
    ("foo(y) ~ x + (1 | g)", "unknown function 'foo'"),
    ("y ~ C(k, sum) + (1 | g)", r"C\(\)/factor\(\) take one column name"),
    ("y ~ x + (x + | g)", "no terms|empty|ends with"),
])
def test_more_malformed_formulas(text, match):
    with pytest.raises(FormulaError, match=match):
        parse_formula(text)


def test_variables_of_expressions_are_their_columns():
    f = parse_formula("log(y) ~ poly(x, 2) * f + offset(np.log(z)) + (1 | g)")
    assert f.variables() == ["y", "x", "f", "z", "g"]
    assert f.offsets == ("offset(np.log(z))",)
