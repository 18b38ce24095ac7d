"""Data sets used in the course, loaded as pandas DataFrames.

Every loader returns a fresh DataFrame.  Grouping variables are pandas ``Categorical``
columns whose categories are in the same order as R's factor levels, so that results
can be compared line by line with ``lme4``/``nlme`` output.

=====================  =====================================================  =========
loader                 contents                                               simulated
=====================  =====================================================  =========
load_groceries()       grocery prices, 10 items x 4 stores (wide)             no
load_grocery()         the same prices in the notes' long format (40 rows)    no
load_timss()           TIMSS 1997 stand-in, 7,097 students in 146 schools     **yes**
load_timss(path)       the real ``timss1997.txt`` if you have it              no
load_sleepstudy()      lme4's sleepstudy (180 rows)                           no
load_dyestuff2()       lme4's Dyestuff2 (30 rows)                             no
load_machines()        nlme's Machines (54 rows)                              no
load_penicillin()      lme4's Penicillin: 24 plates x 6 samples, crossed      no
load_pastes()          lme4's Pastes: 3 casks in each of 10 batches, nested   no
load_insteval_like()   InstEval-shaped ratings (73,421), crossed factors      **yes**
load_orthodont()       nlme's Orthodont (27 children x 4 ages, 108 rows)      no
load_hsb()             High School and Beyond: 7,185 students, 160 schools    no
load_reaction_times()  homework: 12 subjects x 4 conditions (wide)            **yes**
load_classrooms()      homework: pupils nested in 40 classes                  **yes**
load_chickweight()     R's ChickWeight: 50 chicks weighed over 21 days        no
=====================  =====================================================  =========

``list_datasets()`` returns this overview as a DataFrame.  The CSV files live in the
package ``lmmteach._datasets`` (the ``datasets/`` folder of the repository); its
``README.md`` documents the sources.
"""

from __future__ import annotations

import os
from importlib.resources import files

import numpy as np
import pandas as pd

from .._util import factor_levels

__all__ = [
    "list_datasets",
    "dataset_path",
    "load_groceries",
    "load_grocery",
    "load_timss",
    "load_sleepstudy",
    "load_dyestuff2",
    "load_machines",
    "load_penicillin",
    "load_pastes",
    "load_insteval_like",
    "load_orthodont",
    "load_hsb",
    "load_reaction_times",
    "load_classrooms",
    "load_chickweight",
    "load_cbpp",
]

_PACKAGE = "lmmteach._datasets"

TIMSS_COLUMNS = ["idschool", "idstudent", "grade", "gender", "science", "math", "hoursTV"]
TIMSS_FACTORS = ["idschool", "idstudent", "grade", "gender"]
TIMSS_NUMERIC = ["science", "math", "hoursTV"]

#: Level order of ``Worker`` in ``nlme::Machines``.  In nlme it is an *ordered* factor
#: whose levels are sorted by the workers' maximum score (groupedData's default), not
#: numerically.
MACHINES_WORKER_LEVELS = ["6", "2", "4", "1", "3", "5"]

#: Level order of ``Chick`` in R's ``ChickWeight``: an ordered factor sorted by the chicks' final weight
#: within diet (groupedData's default), not numerically.
CHICK_LEVELS = ["18", "16", "15", "13", "9", "20", "10", "8", "17", "19", "4", "6", "11", "3", "1", "12", "2",
                "5", "14", "7", "24", "30", "22", "23", "27", "28", "26", "25", "29", "21", "33", "37", "36",
                "31", "39", "38", "32", "40", "34", "35", "44", "45", "43", "41", "47", "49", "46", "50", "42",
                "48"]


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def dataset_path(filename: str):
    """Path (a ``Traversable``) of a file shipped in ``lmmteach._datasets``."""
    return files(_PACKAGE).joinpath(filename)


def _read_csv(filename: str, **kwargs) -> pd.DataFrame:
    with dataset_path(filename).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, **kwargs)


def _r_levels(values) -> list[str]:
    """Factor levels as R's ``factor()`` makes them from text: the sorted distinct strings (C-locale
    order, so "10" < "100" < "20"); missing values are not levels."""
    return factor_levels(pd.Series(values, dtype=object).dropna().astype(str))


