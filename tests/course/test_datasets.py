"""Tests for lmmteach.datasets and the seeded generator scripts in datasets/."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmmteach import datasets as ds
import _shared as shared

REF = json.loads((Path(__file__).resolve().parents[1] / "reference" / "datasets_reference.json").read_text())
REPO = Path(__file__).resolve().parents[2]
DATA_DIR = REPO / "datasets"


def _import_script(name: str):
    """Import a generator script from datasets/ by its path."""
    path = DATA_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_lmmteach_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------
# grocery
# --------------------------------------------------------------------------------------
NOTES_ITEMS = [
    "lettuce", "potatoes", "milk", "eggs", "bread", "cereal",
    "ground.beef", "tomato.soup", "laundry.detergent", "aspirin",
]  # fmt: skip


def test_groceries_wide_matches_notes():
    df = ds.load_groceries()
    assert list(df.columns) == ["subject", "storeA", "storeB", "storeC", "storeD"]
    assert df.shape == (10, 5)
    assert list(df["subject"]) == NOTES_ITEMS
    assert df.loc[0, ["storeA", "storeB", "storeC", "storeD"]].tolist() == [1.17, 1.78, 1.29, 1.29]
    assert df.loc[9, ["storeA", "storeB", "storeC", "storeD"]].tolist() == [4.46, 4.84, 4.99, 5.15]
    assert df.loc[8, "storeD"] == 6.99
    for col in ["storeA", "storeB", "storeC", "storeD"]:
        assert df[col].dtype == np.float64


def test_grocery_long_first_rows_as_printed_in_notes():
    df = ds.load_grocery()
    assert df.shape == (40, 3)
    assert list(df.columns) == ["price", "item", "store"]
    first12 = [
        (1.17, "lettuce", "A"), (1.77, "potatoes", "A"), (1.49, "milk", "A"),
        (0.65, "eggs", "A"), (1.58, "bread", "A"), (3.13, "cereal", "A"),
        (2.09, "ground.beef", "A"), (0.62, "tomato.soup", "A"),
        (5.89, "laundry.detergent", "A"), (4.46, "aspirin", "A"),
        (1.78, "lettuce", "B"), (1.98, "potatoes", "B"),
    ]  # fmt: skip
    got = list(zip(df["price"][:12], df["item"].astype(str)[:12], df["store"].astype(str)[:12]))
    assert got == first12


def test_grocery_long_types_and_levels():
    df = ds.load_grocery()
    assert df["price"].dtype == np.float64
    assert isinstance(df["item"].dtype, pd.CategoricalDtype)
    assert isinstance(df["store"].dtype, pd.CategoricalDtype)
    # R's factor levels: alphabetical for item, A..D for store
    assert list(df["item"].cat.categories) == sorted(NOTES_ITEMS)
    assert list(df["store"].cat.categories) == ["A", "B", "C", "D"]
    assert (df["store"].value_counts() == 10).all()
    assert list(df["item"].astype(str)) == NOTES_ITEMS * 4


def test_grocery_long_is_what_the_notes_r_code_builds():
    """R: data.frame(price = as.numeric(unlist(groceries[,2:5])), item = rep(...), store = rep(...))."""
    df, r = ds.load_grocery(), REF["grocery"]
    assert df["price"].tolist() == r["price"]
    assert df["item"].astype(str).tolist() == r["item"]
    assert df["store"].astype(str).tolist() == r["store"]
    assert list(df["item"].cat.categories) == r["item_levels"]


def test_grocery_sums_of_squares_match_notes():
    # aov(price ~ store + item): SS store 0.5859, SS item 115.19, SS residual 1.2137
    df = ds.load_grocery()
    grand = df["price"].mean()
    ss_store = 10 * ((df.groupby("store", observed=True)["price"].mean() - grand) ** 2).sum()
    ss_item = 4 * ((df.groupby("item", observed=True)["price"].mean() - grand) ** 2).sum()
    ss_total = ((df["price"] - grand) ** 2).sum()
    assert ss_store == pytest.approx(0.5859, abs=1e-4)
    assert ss_item == pytest.approx(115.19, abs=1e-2)
    assert ss_total - ss_store - ss_item == pytest.approx(1.2137, abs=1e-4)


# --------------------------------------------------------------------------------------
# TIMSS (simulated stand-in)
# --------------------------------------------------------------------------------------
TIMSS_COLUMNS = ["idschool", "idstudent", "grade", "gender", "science", "math", "hoursTV"]


@pytest.fixture(scope="module")
def timss():
    return ds.load_timss()


def test_timss_is_labelled_simulated(timss):
    assert timss.attrs["simulated"] is True
    assert "simulated" in timss.attrs["source"].lower()
    assert "SIMULATED" in ds.load_timss.__doc__
    assert "simulated" in str(ds.dataset_path("timss1997_simulated.csv"))


def test_timss_design(timss):
    assert list(timss.columns) == TIMSS_COLUMNS
    assert timss.shape == (7097, 7)
    sizes = timss.groupby("idschool", observed=True).size()
    assert len(sizes) == 146
    assert sizes.sum() == 7097
    assert sizes.nunique() > 10  # unequal school sizes
    assert sizes.min() >= 20 and sizes.max() <= 80
    assert timss["idstudent"].is_unique
    # ids like the notes: school 10 has students 1001xx
    assert timss["idschool"].iloc[0] == "10"
    assert timss["idstudent"].iloc[0].startswith("1001")
    school = timss["idschool"].astype(int)
    student = timss["idstudent"].astype(int)
    assert (student // 10000 == school).all()


def test_timss_types_and_levels(timss):
    for col in ["idschool", "idstudent", "grade", "gender"]:
        assert isinstance(timss[col].dtype, pd.CategoricalDtype), col
    for col in ["science", "math", "hoursTV"]:
        assert timss[col].dtype == np.float64, col
    cats = list(timss["idschool"].cat.categories)
    assert cats == sorted(cats, key=int)  # integer order 10, 20, ..., 1460
    assert cats[:3] == ["10", "20", "30"]
    assert list(timss["grade"].cat.categories) == ["3", "4"]
    assert list(timss["gender"].cat.categories) == ["boy", "girl"]
    # idstudent levels sorted as R sorts strings
    student_levels = list(timss["idstudent"].cat.categories)
    assert student_levels == sorted(timss["idstudent"].astype(str).unique())


def test_timss_variables_are_plausible(timss):
    g = timss.groupby("idschool", observed=True)
    school_math = g["math"].mean()
    assert school_math.min() > 120 and school_math.max() < 180
    assert school_math.std() > 4  # schools differ (generated with SD 5)
    within_sd = (timss["math"] - g["math"].transform("mean")).std()
    assert 8 < within_sd < 10  # generated with 8.8 (plus the grade-4 shift of 4 points)
    tv = timss["hoursTV"]
    assert (tv == np.round(tv)).all()
    assert tv.min() >= 1 and tv.max() <= 5  # ceiling of 5 hours
    assert tv.between(2, 4).mean() > 0.8
    school_tv = g["hoursTV"].mean()
    assert school_tv.min() > 1.5 and school_tv.max() < 4.5
    grade4 = g["grade"].apply(lambda s: (s == "4").mean())
    assert 0.4 < (timss["grade"] == "4").mean() < 0.6
    assert ((grade4 > 0) & (grade4 < 1)).all()  # grades mixed within schools
    assert 0.4 < (timss["gender"] == "girl").mean() < 0.6
    # one decimal, like the notes
    for col in ["science", "math"]:
        assert np.allclose(timss[col] * 10, np.round(timss[col] * 10))


def test_timss_generator_reproduces_committed_file():
    gen = _import_script("make_timss_standin")
    text = gen.to_csv_text(gen.simulate_timss())
    committed = (DATA_DIR / "timss1997_simulated.csv").read_bytes()
    assert text.encode("utf-8") == committed
    # the installed package data is the same file
    assert ds.dataset_path("timss1997_simulated.csv").read_bytes() == committed


def test_timss_science_follows_notes_fixed_effects(timss):
    # an OLS fit with the notes' predictors recovers the generating slopes roughly: the data are one sample, and
    # OLS ignores the school effects, so each slope is off by its sampling error (the mixed-model SEs are 0.014,
    # 0.033 and 0.17; the bounds allow 2-3 SEs)
    df = ds.load_timss(center=True)
    X = np.column_stack(
        [
            np.ones(len(df)),
            df["grpCmath"],
            df["grpMmath"],
            df["grade"] == "4",
            df["gender"] == "girl",
            df["grpChoursTV"],
            df["grpMhoursTV"],
        ]
    ).astype(float)
    beta = np.linalg.lstsq(X, df["science"].to_numpy(), rcond=None)[0]
    assert beta[1] == pytest.approx(0.5593, abs=0.03)
    assert beta[2] == pytest.approx(0.9309, abs=0.1)
    assert beta[4] == pytest.approx(-1.1839, abs=0.5)


def test_timss_center_matches_the_notes_r_code():
    """R (the notes): tapply school means, merge, cbind(grpCmath = math - grpMmath, ...)."""
    df, r = ds.load_timss(center=True), REF["timss"]
    added = ["grpMmath", "grpMhoursTV", "grpCmath", "grpChoursTV"]
    assert list(df.columns) == TIMSS_COLUMNS + added
    assert len(df) == r["nrow"]
    school = df.groupby("idschool", observed=True)[["grpMmath", "grpMhoursTV"]].first()
    school.index = school.index.astype(str)
    for col in ["grpMmath", "grpMhoursTV"]:
        np.testing.assert_allclose(school.loc[r["school"]["idschool"], col], r["school"][col], rtol=shared.ROUNDING_RTOL)
    students = df.set_index(df["idstudent"].astype(str)).loc[r["students"]["idstudent"]]
    for col in ["grpCmath", "grpChoursTV"]:
        np.testing.assert_allclose(students[col], r["students"][col], rtol=shared.ROUNDING_RTOL, atol=shared.ZERO_ATOL)
        assert (df[col] ** 2).sum() == pytest.approx(r["sum_sq"][col], rel=shared.ROUNDING_RTOL)
    assert df.attrs["simulated"] is True


# the notes' head(timss), in the whitespace format of timss1997.txt
NOTES_HEAD = """idschool idstudent grade gender science math hoursTV
10 100101 3 girl 146.7 137.0 3
10 100103 3 girl 148.8 145.3 2
10 100107 3 girl 150.0 152.3 4
10 100108 3 girl 146.9 144.3 3
10 100109 3 boy 144.3 140.3 3
10 100110 3 boy 156.5 159.2 2
20 200101 4 boy 150.1 160.0 1
100 1000101 4 girl 140.0 150.0 5
"""


def test_load_real_format_file(tmp_path):
    path = tmp_path / "timss1997.txt"
    path.write_text(NOTES_HEAD)
    df = ds.load_timss(path)
    assert df.attrs["simulated"] is False
    assert str(path) in df.attrs["source"]
    assert df.shape == (8, 7)
    assert list(df.columns) == TIMSS_COLUMNS
    assert list(df["idschool"].cat.categories) == ["10", "20", "100"]
    # R's string order for the student ids
    assert list(df["idstudent"].cat.categories)[:2] == ["1000101", "100101"]
    assert list(df["gender"].cat.categories) == ["boy", "girl"]
    assert df["science"].tolist()[:3] == [146.7, 148.8, 150.0]
    assert df["hoursTV"].dtype == np.float64
    centred = ds.load_timss(path, center=True)
    school10 = centred[centred["idschool"] == "10"]
    math10 = [137.0, 145.3, 152.3, 144.3, 140.3, 159.2]
    assert school10["grpMmath"].iloc[0] == pytest.approx(np.mean(math10))
    assert school10["grpMhoursTV"].iloc[0] == pytest.approx(17 / 6)
    assert centred.attrs["simulated"] is False


def test_load_real_format_with_row_names(tmp_path):
    # write.table() style: the header has one field less, first column = row names
    lines = NOTES_HEAD.splitlines()
    body = [f'"{i}" {line}' for i, line in enumerate(lines[1:], start=1)]
    path = tmp_path / "timss_rownames.txt"
    path.write_text("\n".join([lines[0], *body]) + "\n")
    df = ds.load_timss(path)
    assert df.shape == (8, 7)
    assert list(df["idstudent"].astype(str))[:2] == ["100101", "100103"]


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("idschool idstudent grade science math\n10 100101 3 146.7 137.0\n")
    with pytest.raises(ValueError, match="gender") as info:
        ds.load_timss(path)
    assert "hoursTV" in str(info.value)


def test_missing_file_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_timss\\(\\) without a path"):
        ds.load_timss(tmp_path / "nope.txt")


# --------------------------------------------------------------------------------------
# lme4 / nlme examples
# --------------------------------------------------------------------------------------
def test_sleepstudy():
    df = ds.load_sleepstudy()
    assert df.shape == (180, 3)
    assert list(df.columns) == ["Reaction", "Days", "Subject"]
    assert df["Reaction"].iloc[0] == pytest.approx(249.56)
    assert df["Reaction"].mean() == pytest.approx(298.5079, abs=1e-4)
    cats = list(df["Subject"].cat.categories)
    assert len(cats) == 18 and cats[0] == "308" and cats[-1] == "372"
    assert cats == sorted(cats)
    assert sorted(df["Days"].unique()) == list(range(10))


def test_dyestuff2():
    df = ds.load_dyestuff2()
    assert df.shape == (30, 2)
    assert list(df["Batch"].cat.categories) == list("ABCDEF")
    assert (df["Batch"].value_counts() == 5).all()
    assert df["Yield"].mean() == pytest.approx(5.6656, abs=1e-4)


def test_machines():
    df = ds.load_machines()
    assert df.shape == (54, 3)
    assert ds.MACHINES_WORKER_LEVELS == ["6", "2", "4", "1", "3", "5"]
    assert list(df["Worker"].cat.categories) == ds.MACHINES_WORKER_LEVELS
    assert list(df["Machine"].cat.categories) == ["A", "B", "C"]
    counts = df.groupby(["Worker", "Machine"], observed=True).size()
    assert len(counts) == 18 and (counts == 3).all()
    # groupedData() orders the workers by their maximum score
    top = df.groupby("Worker", observed=True)["score"].max()
    assert list(top.sort_values().index.astype(str)) == ds.MACHINES_WORKER_LEVELS


def test_orthodont_is_nlmes():
    df, r = ds.load_orthodont(), REF["orthodont"]
    assert r["nlme_equal"]  # the shipped CSV is nlme::Orthodont
    assert list(df.columns) == ["distance", "age", "Subject", "Sex"]
    assert len(df) == r["nrow"]
    assert list(df["Subject"].cat.categories) == r["subject_levels"]
    assert list(df["Sex"].cat.categories) == r["sex_levels"]
    means = df.groupby("Sex", observed=True)["distance"].mean()
    assert means.to_dict() == pytest.approx(r["mean_by_sex"], rel=shared.ROUNDING_RTOL)


def test_hsb_is_nlmes_high_school_and_beyond():
    df, r = ds.load_hsb(), REF["hsb"]
    assert r["nlme_equal"]  # the shipped CSV is nlme::MathAchieve (+ MathAchSchool's Sector, MEANSES)
    assert list(df.columns) == ["School", "Sector", "meanses", "Minority", "Sex", "SES", "MathAch", "cses"]
    assert len(df) == r["nrow"] and df["School"].nunique() == r["n_school"]
    assert list(df["School"].cat.categories) == r["school_levels"]
    assert list(df["Sector"].cat.categories) == r["sector_levels"]
    assert list(df["Minority"].cat.categories) == ["No", "Yes"]
    assert df.groupby("School", observed=True)["Sector"].first().eq("Catholic").sum() == r["catholic_schools"]
    assert df["MathAch"].mean() == pytest.approx(r["mean_mathach"], rel=shared.ROUNDING_RTOL)
    # cses = SES - school mean, as R's ave() computes it
    np.testing.assert_allclose(df["cses"].iloc[:20], r["cses_head"], rtol=shared.ROUNDING_RTOL, atol=shared.ZERO_ATOL)
    assert (df["cses"] ** 2).sum() == pytest.approx(r["sum_sq_cses"], rel=shared.ROUNDING_RTOL)
    gap = (df["meanses"] - (df["SES"] - df["cses"])).abs().max()
    assert gap == pytest.approx(r["max_meanses_gap"], rel=1e-6)


# --------------------------------------------------------------------------------------
# homework data (simulated)
# --------------------------------------------------------------------------------------
def test_reaction_times():
    df = ds.load_reaction_times()
    assert df.shape == (12, 5)
    assert list(df.columns) == ["subject", "cond1", "cond2", "cond3", "cond4"]
    assert df.attrs["simulated"] is True
    assert df["subject"].is_unique
    # a mild sphericity violation: Greenhouse-Geisser epsilon clearly below 1
    y = df[["cond1", "cond2", "cond3", "cond4"]].to_numpy()
    k = y.shape[1]
    q = np.linalg.qr(np.column_stack([np.ones(k), np.eye(k)[:, : k - 1]]))[0][:, 1:]
    lam = np.linalg.eigvalsh(q.T @ np.cov(y.T) @ q)
    gg = lam.sum() ** 2 / ((k - 1) * (lam**2).sum())
    assert 0.5 < gg < 0.9


def test_classrooms():
    df = ds.load_classrooms()
    assert list(df.columns) == ["class", "pupil", "ses", "score"]
    assert df.attrs["simulated"] is True
    sizes = df.groupby("class", observed=True).size()
    assert len(sizes) == 40 and sizes.min() >= 10 and sizes.max() <= 30
    assert len(df) == sizes.sum()
    assert df["pupil"].is_unique
    assert list(df["class"].cat.categories)[:3] == ["1", "2", "3"]


def test_homework_generators_reproduce_committed_files():
    gen = _import_script("make_homework_data")
    rt = gen.reaction_times_csv_text(gen.simulate_reaction_times())
    cl = gen.classrooms_csv_text(gen.simulate_classrooms())
    assert rt.encode() == (DATA_DIR / "reaction_times_simulated.csv").read_bytes()
    assert cl.encode() == (DATA_DIR / "classrooms_simulated.csv").read_bytes()


# --------------------------------------------------------------------------------------
# overview
# --------------------------------------------------------------------------------------
def test_list_datasets():
    table = ds.list_datasets()
    assert {"name", "description", "rows", "simulated"} <= set(table.columns)
    info = table.set_index("name")
    assert info.loc["timss", "rows"] == 7097
    assert bool(info.loc["timss", "simulated"]) is True
    assert info.loc["grocery", "rows"] == 40
    assert bool(info.loc["groceries", "simulated"]) is False
    assert set(info.index[info["simulated"]]) == {"timss", "reaction_times", "classrooms", "insteval_like"}
    for name in info.index:
        assert hasattr(ds, f"load_{name}")
