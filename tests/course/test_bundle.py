"""`python3 course.py bundle`: the students' copy holds every lecture and every assignment as nbgrader
releases it (no solution code, no hidden tests), the library as a real wheel, and nothing from the instructor's
side: no key generator, no hidden test, no solution, no number of the answer keys, in any file of the bundle or
of the wheel."""
import importlib.util
import json
import re
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "lectures" / "homework" / "source"
_spec = importlib.util.spec_from_file_location("classroom", ROOT / "lectures" / "_classroom" / "classroom.py")
classroom = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(classroom)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "student"
    before = _repository_leftovers()
    archive = classroom.write_bundle(out)  # the real wheel, built offline
    assert _repository_leftovers() <= before, "building the bundle left build folders in the repository"
    assert archive == out.with_suffix(".zip") and archive.exists()
    return out


def _repository_leftovers() -> set[Path]:
    """What a wheel build in the repository would leave: build/bdist.*, build/lib, *.egg-info."""
    return {*ROOT.glob("build/bdist.*"), *ROOT.glob("build/lib"), *ROOT.glob("*.egg-info")}


def _key_numbers() -> set[str]:
    """Numbers with 7 or more significant digits in the hidden tests of the homework sources: the answer keys
    (written with 10; shorter ones such as 12.725 also occur in the data)."""
    keys = set()
    for path in SOURCE.glob("*/*.ipynb"):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", "".join(cell["source"]), re.S):
                for x in re.findall(r"(?<![\w.])\d+\.\d+(?:e-?\d+)?", block):
                    if len(re.sub(r"\D", "", x.split("e")[0]).lstrip("0")) >= 7:
                        keys.add(x)
    return keys


def _student_files(bundle: Path) -> dict[str, str]:
    """Every text file a student receives, the wheel's members included: name -> text."""
    files = {}
    for path in bundle.rglob("*"):
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                for name in wheel.namelist():
                    files[f"{path.name}/{name}"] = wheel.read(name).decode("utf-8", errors="replace")
        elif path.is_file() and path.suffix != ".zip":
            files[str(path.relative_to(bundle))] = path.read_text(encoding="utf-8", errors="replace")
    return files


def test_bundle_wheel_is_the_library_without_instructor_files(bundle):
    wheels = list(bundle.glob("lmmteach-*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
    assert "lmmteach/__init__.py" in names and "lmmteach/_datasets/reaction_times_simulated.csv" in names
    assert not [n for n in names if "make_homework_keys" in n], "the key generators stay with the instructor"
    assert wheels[0].name in (bundle / "README.txt").read_text()


def test_nothing_a_student_receives_holds_a_key(bundle):
    keys = _key_numbers()
    assert len(keys) >= 50, "the test must see the keys it looks for"
    files = _student_files(bundle)
    assert any(name.endswith(".whl/lmmteach/course/grading.py") for name in files)
    for name, text in files.items():
        # a hidden-test or solution block: the marker ending its line (in a file or a notebook's JSON string);
        # the README naming the markers in prose is fine
        assert not re.search(r"### BEGIN (?:HIDDEN TESTS|SOLUTION)(?:\n|\\n)", text), f"{name}: a marked block"
        assert "make_homework_keys" not in name, f"{name}: a key generator"
        if name.startswith("homework/") or ".whl/" in name:
            leaked = sorted(k for k in keys if k in text)
            assert not leaked, f"{name} holds answer-key numbers {leaked[:5]}"


def test_bundle_has_every_lecture_and_assignment(bundle):
    assert sorted(p.name for p in (bundle / "lectures").glob("*.ipynb")) == \
        sorted(p.name for p in classroom.lecture_paths())
    released = sorted(str(p.relative_to(bundle / "homework")) for p in (bundle / "homework").glob("*/*.ipynb"))
    assert released == sorted(str(p.relative_to(SOURCE)) for p in SOURCE.glob("*/*.ipynb"))
    assert (bundle / "README.txt").read_text().count("jupyter lab") == 1


def test_bundle_homework_has_no_solutions(bundle):
    for path in (bundle / "homework").glob("*/*.ipynb"):
        text = path.read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{path.name}: {marker}"
        nb = nbformat.read(path, as_version=4)
        assert "YOUR CODE HERE" in text
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} has outputs"


def test_bundle_zip_matches_folder(bundle):
    with zipfile.ZipFile(bundle.with_suffix(".zip")) as z:
        names = {n for n in z.namelist() if not n.endswith("/")}
    assert names == {str(p.relative_to(bundle.parent)) for p in bundle.rglob("*") if p.is_file()}
    assert not any("source/" in n or n.endswith("gradebook.db") or "nbgrader_config" in n for n in names)
