"""`python3 course.py bundle`: the students' copy holds every lecture and every assignment as nbgrader
releases it (no solution code, no hidden tests), and nothing from the instructor's side."""
import importlib.util
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
    archive = classroom.write_bundle(out, wheel=False)  # the wheel build needs PyPI (build isolation)
    assert archive == out.with_suffix(".zip") and archive.exists()
    return out


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
