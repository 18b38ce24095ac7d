"""Write the answer keys of homework 4 (the numbers in its hidden tests) from the data.

The hidden tests of ``lectures/homework/source/hw4_beyond/hw4_beyond.ipynb`` (the lines between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` of its graded cells) are generated here:

    python lectures/homework/keys/make_homework_keys_hw4.py            # rewrite the hidden tests in the source notebook
    python lectures/homework/keys/make_homework_keys_hw4.py --check    # exit 1 if the notebook's hidden tests are out of date

tests/course/test_homework_keys_hw4.py runs the check. Where the keys come from:

    * Part 1 (covariance structures): ``lmmteach.gls`` REML fits of R's ``ChickWeight`` (log weight at days
      0, 4, ..., 20; the four chicks with missing days keep their other rows) — gls is checked against nlme in
      tests/lmm/test_gls.py; the LRT from scipy's chi-square.
    * Part 2 (centring): numpy group means of the High School and Beyond data (``load_hsb``) and
      ``lmmteach.lmer`` REML fits (what a student reading ``lmer``'s output must find).
    * Part 3 (nested random effects): ``lmmteach.lmer`` fits of nlme's ``Machines`` with ``(1 | Worker/Machine)``
      (REML variances; ML fits for the LRT). lme4 1.1 gives the same: REML variances 13.9094569, 22.8584444,
      0.9246296; ML LRT Chisq 68.434 (tests/course/test_homework_keys_hw4.py).

"A wrong number costs once": a hidden test that builds on an earlier answer accepts either the key or the value
the student's own earlier numbers imply (``_right_or_consistent``), as in the other homework.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[3]  # lectures/homework/keys/ -> the repository
NOTEBOOK = ROOT / "lectures" / "homework" / "source" / "hw4_beyond" / "hw4_beyond.ipynb"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_homework_keys import BEGIN, END, HELPER, arr, num, same_block  # noqa: E402  (one writer of keys)

STRUCTURES = {"CS": ("cs", False), "AR(1)": ("ar1", False), "Toeplitz": ("toep", False), "UN": ("un", True)}
DAYS = [0, 4, 8, 12, 16, 20]


def chick_data() -> pd.DataFrame:
    """The homework's ChickWeight subset (the same lines as the notebook's locked setup cell)."""
    import lmmteach

    cw = lmmteach.load_chickweight()
    chick = cw[cw["Time"].isin(DAYS)].copy()
    chick["day"] = pd.Categorical(chick["Time"].astype(int))
    chick["logw"] = np.log(chick["weight"])
    return chick


def keys() -> dict:
    import lmmteach

    chick = chick_data()
    fits = {name: lmmteach.gls("logw ~ Diet * day", chick, group="Chick", time="day", correlation=c,
                               heteroscedastic=h) for name, (c, h) in STRUCTURES.items()}
    k: dict = {"loglik": [fits[n].loglik for n in STRUCTURES], "npar": [fits[n].npar for n in STRUCTURES],
               "aic": [fits[n].aic for n in STRUCTURES]}
    k["best"] = list(STRUCTURES)[int(np.argmin(k["aic"]))]
    k["rho_ar1"] = float(fits["AR(1)"].correlation_parameters.iloc[0])
    k["D"] = 2 * (fits["Toeplitz"].loglik - fits["AR(1)"].loglik)
    k["df"] = fits["Toeplitz"].npar - fits["AR(1)"].npar
    k["p"] = float(stats.chi2.sf(k["D"], k["df"]))
    k["sd_un"] = np.sqrt(np.diag(fits["UN"].cov_matrix().to_numpy()))

    hsb = lmmteach.load_hsb()
    ses_mean = hsb.groupby("School", observed=True)["SES"].transform("mean").to_numpy()
    k["ses_mean_head"] = ses_mean[:5]
    k["ses_within_head"] = hsb["SES"].to_numpy()[:5] - ses_mean[:5]
    hsb = hsb.assign(ses_mean=ses_mean, ses_within=hsb["SES"].to_numpy() - ses_mean)
    raw = lmmteach.lmer("MathAch ~ SES + (1 | School)", hsb)
    cent = lmmteach.lmer("MathAch ~ ses_within + ses_mean + (1 | School)", hsb)
    k["b_raw"] = raw.fixef["SES"]
    k["b_within"] = cent.fixef["ses_within"]
    k["b_between"] = cent.fixef["ses_mean"]
    k["contextual"] = k["b_between"] - k["b_within"]

    machines = lmmteach.load_machines()
    nested = "score ~ Machine + (1 | Worker/Machine)"
    k["vc_nested"] = lmmteach.lmer(nested, machines).varcorr["vcov"].to_numpy(dtype=float)
    full = lmmteach.lmer(nested, machines, reml=False)
    worker = lmmteach.lmer("score ~ Machine + (1 | Worker)", machines, reml=False)
    k["D_nested"] = 2 * (full.loglik - worker.loglik)
    k["p_nested"] = 0.5 * stats.chi2.sf(k["D_nested"], 1)
    return k


def rendered() -> dict:
    """The hidden block of every graded cell, by grade_id."""
    k = keys()
    return {
        "test_structures": f"""check_close("aic_table['logLik']", aic_table["logLik"], {arr(k["loglik"])}, rtol=1e-6)