def _integer_order(levels: list[str]) -> list[str]:
    """Sort numeric-looking level strings by their integer value ("10" < "20" < "100")."""
    try:
        return sorted(levels, key=lambda v: (int(v), v))
    except ValueError:
        return sorted(levels)


def _as_factor(values, categories=None) -> pd.Categorical:
    """A string Categorical like an R factor (categories = R's sorted levels by default)."""
    s = pd.Series(values, dtype=object)
    s = s.where(s.isna(), s.astype(str))
    if categories is None:
        categories = _r_levels(s)
    return pd.Categorical(s, categories=list(categories))


# --------------------------------------------------------------------------------------
# grocery prices
# --------------------------------------------------------------------------------------
def load_groceries() -> pd.DataFrame:
    """Grocery prices in wide format: 10 items (rows) x 4 stores (columns).

    Source: William B. King's R tutorials (Coastal Carolina University), as printed in
    Helwig's notes (``groceries = read.table("groceries.txt", header=TRUE)``).

    Columns: ``subject`` (item name, str), ``storeA, storeB, storeC, storeD`` (price in
    dollars, float).  Rows are in the notes' order: lettuce, potatoes, ..., aspirin.
    """
    df = _read_csv("groceries.csv")
    df["subject"] = df["subject"].astype(str)
    return df


def load_grocery() -> pd.DataFrame:
    """Grocery prices in the notes' long format (40 rows x 3 columns).

    Built exactly like the notes' R code::

        grocery = data.frame(price = as.numeric(unlist(groceries[,2:5])),
                             item = rep(groceries$subject, 4),
                             store = rep(LETTERS[1:4], each=10))

    so rows 1-10 are store A (items in the notes' order), rows 11-20 store B, and so on.
    ``item`` is categorical with alphabetically sorted categories (R's factor levels:
    aspirin, bread, cereal, ...) and ``store`` is categorical with categories A, B, C, D.
    """
    wide = load_groceries()
    stores = ["A", "B", "C", "D"]
    price = np.concatenate([wide[f"store{s}"].to_numpy(dtype=float) for s in stores])
    items = list(wide["subject"]) * 4
    store = np.repeat(stores, len(wide))
    return pd.DataFrame(
        {
            "price": price,
            "item": _as_factor(items),
            "store": _as_factor(store, categories=stores),
        }
    )


# --------------------------------------------------------------------------------------
# TIMSS 1997
# --------------------------------------------------------------------------------------
def _read_timss_file(path) -> pd.DataFrame:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"TIMSS data file not found: {path!r}. Pass the path of the real "
            "'timss1997.txt' (whitespace-separated with a header line, as read by "
            "R's read.table(..., header=TRUE)), or call load_timss() without a path "
            "to get the SIMULATED stand-in that ships with lmmteach."
        )
    # read.table(header=TRUE): whitespace separated; if the header has one field less
    # than the data lines the first column holds row names (pandas then uses it as index)
    df = pd.read_csv(
        path,
        sep=r"\s+",
        dtype={c: str for c in TIMSS_FACTORS},
        na_values=["NA"],
    )
    df = df.reset_index(drop=True) if not isinstance(df.index, pd.RangeIndex) else df
    missing = [c for c in TIMSS_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"TIMSS file {path!r} lacks the column(s) {', '.join(missing)}; "
            f"expected the columns {', '.join(TIMSS_COLUMNS)} "
            f"(found {', '.join(map(str, df.columns))})."
        )
    return df


def _timss_types(df: pd.DataFrame) -> pd.DataFrame:
    """Apply the notes' colClasses: 4 factors, then 3 numeric columns."""
    out = df[TIMSS_COLUMNS].copy()
    for col in TIMSS_FACTORS:
        levels = _r_levels(out[col])
        if col == "idschool":
            # integer order of the school ids (the order used throughout the notes)
            levels = _integer_order(levels)
        out[col] = _as_factor(out[col], categories=levels)
    for col in TIMSS_NUMERIC:
        try:
            out[col] = pd.to_numeric(out[col]).astype(float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"TIMSS column {col!r} must be numeric: {err}") from err
    return out


