import os
import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
THUCNEWS = ROOT.parent / "shared" / "data" / "thucnews-headlines"

os.environ.setdefault("GLOG_minloglevel", "2")


def pytest_configure(config):
    """A shell starts a background job (a CI runner's, ``cmd &``) with SIGINT ignored, and
    every process it starts inherits that: the tests that stop newsclf as Ctrl-C does need
    SIGINT to be Python's KeyboardInterrupt again, here and in the processes started from
    here."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _onnx_extra_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None and find_spec("paddle2onnx") is not None


# the engine a freshly exported model runs on by default
FAST_BACKEND = "onnx" if _onnx_extra_installed() else "inference"


def run_cli(*args, cwd=None, timeout=600, in_process=True):
    """Run the ``newsclf`` command (this checkout's, from any ``cwd``); returns
    CompletedProcess. In this process through :func:`newsclf.cli.main`, as ``python -m newsclf``
    runs it (no new interpreter, no new import of Paddle), unless ``in_process=False`` or a
    ``NEWSCLF_*`` environment variable is set (``NEWSCLF_TESTS_IN_SUBPROCESS=1`` for all of
    them): a real subprocess, for what a process boundary decides (signals, the exit of a
    crashed or killed process, ``timeout``)."""
    import os
    import subprocess

    # a NEWSCLF_ variable (a crash at the N-th write of the process...) is for a process of
    # its own
    if not in_process or any(name.startswith("NEWSCLF_") for name in os.environ):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        return subprocess.run([sys.executable, "-m", "newsclf", *map(str, args)],
                              capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout,
                              env=env)
    return _run_in_process([str(arg) for arg in args], cwd or ROOT)


def _run_in_process(argv: list[str], cwd):
    """:func:`run_cli` in this process: a CompletedProcess of its exit status and output."""
    import io
    import os
    import subprocess
    import traceback
    from contextlib import redirect_stderr, redirect_stdout

    from newsclf.cli import main

    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's refusals, --help, --version
                code = exc.code if isinstance(exc.code, int) else (exc.code is not None)
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
            except BaseException:  # what the interpreter would print for an uncaught error
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["newsclf", *argv], code, out.getvalue(), err.getvalue())


def sample_head(folder: Path, name: str, lines: int) -> Path:
    """A file in ``folder`` holding the first ``lines`` lines of the sample file ``name``: its
    first edition had 400 training and 120 dev headlines, and the tests whose settings were
    chosen for what they do on those (an early stop, a student kept...) train on them."""
    text = (SAMPLE / name).read_text(encoding="utf-8").splitlines(keepends=True)
    path = folder / f"{lines}-{name}"
    path.write_text("".join(text[:lines]), encoding="utf-8")
    return path


def assert_user_error(result, *fragments):
    """A one-line error on stderr (exit 2, no traceback) holding every fragment; the only other
    lines allowed are those saying how a data file was read."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().split("\n") if ": read as " not in line]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="session")
def tiny_config():
    from newsclf.config import TrainConfig

    return TrainConfig(d_model=64, n_heads=2, n_layers=1, d_ff=128, epochs=6, batch_size=16,
                       lr=2e-3, min_freq=1, seed=7, ensemble_size=1)


@pytest.fixture(scope="session")
def sample_model(tmp_path_factory, tiny_config):
    """A small model trained once on data/sample, shared by the tests that only read it."""
    from newsclf.data import read_labelled
    from newsclf.training import train

    out = tmp_path_factory.mktemp("models") / "sample"
    train(tiny_config, read_labelled(SAMPLE / "train.tsv"), read_labelled(SAMPLE / "dev.tsv"),
          out, progress=False, log=lambda message: None)
    return out


@pytest.fixture(scope="session")
def predictor(sample_model):
    from newsclf import Predictor

    return Predictor.from_dir(sample_model)


needs_thucnews = pytest.mark.skipif(
    not (THUCNEWS / "train.txt").is_file(),
    reason=f"THUCNews headlines not found at {THUCNEWS} (only present beside the project in CI)")
