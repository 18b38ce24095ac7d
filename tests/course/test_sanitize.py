"""The nbval sanitize file rewrites only volatile text: every pattern matches some stored output, and none
matches a figure size or a number that the notebooks print on purpose."""

import configparser
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(ROOT.glob("lectures/*.ipynb")) + sorted(ROOT.glob("lectures/homework/source/*/*.ipynb"))
# Text that must survive sanitizing: figure sizes, hexadecimal-looking numbers in tables.
MUST_SURVIVE = ["<Figure size 900x500 with 1 Axes>", "F = 4.344209 on (3, 27) df", "logLik -26.773"]


def patterns() -> dict[str, re.Pattern]:
    cfg = configparser.RawConfigParser()
    cfg.read(ROOT / "lectures" / "nbval_sanitize.cfg")
    return {s: re.compile(cfg[s]["regex"]) for s in cfg.sections()}


def stored_text() -> list[str]:
    out = []
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            for o in cell.get("outputs", []):
                out.append("".join(o.get("text", "")))
                out += ["".join(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
    return out


def test_every_pattern_rewrites_something():
    text = stored_text()
    assert text, "no stored outputs found: notebooks must be stored with their outputs"
    for name, pattern in patterns().items():
        assert any(pattern.search(t) for t in text), f"sanitize pattern [{name}] matches no stored output: drop it"


def test_no_pattern_touches_deliberate_output():
    for name, pattern in patterns().items():
        for s in MUST_SURVIVE:
            assert not pattern.search(s), f"sanitize pattern [{name}] would rewrite {s!r}"


def test_pattern_file_parses_and_the_example_pattern_is_anchored():
    example = re.compile(r"\bat 0x[0-9a-fA-F]{6,16}\b")
    assert example.sub("at ADDRESS", "<object at 0x7f964fc460c0>") == "<object at ADDRESS>"
    assert all(not example.search(s) for s in MUST_SURVIVE)
    patterns()