def _timss_center(df: pd.DataFrame) -> pd.DataFrame:
    """Add the notes' school means and group-centred math and hoursTV.

    Same as the notes' ``tapply``/``merge``/``cbind``: ``grpMmath`` and ``grpMhoursTV``
    are the school means (NA if a school has a missing value, like R's ``mean``),
    ``grpCmath = math - grpMmath`` and ``grpChoursTV = hoursTV - grpMhoursTV``.
    Unlike R's ``merge`` the rows keep their original order.
    """
    out = df.copy()
    groups = out.groupby("idschool", observed=True)

    def school_mean(col: str) -> pd.Series:
        return groups[col].transform(lambda s: s.mean(skipna=False))

    out["grpMmath"] = school_mean("math")
    out["grpMhoursTV"] = school_mean("hoursTV")
    out["grpCmath"] = out["math"] - out["grpMmath"]
    out["grpChoursTV"] = out["hoursTV"] - out["grpMhoursTV"]
    return out


def load_timss(path=None, center: bool = False) -> pd.DataFrame:
    """TIMSS 1997 3rd/4th-grade data: students (level 1) nested in schools (level 2).

    .. warning::
       **Without ``path`` this returns SIMULATED data, not the real TIMSS 1997 file.**
       The real ``timss1997.txt`` used in Helwig's notes is not distributed with the
       course.  The stand-in ``timss1997_simulated.csv`` has the same columns, types and
       design (7,097 students in 146 schools of unequal size) and its science scores are
       generated from the notes' own ``risucmod`` estimates by
       ``datasets/make_timss_standin.py``.  Model fits come out close to, but not equal
       to, the notes' numbers.  ``df.attrs["simulated"]`` is ``True`` for this file.

    Parameters
    ----------
    path : str or path-like, optional
        The real ``timss1997.txt`` in the notes' format (whitespace separated, header
        line, read in R with ``read.table(..., header=TRUE)``).  Then
        ``df.attrs["simulated"]`` is ``False``.
    center : bool, default False
        Add ``grpMmath, grpMhoursTV`` (school means) and ``grpCmath, grpChoursTV``
        (group-centred values), as the notes do with ``tapply``, ``merge`` and ``cbind``.

    Returns
    -------
    DataFrame with columns ``idschool, idstudent, grade, gender`` (Categorical, like the
    notes' ``colClasses="factor"``) and ``science, math, hoursTV`` (float), plus the four
    centring columns if ``center=True``.  ``idschool`` categories are in integer order
    (10, 20, ..., as in the notes); the others are sorted like R's factor levels.

    Raises
    ------
    FileNotFoundError
        if ``path`` does not exist.
    ValueError
        if the file lacks one of the seven columns (the message names them) or a score
        column is not numeric.
    """
    if path is None:
        raw = _read_csv("timss1997_simulated.csv", dtype={c: str for c in TIMSS_FACTORS})
        simulated = True
        source = (
            "SIMULATED stand-in for TIMSS 1997 (timss1997_simulated.csv), generated by "
            "datasets/make_timss_standin.py from the estimates in Helwig's notes; "
            "not real student data"
        )
    else:
        raw = _read_timss_file(path)
        simulated = False
        source = f"TIMSS 1997 file {os.fspath(path)} (https://nces.ed.gov/TIMSS/)"
    df = _timss_types(raw)
    if center:
        df = _timss_center(df)
    df.attrs["simulated"] = simulated
    df.attrs["source"] = source
    return df


# --------------------------------------------------------------------------------------
# lme4 / nlme examples
# --------------------------------------------------------------------------------------
def load_sleepstudy() -> pd.DataFrame:
    """lme4's ``sleepstudy``: reaction times of 18 subjects over 10 days of sleep deprivation.

    Source: Belenky et al. (2003), exported from R with
    ``write.csv(lme4::sleepstudy, row.names=FALSE)``.  180 rows; columns ``Reaction``
    (ms, float), ``Days`` (0-9, float like R's numeric) and ``Subject`` (Categorical
    with R's levels "308", "309", ..., "372").
    """
    df = _read_csv("sleepstudy.csv", dtype={"Subject": str})
    df["Reaction"] = df["Reaction"].astype(float)
    df["Days"] = df["Days"].astype(float)
    df["Subject"] = _as_factor(df["Subject"])
    return df


