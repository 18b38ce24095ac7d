"""What many test files share: the reference JSON written by the R scripts, the course's data sets by
name, and one "fit quietly and cache" helper (fits are immutable, so one fit serves every test)."""

from __future__ import annotations

import importlib.util
import json
import warnings
from functools import lru_cache
from pathlib import Path

import lmmteach as lt

REFERENCE = Path(__file__).parent / "reference"
HOMEWORK_KEYS = Path(__file__).parents[1] / "lectures" / "homework" / "keys"


def keys_script(filename: str):
    """A homework's key generator, lectures/homework/keys/<filename>, loaded as a module (the scripts are not
    in the package: students never receive them)."""
    spec = importlib.util.spec_from_file_location(f"_lmmteach_{Path(filename).stem}", HOMEWORK_KEYS / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

ROUNDING_RTOL = 1e-10
"""Two computations of one quantity that are equal in exact arithmetic (a closed form and the fitted model's,
the dense textbook form and the fast one, a stacked and a one-at-a-time evaluation, ours and R's closed form):
they differ only by the rounding of other summation orders and BLAS kernels, ~1e-13 relative on these
well-conditioned problems under every OpenBLAS kernel `course.py test` runs. 1e-10 leaves a thousandfold margin
and still catches any algebra error, which shows at 1e-4 or more."""
ZERO_ATOL = 1e-10
"""A unit-scale quantity that is zero (or an entry that is one) in exact arithmetic, where a relative tolerance
means nothing: K'X = 0, P'P = I, contrasts summing to 0, a centred value near 0, a singular fit's zero variance,
a p-value far in the tail. Rounding leaves ~1e-15; 1e-10 is the same thousandfold margin as ``ROUNDING_RTOL``."""

_DATA = {
    "grocery": lt.load_grocery,
    "timss": lambda: lt.load_timss(center=True),
    "sleepstudy": lt.load_sleepstudy,
    "dyestuff2": lt.load_dyestuff2,
    "machines": lt.load_machines,
    "classrooms": lt.load_classrooms,
    "penicillin": lt.load_penicillin,
    "pastes": lt.load_pastes,
    "crossed_slope": lambda: _read_reference_csv("crossed_slope_data.csv"),
    "orthodont": lt.load_orthodont,
    "hsb": lt.load_hsb,
    "chickweight": lt.load_chickweight,
}
_FITS: dict = {}


def _read_reference_csv(filename: str):
    """A data set an R script in tests/reference/ wrote (text columns as pandas Categoricals)."""
    import pandas as pd

    df = pd.read_csv(REFERENCE / filename)
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].astype("category")
    return df


def reference(name: str) -> dict:
    """The JSON an R script in tests/reference/ wrote (``name`` without ``.json``)."""
    return json.loads((REFERENCE / f"{name}.json").read_text())


@lru_cache(maxsize=None)
def data(name: str):
    """A course data set by name (TIMSS group-mean centred, as the notes use it)."""
    return _DATA[name]()


def fit(formula: str, data_or_name, **kw):
    """``lt.lmer(formula, data, **kw)`` with its warnings silenced. Fits of a named course data set are
    cached by (formula, name, options); a DataFrame passed in is fitted afresh every time."""
    if not isinstance(data_or_name, str):
        return _fit_quietly(formula, data_or_name, **kw)
    key = (formula, data_or_name, tuple(sorted((k, repr(v)) for k, v in kw.items())))
    if key not in _FITS:
        _FITS[key] = _fit_quietly(formula, data(data_or_name), **kw)
    return _FITS[key]


def _fit_quietly(formula, frame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lt.lmer(formula, frame, **kw)
