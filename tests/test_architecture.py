"""The package's shape: imports run one way between the wings, every module declares its public names,
and the linter (ruff) and type checker (mypy) configured in pyproject.toml pass."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lmmteach"
# Lower layers first: a module may import from its own wing or from a wing listed before it.
WINGS = ["_util", "aov", "lmm", "glmm", "inference", "course"]


def _wing(module: str) -> str:
    """'lmmteach.lmm.model' -> 'lmm'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    """Every lmmteach module imported by the file at ``path`` (top-level and inside functions)."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("lmmteach"):
                yield node.lineno, target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lmmteach"):
                    yield node.lineno, alias.name


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    wing = _wing(_module_name(path))
    rank = WINGS.index(wing)
    for line, target in _imports(path):
        other = _wing(target)
        assert other in WINGS, f"{path.name}:{line} imports {target}, outside the wings {WINGS}"
        assert WINGS.index(other) <= rank, (
            f"{path.relative_to(ROOT)}:{line} imports {target}: the {wing!r} wing may not import from "
            f"{other!r}, which sits above it (order: {' <- '.join(WINGS)})")


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "__init__.py"],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_declares_all(path):
    tree = ast.parse(path.read_text())
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)}
    assert "__all__" in names, f"{path.relative_to(ROOT)} has no __all__"


def test_public_api_is_declared():
    import lmmteach as lt

    missing = [name for name in lt.__all__ if not hasattr(lt, name)]
    assert not missing, f"lmmteach.__all__ names what the package lacks: {missing}"


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: it is in the [test] extra of pyproject.toml")
    return found


def test_ruff():
    out = subprocess.run([_tool("ruff"), "check", "lmmteach", "tests", "course.py", "datasets"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy():
    out = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_former_flat_names_warn_and_anova_is_the_lrt():
    """The modules' names from before the wings still import, with a DeprecationWarning naming the new path;
    ``lt.anova`` is the likelihood-ratio test only; the RM-ANOVA wing is ``lmmteach.aov``, and its old package path
    fails with a message naming the new one."""
    import importlib
    import sys

    import lmmteach as lt

    sys.modules.pop("lmmteach.lrt", None)
    with pytest.warns(DeprecationWarning, match="use lmmteach.inference.lrt"):
        former = importlib.import_module("lmmteach.lrt")
    assert former.chibar_sf is importlib.import_module("lmmteach.inference.lrt").chibar_sf
    with pytest.warns(DeprecationWarning, match="use lmmteach.lmm.covariance"):
        assert lt.covariance.make_structure is importlib.import_module("lmmteach.lmm.covariance").make_structure
    import lmmteach.aov.rmanova as rmanova

    assert lt.anova is importlib.import_module("lmmteach.inference.lrt").anova
    assert lt.aov1rm is rmanova.aov1rm
    with pytest.raises(ModuleNotFoundError, match=r"package lmmteach.anova is now lmmteach.aov \(e.g. lmmteach.aov.rmanova\)"):
        importlib.import_module("lmmteach.anova.rmanova")
    assert lt.anova is importlib.import_module("lmmteach.inference.lrt").anova  # the failed import left it alone