def load_dyestuff2() -> pd.DataFrame:
    """lme4's ``Dyestuff2``: simulated yields of 6 batches x 5 preparations (Box & Tiao).

    Exported from R (``lme4::Dyestuff2``).  30 rows; ``Batch`` (Categorical A-F) and
    ``Yield`` (float).  Famous because the REML/ML estimate of the batch variance is 0.
    """
    df = _read_csv("dyestuff2.csv", dtype={"Batch": str})
    df["Batch"] = _as_factor(df["Batch"])
    df["Yield"] = df["Yield"].astype(float)
    return df


def load_machines() -> pd.DataFrame:
    """nlme's ``Machines``: productivity scores of 6 workers on 3 machines, 3 times each.

    Exported from R (``nlme::Machines``).  54 rows; ``Worker`` (Categorical), ``Machine``
    (Categorical A, B, C) and ``score`` (float).  ``Worker`` keeps nlme's level order
    ``6, 2, 4, 1, 3, 5`` (:data:`MACHINES_WORKER_LEVELS`; nlme's ``groupedData``
    orders the workers by their maximum score).  In nlme it is an *ordered* factor; here
    the categories keep that order but are not flagged ordered, because Worker is only
    used as a grouping factor.
    """
    df = _read_csv("machines.csv", dtype={"Worker": str, "Machine": str})
    df["Worker"] = _as_factor(df["Worker"], categories=MACHINES_WORKER_LEVELS)
    df["Machine"] = _as_factor(df["Machine"], categories=["A", "B", "C"])
    df["score"] = df["score"].astype(float)
    return df


def load_orthodont() -> pd.DataFrame:
    """nlme's ``Orthodont``: distance (mm) from the pituitary to the pterygomaxillary fissure of 27
    children (16 boys, 11 girls) at ages 8, 10, 12 and 14 (Potthoff & Roy, 1964).

    Exported from R (``nlme::Orthodont``).  108 rows; ``distance`` and ``age`` (float),
    ``Subject`` (Categorical, sorted labels M01..M16, F01..F11 as text) and ``Sex``
    (Categorical with nlme's level order ``Male, Female``, so the treatment contrast is ``SexFemale``).
    """
    df = _read_csv("orthodont.csv", dtype={"Subject": str, "Sex": str})
    df["distance"] = df["distance"].astype(float)
    df["age"] = df["age"].astype(float)
    df["Subject"] = _as_factor(df["Subject"])
    df["Sex"] = _as_factor(df["Sex"], categories=["Male", "Female"])
    return df


def load_hsb() -> pd.DataFrame:
    """The High School and Beyond survey (1982): mathematics achievement of 7,185 students in
    160 US high schools, as in Raudenbush & Bryk's *Hierarchical Linear Models*.

    Exported from R's ``nlme::MathAchieve`` (students) and ``nlme::MathAchSchool`` (schools)
    by ``datasets/export_nlme_data.R``.  Columns: ``School`` (Categorical, R's sorted ids),
    ``Sector`` (Categorical ``Public, Catholic``), ``meanses`` (the school's mean SES as
    published in ``MathAchSchool$MEANSES``), ``Minority`` (Categorical ``No, Yes``), ``Sex``
    (Categorical ``Male, Female``), ``SES`` and ``MathAch`` (float), and the added column
    ``cses = SES - (mean SES of the student's school)``: SES centred at the mean over the
    school's students in this file.  (``meanses``
    comes from the full survey and so differs from that mean by up to 0.0065.)
    """
    df = _read_csv("hsb.csv", dtype={c: str for c in ["School", "Sector", "Minority", "Sex"]})
    df["School"] = _as_factor(df["School"], categories=_integer_order(_r_levels(df["School"])))
    df["Sector"] = _as_factor(df["Sector"], categories=["Public", "Catholic"])
    df["Minority"] = _as_factor(df["Minority"], categories=["No", "Yes"])
    df["Sex"] = _as_factor(df["Sex"], categories=["Male", "Female"])
    for col in ["meanses", "SES", "MathAch"]:
        df[col] = df[col].astype(float)
    df["cses"] = df["SES"] - df.groupby("School", observed=True)["SES"].transform("mean")
    return df


