"""Importing newsclf changes nothing in the process; the runtime is configured in one place; the
package's import graph has no cycle."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "newsclf"


def run_python(code, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGS_", "GLOG_"))}
    env.update(env_extra or {})
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


# Records every use of glibc's mallopt and of os.umask made after it is installed.
SPY = """
import ctypes, os
calls = []
_CDLL = ctypes.CDLL
class SpyCDLL(_CDLL):
    def __getattr__(self, name):
        if name == "mallopt":
            calls.append("mallopt")
        return _CDLL.__getattr__(self, name)
ctypes.CDLL = SpyCDLL
_umask = os.umask
def umask(mask):
    calls.append("umask")
    return _umask(mask)
os.umask = umask
"""


def test_importing_every_module_leaves_the_process_alone():
    out = run_python(SPY + """
import sys
import newsclf, newsclf.predict, newsclf.predictor, newsclf.training, newsclf.cli
import newsclf.estimator, newsclf.explain, newsclf.evaluation, newsclf.modeldir, newsclf.files
print(os.environ.get("FLAGS_use_stride_kernel"), os.environ.get("GLOG_minloglevel"),
      "paddle" in sys.modules, calls)
""")
    assert out.split() == ["None", "None", "False", "[]"]


def test_importing_prediction_sets_no_paddle_flag_in_the_environment():
    out = run_python("import os, newsclf.predict; print(os.environ.get('FLAGS_use_stride_kernel'))")
    assert out.strip() == "None"


def test_a_predictor_sets_paddle_flags_without_touching_the_environment_or_allocator(
        sample_model):
    out = run_python(SPY + f"""
from newsclf import Predictor
predictor = Predictor.from_dir({str(sample_model)!r}, backend="dynamic")
predictor.predict(["央行宣布下调存款准备金率"])
import paddle
print(paddle.get_flags(["FLAGS_use_stride_kernel"])["FLAGS_use_stride_kernel"],
      os.environ.get("FLAGS_use_stride_kernel"), os.environ.get("GLOG_minloglevel"), calls)
""")
    assert out.split() == ["False", "None", "None", "[]"]


def test_the_allocator_is_tuned_only_on_request():
    out = run_python(SPY + """
from newsclf.runtime import tune_allocator
print(tune_allocator(), calls)
""")
    assert out.split() == ["True", "['mallopt']"]


def test_files_are_written_with_the_process_umask(tmp_path):
    from newsclf.files import write_atomic

    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "a.txt", "content")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict:
    """Module -> the newsclf modules it imports anywhere (top level or inside functions)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                    + ([node.module] if node.module else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert "newsclf.predictor" in graph["newsclf.predict"]  # the graph is really read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", ["newsclf.cli", "newsclf.training", "newsclf.evaluation",
                                    "newsclf.estimator", "newsclf.predict"])
def test_fast_paths_do_not_import_paddle(module):
    assert run_python(f"import sys, {module}; print('paddle' in sys.modules)").strip() == "False"
