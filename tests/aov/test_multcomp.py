"""Tests for lmmteach.multcomp against R's TukeyHSD and pairwise.t.test (reference JSON)."""


import numpy as np
import pandas as pd
import pytest
from scipy import stats

import lmmteach as lt
from lmmteach.aov.multcomp import p_adjust, pairwise_comparisons
import _shared as shared
STORES = ["storeA", "storeB", "storeC", "storeD"]


@pytest.fixture(scope="module")
def stores():
    wide = lt.load_groceries()
    # rename storeA.. -> A.. so pair labels look like R's ("B-A")
    return wide[["subject"] + STORES].rename(columns=lambda c: c.replace("store", ""))



def test_pooled_tukey_matches_tukeyhsd(stores, ref):
    tab = pairwise_comparisons(stores, method="tukey", pooled=True)
    tk = ref["grocery"]["tukey_store"]
    assert list(tab["pair"]) == tk["pairs"]
    np.testing.assert_allclose(tab["estimate"], tk["diff"], rtol=1e-6)
    np.testing.assert_allclose(tab["lower"], tk["lwr"], rtol=1e-6)
    np.testing.assert_allclose(tab["upper"], tk["upr"], rtol=1e-6)
    np.testing.assert_allclose(tab["p_adj"], tk["p_adj"], rtol=1e-6)
    assert (tab["df"] == 27).all()
    assert tab.attrs["statistic"] == "q"


def test_pooled_tukey_obrienkaiser(ref):
    block = ref["obrienkaiser_pre"]
    X = pd.DataFrame(block["data"])[block["columns"]]
    tab = pairwise_comparisons(X)
    tk = ref["obrienkaiser_pre"]["tukey_hour"]
    assert list(tab["pair"]) == tk["pairs"]
    np.testing.assert_allclose(tab["lower"], tk["lwr"], rtol=1e-6)
    np.testing.assert_allclose(tab["upper"], tk["upr"], rtol=1e-6)
    np.testing.assert_allclose(tab["p_adj"], tk["p_adj"], rtol=1e-6)


def test_paired_t_matches_pairwise_t_test(stores, ref):
    g = ref["grocery"]
    bonf = pairwise_comparisons(stores, method="bonferroni", pooled=False)
    holm = pairwise_comparisons(stores, method="holm", pooled=False)
    assert list(bonf["pair"]) == g["paired_t_bonferroni"]["pairs"]
    np.testing.assert_allclose(bonf["p_adj"], g["paired_t_bonferroni"]["p_adj"], rtol=1e-6)
    np.testing.assert_allclose(holm["p_adj"], g["paired_t_holm"]["p_adj"], rtol=1e-6)
    s = g["paired_t_stats"]
    np.testing.assert_allclose(bonf["estimate"], s["estimate"], rtol=1e-6)
    np.testing.assert_allclose(bonf["se"], s["se"], rtol=1e-6)
    np.testing.assert_allclose(bonf["statistic"], s["t"], rtol=1e-6)
    assert (bonf["df"] == 9).all()


def test_paired_t_obrienkaiser(ref):
    block = ref["obrienkaiser_pre"]
    X = pd.DataFrame(block["data"])[block["columns"]]
    tab = pairwise_comparisons(X, method="bonferroni", pooled=False)
    np.testing.assert_allclose(tab["p_adj"], block["paired_t_bonferroni"]["p_adj"], rtol=1e-6)


def test_pooled_se_is_the_notes_formula(stores):
    tab = pairwise_comparisons(stores, method="bonferroni")
    mse, n = 0.0449533333333333, 10
    np.testing.assert_allclose(tab["se"], np.sqrt(mse / n * 2), rtol=1e-9)
    t = tab["statistic"].to_numpy()
    np.testing.assert_allclose(tab["p_adj"], np.minimum(1, 6 * 2 * stats.t.sf(np.abs(t), 27)), rtol=shared.ROUNDING_RTOL)


def test_interval_widths_order_tukey_bonferroni_scheffe(stores):
    width = {m: (pairwise_comparisons(stores, method=m)["upper"]
                 - pairwise_comparisons(stores, method=m)["lower"]).iloc[0]
             for m in ["tukey", "bonferroni", "scheffe"]}
    assert width["tukey"] < width["bonferroni"] < width["scheffe"]
    sch = pairwise_comparisons(stores, method="scheffe")
    half = np.sqrt(3 * stats.f.ppf(0.95, 3, 27)) * sch["se"]
    np.testing.assert_allclose(sch["upper"] - sch["estimate"], half, rtol=shared.ROUNDING_RTOL)
    np.testing.assert_allclose(sch["p_adj"], stats.f.sf(sch["statistic"], 3, 27), rtol=shared.ROUNDING_RTOL)


def test_p_adjust_holm_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    np.testing.assert_allclose(p_adjust(p, "holm"), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(p_adjust(p, "bonferroni"), [0.04, 0.16, 0.12, 1.0])


def test_bad_options_and_data(stores):
    with pytest.raises(ValueError, match="'tukey' is not available for paired"):
        pairwise_comparisons(stores, method="tukey", pooled=False)
    with pytest.raises(ValueError, match="'lsd'"):
        pairwise_comparisons(stores, method="lsd")
    with pytest.raises(ValueError, match="conf_level"):
        pairwise_comparisons(stores, conf_level=95)
    bad = stores.copy()
    bad.loc[2, "C"] = np.nan
    with pytest.raises(ValueError, match=r"missing.*'milk'.*'C'"):
        pairwise_comparisons(bad)
    constant = pd.DataFrame({"A": [1.0, 2.0, 3.0], "B": [2.0, 3.0, 4.0], "C": [0.0, 5.0, 1.0]})
    with pytest.raises(ValueError, match="constant.*B-A"):
        pairwise_comparisons(constant, method="holm", pooled=False)
