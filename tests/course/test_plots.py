"""Figures of lectures 1 ("Correlated Data") and 2 ("One-Way RM-ANOVA"): each returns its axes, labelled,
and draws what it says."""

import numpy as np
import pytest
from scipy import stats

import lmmteach as lm
from lmmteach import plots


def test_group_boxplots_one_box_per_group_sorted_by_median():
    timss = lm.load_timss()
    ax = plots.plot_group_boxplots(timss, "math", "idschool", max_groups=12)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == 12
    assert set(labels) == set(timss["idschool"].cat.categories[:12])
    medians = [timss.loc[timss["idschool"] == s, "math"].median() for s in labels]
    assert medians == sorted(medians)
    assert ax.get_xlabel().startswith("idschool") and ax.get_ylabel() == "math" and ax.get_title()


def test_interval_coverage_titles_report_coverage_of_all_replications():
    est = np.r_[np.zeros(25), np.full(75, 3.0)]  # a quarter of the narrow intervals cover 0
    fig, axes = plots.plot_interval_coverage({"narrow": (est - 0.5, est + 0.5), "wide": (est - 5, est + 5)},
                                             truth=0.0, n_show=20, xlabel="b1")
    assert [ax.get_title() for ax in axes] == ["narrow: coverage 0.250", "wide: coverage 1.000"]
    assert all(ax.get_xlabel() == "b1" and ax.get_ylabel() == "replication" for ax in axes)
    assert len(axes[0].collections[0].get_segments()) == 20
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["covers", "misses", "true value 0"]


def test_profiles_one_line_per_subject_plus_the_level_means(grocery, groceries):
    ax = plots.plot_profiles(grocery, "price", "store", "item")
    assert len(ax.lines) == 10 + 1
    np.testing.assert_allclose(ax.lines[-1].get_ydata(), groceries.iloc[:, 1:].mean().to_numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == list("ABCD")
    assert ax.get_xlabel() == "store" and ax.get_ylabel() == "price" and ax.get_title()
    assert len(ax.texts) == 10  # item names at the right


def test_profiles_centred_removes_the_subject_means(grocery):
    ax = plots.plot_profiles(grocery, "price", "store", "item", centre=True, label_subjects=False)
    Y = np.array([line.get_ydata() for line in ax.lines[:-1]])
    np.testing.assert_allclose(Y.mean(axis=1), grocery["price"].mean())
    assert "bar y" in ax.get_ylabel() and not ax.texts


def test_difference_variances_bars_and_twice_the_mse(groceries):
    ax = plots.plot_difference_variances(groceries)
    heights = [p.get_height() for p in ax.patches]
    Y = groceries.iloc[:, 1:].to_numpy()
    assert heights[0] == pytest.approx(np.var(Y[:, 1] - Y[:, 0], ddof=1))
    assert len(heights) == 6
    assert ax.lines[0].get_ydata()[0] == pytest.approx(2 * lm.aov1rm(groceries).sigma2_e)
    assert ax.get_xlabel() and "Var" in ax.get_ylabel() and ax.get_title()


def test_f_adjusted_draws_one_density_per_reference_and_reports_p(groceries):
    r = lm.aov1rm(groceries)
    ax = plots.plot_f_adjusted(r.F, r.df1, r.df2, {"GG": r.eps_gg, "HF": r.eps_hf})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 3
    assert labels[1].endswith(f"p = {r.p_gg:.4f}") and labels[2].endswith(f"p = {r.p_hf:.4f}")
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(y, stats.f.pdf(x, 3, 27))
    assert ax.get_xlabel() == "$F$" and ax.get_ylabel() == "density" and ax.get_title()


def test_pairwise_intervals_one_row_per_pair_one_marker_per_method(groceries):
    tables = {"Tukey": lm.pairwise_comparisons(groceries, "tukey"),
              "paired": lm.pairwise_comparisons(groceries, "bonferroni", pooled=False)}
    ax = plots.plot_pairwise_intervals(tables)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(tables["Tukey"]["pair"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Tukey", "paired"]
    assert ax.get_xlabel() and ax.get_ylabel() == "pair" and ax.get_title()