# --------------------------------------------------------------------------------------
# homework data (simulated)
# --------------------------------------------------------------------------------------
def load_penicillin() -> pd.DataFrame:
    """lme4's ``Penicillin``: diameters of growth-inhibition zones, 6 penicillin samples each tested on
    each of 24 agar plates -- two **crossed** grouping factors.

    Exported from R with ``write.csv(lme4::Penicillin, row.names=FALSE)``.  144 rows; ``diameter``
    (mm, float), ``plate`` (Categorical "a"-"x") and ``sample`` (Categorical "A"-"F").
    """
    df = _read_csv("penicillin.csv", dtype={"plate": str, "sample": str})
    df["diameter"] = df["diameter"].astype(float)
    df["plate"] = _as_factor(df["plate"])
    df["sample"] = _as_factor(df["sample"])
    return df


def load_pastes() -> pd.DataFrame:
    """lme4's ``Pastes``: strength of a paste, 2 assays of each of 3 casks from each of 10 batches --
    casks **nested** in batches.

    Exported from R with ``write.csv(lme4::Pastes, row.names=FALSE)``.  60 rows; ``strength`` (float),
    ``batch`` (Categorical "A"-"J"), ``cask`` (Categorical "a"-"c"; the labels repeat in every batch, so
    the cask is ``batch/cask``), ``sample`` (Categorical "A:a", ..., "J:c": the cask with its batch).
    """
    df = _read_csv("pastes.csv", dtype={"batch": str, "cask": str, "sample": str})
    df["strength"] = df["strength"].astype(float)
    for col in ("batch", "cask", "sample"):
        df[col] = _as_factor(df[col])
    return df


def load_insteval_like(seed: int = 2024) -> pd.DataFrame:
    """A **simulated** data set of lme4's ``InstEval`` shape, for the crossed-effects benchmark.

    73,421 ratings ``y`` (integers 1-5) by 2,972 students ``s`` of 1,128 lecturers ``d`` in 14 departments
    ``dept``; ``service`` (levels "0", "1") says whether the lecture was a service course. Students and
    lecturers are crossed; every lecturer belongs to one department. Generated by
    :func:`lmmteach.course.insteval_like.simulate` with ``numpy.random.default_rng(seed)``
    (no file is shipped; it takes a fraction of a second).
    """
    from .insteval_like import simulate

    return simulate(seed)


def load_reaction_times() -> pd.DataFrame:
    """SIMULATED homework data: reaction times (ms) of 12 subjects in 4 conditions (wide).

    Generated by ``datasets/make_homework_data.py`` (seeded).  12 rows; ``subject``
    (Categorical s01..s12) and ``cond1, cond2, cond3, cond4`` (float).  The population
    covariance violates sphericity mildly (Greenhouse-Geisser epsilon 0.71).
    """
    df = _read_csv("reaction_times_simulated.csv", dtype={"subject": str})
    df["subject"] = _as_factor(df["subject"])
    for col in ["cond1", "cond2", "cond3", "cond4"]:
        df[col] = df[col].astype(float)
    df.attrs["simulated"] = True
    return df


def load_classrooms() -> pd.DataFrame:
    """SIMULATED homework data: pupils nested in 40 classes (random intercepts and slopes).

    Generated by ``datasets/make_homework_data.py`` (seeded).  895 rows; ``class``
    (Categorical "1".."40" in integer order), ``pupil`` (Categorical, ids class*100 + k),
    ``ses`` (standardised socio-economic status, float) and ``score`` (float).
    """
    df = _read_csv("classrooms_simulated.csv", dtype={"class": str, "pupil": str})
    df["class"] = _as_factor(df["class"], categories=_integer_order(_r_levels(df["class"])))
    df["pupil"] = _as_factor(df["pupil"], categories=_integer_order(_r_levels(df["pupil"])))
    df["ses"] = df["ses"].astype(float)
    df["score"] = df["score"].astype(float)
    df.attrs["simulated"] = True
    return df