check_equal("aic_table['npar']", [int(v) for v in aic_table["npar"]], {[int(v) for v in k["npar"]]})
""",
        "test_best": HELPER + f"""# right, or right for your own AIC column (a wrong fit was charged in test_structures)
if str(best) != str(aic_table["AIC"].astype(float).idxmin()):
    check_equal("best", best, {k["best"]!r})
_right_or_consistent("rho_ar1", rho_ar1, {num(k["rho_ar1"])}, fits["AR(1)"].correlation_parameters.iloc[0], rtol=1e-4)
_right_or_consistent("sd_un", sd_un, {arr(k["sd_un"])}, np.sqrt(np.diag(fits["UN"].cov_matrix().to_numpy())),
                     rtol=1e-4)
""",
        "test_lrt": HELPER + f"""_right_or_consistent("D", D, {num(k["D"])},
                     2 * (float(aic_table.loc["Toeplitz", "logLik"]) - float(aic_table.loc["AR(1)", "logLik"])))
check_equal("df_lrt", int(df_lrt), {int(k["df"])})
_right_or_consistent("p_lrt", p_lrt, {num(k["p"])}, stats.chi2.sf(D, df_lrt), rtol=1e-5, atol=1e-300)
""",
        "test_centring": f"""check_close("hsb['ses_mean'][:5]", hsb["ses_mean"].to_numpy()[:5], {arr(k["ses_mean_head"])}, rtol=1e-8)
check_close("hsb['ses_within'][:5]", hsb["ses_within"].to_numpy()[:5], {arr(k["ses_within_head"])}, rtol=1e-8, atol=1e-12)
""",
        "test_within_between": HELPER + f"""check_close("b_raw", b_raw, {num(k["b_raw"])}, rtol=1e-4)
# right, or right for your own ses_mean and ses_within columns (a wrong centring was charged in test_centring)
_own = lmmteach.lmer("MathAch ~ ses_within + ses_mean + (1 | School)", hsb).fixef
_right_or_consistent("b_within", b_within, {num(k["b_within"])}, _own["ses_within"], rtol=1e-4)
_right_or_consistent("b_between", b_between, {num(k["b_between"])}, _own["ses_mean"], rtol=1e-4)
_right_or_consistent("contextual", contextual, {num(k["contextual"])}, b_between - b_within, rtol=1e-4)
""",
        "test_nested": f"""check_close("vc_nested", vc_nested, {arr(k["vc_nested"])}, rtol=1e-4)
""",
        "test_lrt_nested": HELPER + f"""check_close("D_nested", D_nested, {num(k["D_nested"])}, rtol=1e-5)
_right_or_consistent("p_nested", p_nested, {num(k["p_nested"])}, 0.5 * stats.chi2.sf(D_nested, 1), rtol=1e-5,
                     atol=1e-300)
""",
    }


def _set_hidden(source: str, block: str) -> str:
    pattern = re.escape(BEGIN) + r".*?" + re.escape(END)
    if not re.search(pattern, source, flags=re.S):
        raise ValueError("a graded cell has no hidden-test block")
    return re.sub(pattern, lambda _: BEGIN + block + END, source, flags=re.S)


def hidden_blocks(nb: dict) -> dict:
    out = {}
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        found = re.findall(re.escape(BEGIN) + r"(.*?)" + re.escape(END), text, flags=re.S)
        if found:
            out[cell["metadata"]["nbgrader"]["grade_id"]] = found[0]
    return out


def write_or_check(notebook: Path, blocks: dict, script: str, argv=None) -> int:
    """Write ``blocks`` ({grade_id: hidden tests}) into ``notebook``, or with ``--check`` exit 1 when its hidden
    tests are out of date (compared by :func:`same_block`). One command line for every homework's key script."""
    parser = argparse.ArgumentParser(description=f"write the hidden tests of {notebook.name} from the data")
    parser.add_argument("--check", action="store_true", help="exit 1 if the hidden tests are out of date")
    args = parser.parse_args(argv)
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    if args.check:
        committed = hidden_blocks(nb)
        stale = sorted(g for g, b in blocks.items() if not same_block(committed.get(g, ""), b))
        if stale or set(committed) != set(blocks):
            print(f"hidden tests out of date in {notebook.name}: {stale}; run python lectures/homework/keys/{script}")
            return 1
        print(f"{notebook.stem} hidden tests are up to date")
        return 0
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in blocks:
            cell["source"] = _set_hidden("".join(cell["source"]), blocks[gid]).splitlines(keepends=True)
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote the hidden tests of {notebook.relative_to(ROOT)}")
    return 0


def main(argv=None) -> int:
    return write_or_check(NOTEBOOK, rendered(), Path(__file__).name, argv)


if __name__ == "__main__":
    sys.exit(main())
