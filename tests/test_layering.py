"""The one dependency rule of DESIGN 4: core imports no framework, backends never import each other,
the CLI imports backends lazily, so `ddgan --help` works with neither framework installed."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'tinygrad', 'safetensors'):
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
"""


def _run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_core_imports_without_any_framework():
    code = (
        "import pkgutil, importlib, ddgan_core\n"
        "names = [m.name for m in pkgutil.walk_packages(ddgan_core.__path__, 'ddgan_core.')]\n"
        "[importlib.import_module(n) for n in names]\n"
        "print(len(names))\n"
    )
    result = _run_blocked(code)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 8


def test_cli_help_works_without_any_framework():
    result = _run_blocked("import sys; sys.argv = ['ddgan', '--help']\nfrom cli.main import app\napp()")
    assert result.returncode == 0, result.stderr
    assert "schedule" in result.stdout


def _top_level_imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _all_imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _roots(names: set[str]) -> set[str]:
    return {n.split(".")[0] if not n.startswith("backends.") else ".".join(n.split(".")[:2]) for n in names}


def test_static_layering():
    forbidden = {
        "ddgan_core": {"torch", "tinygrad", "backends.torch_cuda", "backends.tinygrad", "cli"},
        "backends/torch_cuda": {"tinygrad", "backends.tinygrad", "cli"},
        "backends/tinygrad": {"torch", "backends.torch_cuda", "cli"},
    }
    for folder, banned in forbidden.items():
        for path in (ROOT / folder).rglob("*.py"):
            hits = _roots(_all_imports(path)) & banned
            assert not hits, f"{path.relative_to(ROOT)} imports {hits}"
    for path in (ROOT / "cli").rglob("*.py"):
        hits = _roots(_top_level_imports(path)) & {"torch", "tinygrad", "backends.torch_cuda", "backends.tinygrad"}
        assert not hits, f"{path.relative_to(ROOT)} imports {hits} at module level"