def load_cbpp() -> pd.DataFrame:
    """lme4's ``cbpp``: contagious bovine pleuropneumonia in 15 zebu herds in Ethiopia, each followed over up to
    4 periods (Lesnoff et al. 2004): ``incidence`` new cases among ``size`` animals. 56 rows; ``herd``
    (Categorical "1"-"15" in integer order, as R's levels), ``incidence`` and ``size`` (int), ``period``
    (Categorical "1"-"4"). Written by ``tests/reference/lecture07_reference.R``; lecture 7's binomial GLMM
    ``cbind(incidence, size - incidence) ~ period + (1 | herd)``.
    """
    df = _read_csv("cbpp.csv", dtype={"herd": str, "period": str})
    df["herd"] = _as_factor(df["herd"], categories=_integer_order(_r_levels(df["herd"])))
    df["period"] = _as_factor(df["period"])
    for col in ("incidence", "size"):
        df[col] = df[col].astype(int)
    return df


# --------------------------------------------------------------------------------------
# overview
# --------------------------------------------------------------------------------------
def load_chickweight() -> pd.DataFrame:
    """R's ``datasets::ChickWeight``: body weight (g) of 50 chicks on 4 diets, weighed every other day
    from birth to day 21 (Crowder & Hand 1990). 578 rows; ``weight`` (float), ``Time`` (days, float),
    ``Chick`` (Categorical with R's level order, :data:`CHICK_LEVELS`) and ``Diet`` (Categorical "1"-"4").
    Written by ``tests/reference/language_reference.R``; the growth-curve example of the model language
    (``log(weight) ~ poly(Time, 2) * Diet + (Time | Chick)``).
    """
    df = _read_csv("chickweight.csv", dtype={"Chick": str, "Diet": str})
    df["weight"] = df["weight"].astype(float)
    df["Time"] = df["Time"].astype(float)
    df["Chick"] = _as_factor(df["Chick"], categories=CHICK_LEVELS)
    df["Diet"] = _as_factor(df["Diet"])
    return df


_REGISTRY = [
    ("groceries", load_groceries, "grocery prices, 10 items x 4 stores (wide; King)", False),
    ("grocery", load_grocery, "grocery prices in the notes' long format", False),
    ("timss", load_timss, "TIMSS 1997 stand-in: 7,097 students in 146 schools", True),
    ("sleepstudy", load_sleepstudy, "lme4 sleepstudy: reaction time vs days of sleep loss", False),
    ("dyestuff2", load_dyestuff2, "lme4 Dyestuff2: yield of 6 batches (zero variance)", False),
    ("machines", load_machines, "nlme Machines: 6 workers x 3 machines x 3 replicates", False),
    ("penicillin", load_penicillin, "lme4 Penicillin: 24 plates x 6 samples (crossed)", False),
    ("pastes", load_pastes, "lme4 Pastes: 3 casks in each of 10 batches (nested)", False),
    ("insteval_like", load_insteval_like, "InstEval-shaped ratings: students x lecturers (crossed)", True),
    ("orthodont", load_orthodont, "nlme Orthodont: 27 children x 4 ages (growth curves)", False),
    ("hsb", load_hsb, "High School and Beyond: 7,185 students in 160 schools", False),
    ("reaction_times", load_reaction_times, "homework: one-way RM design, 12 x 4 (wide)", True),
    ("classrooms", load_classrooms, "homework: pupils in 40 classes, score ~ ses", True),
    ("chickweight", load_chickweight, "R ChickWeight: 50 chicks on 4 diets, weight over 21 days", False),
    ("cbpp", load_cbpp, "lme4 cbpp: CBPP cases in 15 herds over 4 periods (binomial)", False),
]


def list_datasets() -> pd.DataFrame:
    """Overview of the course data sets: ``name, loader, description, rows, simulated``."""
    return pd.DataFrame(
        [
            {
                "name": name,
                "loader": f"load_{name}()",
                "description": desc,
                "rows": len(loader()),
                "simulated": sim,
            }
            for name, loader, desc, sim in _REGISTRY
        ]
    )
