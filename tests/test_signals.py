"""Signals and worker processes, through the real command: SIGTERM and SIGINT (to the process
group, as ``timeout`` and a terminal's Ctrl-C send them) stop ``predict``, ``evaluate`` and
``train`` with one line, exit 143/130, no partial output and nothing of Paddle's; a worker killed
by the kernel is one clear error; ``--workers`` is capped to what can help; a script without a
main guard runs once. Each run gets its own process group, killed at the end of its test."""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLE

pytestmark = pytest.mark.slow

PADDLE_NOISE = ("FatalError", "C++ Traceback", "Termination signal", "Traceback")
TRAIN = ["--d-model", "32", "--n-heads", "2", "--n-layers", "1", "--d-ff", "64",
         "--batch-size", "16", "--min-freq", "1", "--tokenizer", "char", "--epochs", "200",
         "--patience", "200", "--no-export", "--no-progress"]


@pytest.fixture(scope="module")
def sample_texts():
    lines = (SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines if "\t" in line]


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory, sample_texts):
    """400,000 rows: 80 chunks, far more than any run here gets through before it is stopped,
    even when the test itself is starved of CPU on a loaded machine."""
    path = tmp_path_factory.mktemp("input") / "big.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows((i, sample_texts[i % len(sample_texts)]) for i in range(400_000))
    return path


@pytest.fixture
def started():
    """Start ``newsclf`` commands, each in a process group of its own (killed at the end)."""
    processes = []

    def start(*args, stdout=subprocess.PIPE, cwd=ROOT):
        process = subprocess.Popen([sys.executable, "-m", "newsclf", *map(str, args)],
                                   stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=cwd,
                                   start_new_session=True)
        processes.append(process)
        return process

    yield start
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()


def wait_until(condition, process, what, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}: {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout}s")
        time.sleep(0.02)


def without_read_lines(stderr: str) -> str:
    """stderr without the lines saying how a data file was read."""
    return "".join(line for line in stderr.splitlines(keepends=True) if ": read as " not in line)


def finish(process, timeout=60):
    """(stdout, stderr) of ``process`` once it has ended; fails if it does not end in time."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"still running {timeout}s later; stderr: {stderr[-2000:]}")


def worker_processes(pid):
    """The spawned worker processes of process ``pid``."""
    workers = set()
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids = children.read_text().split()
        except OSError:
            continue
        for child in pids:
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    workers.add(int(child))
            except OSError:
                pass
    return workers


def running(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def still_running(pids, timeout=30):
    deadline = time.monotonic() + timeout
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return sorted(pid for pid in pids if running(pid))


def engine_loaded(pid):
    """Whether the process has loaded the library that runs the model (ONNX Runtime or
    Paddle)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    return "onnxruntime" in maps or "libpaddle" in maps


def partial_output(folder, process):
    return folder / f".out.csv.partial-{socket.gethostname()}-{process.pid}"


def has_content(path):
    return path.exists() and path.stat().st_size > 0


WHEN = {"starting": "both workers started", "working": "labelled rows written"}


def start_labelling(started, sample_model, big_csv, folder, when):
    """``predict --input big.csv --output folder/out.csv --workers 2``, once both workers have
    started (they are loading Paddle and the model) or the first rows are written."""
    folder.mkdir()
    process = started("predict", "--model", sample_model, "--input", big_csv, "--output",
                      folder / "out.csv", "--no-progress", "--workers", "2")
    if when == "starting":
        wait_until(lambda: len(worker_processes(process.pid)) == 2, process, WHEN[when])
    else:
        wait_until(lambda: has_content(partial_output(folder, process)), process, WHEN[when])
    return process


def assert_no_noise(*outputs):
    for output in outputs:
        for noise in PADDLE_NOISE:
            assert noise not in output, output[-3000:]


# --- case 1 and 2: SIGTERM and Ctrl-C -----------------------------------------------------------

@pytest.mark.parametrize("when", list(WHEN))
@pytest.mark.parametrize("signum,status,word", [(signal.SIGTERM, 143, "terminated"),
                                                (signal.SIGINT, 130, "interrupted")],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_group_stops_predict_with_workers_in_one_line(
        tmp_path, started, sample_model, big_csv, signum, status, word, when):
    folder = tmp_path / "out"
    process = start_labelling(started, sample_model, big_csv, folder, when)
    workers = worker_processes(process.pid)
    assert len(workers) == 2
    os.killpg(process.pid, signum)
    stdout, stderr = finish(process)
    assert process.returncode == status, stderr[-3000:]
    assert without_read_lines(stderr) == f"newsclf predict: {word}\n"
    assert stdout == ""
    assert list(folder.iterdir()) == []  # no partial output, no output
    assert still_running(workers) == []



def test_sigterm_to_one_worker_stops_predict_as_terminated(tmp_path, started, sample_model,
                                                           big_csv):
    """The pool may find its workers ended by a signal to the process group before this
    process has handled its own SIGTERM: a worker ended by SIGTERM stops the command as
    terminated, whichever comes first."""
    folder = tmp_path / "out"
    process = start_labelling(started, sample_model, big_csv, folder, "working")
    workers = worker_processes(process.pid)
    assert len(workers) == 2
    os.kill(min(workers), signal.SIGTERM)  # this worker only: the command never receives one
    stdout, stderr = finish(process)
    assert process.returncode == 143, stderr[-3000:]
    assert without_read_lines(stderr) == "newsclf predict: terminated\n"
    assert stdout == ""
    assert list(folder.iterdir()) == []
    assert still_running(workers) == []


def test_sigterm_while_writing_to_stdout_leaves_only_csv_rows(tmp_path, started, sample_model,
                                                              big_csv):
    stdout_path = tmp_path / "stdout.csv"
    with open(stdout_path, "w", encoding="utf-8") as stdout:
        process = started("predict", "--model", sample_model, "--input", big_csv, "--output", "-",
                          "--no-progress", stdout=stdout)
        # bytes, not text: the file is read while being written, possibly mid-character
        wait_until(lambda: stdout_path.read_bytes().count(b"\n") > 1000, process,
                   "rows on standard output")
        process.send_signal(signal.SIGTERM)  # as `kill` sends it: to this process only
        _, stderr = finish(process)
    assert process.returncode == 143, stderr[-3000:]
    assert without_read_lines(stderr) == "newsclf predict: terminated\n"
    *whole_lines, _ = stdout_path.read_bytes().split(b"\n")  # the last one may be cut short
    lines = [line.decode("utf-8") for line in whole_lines]
    assert_no_noise("\n".join(lines))
    header, *rows = list(csv.reader(lines))
    assert header == ["id", "text", "pred_label", "pred_score", "error"]
    assert all(len(row) == len(header) for row in rows)


def test_sigterm_stops_evaluate_in_one_line(tmp_path, started, sample_model, sample_texts):
    data = tmp_path / "big.tsv"
    data.write_text("".join(f"{text}\t体育\n" for text in sample_texts * 200), encoding="utf-8")
    reports = tmp_path / "reports"
    process = started("evaluate", "--model", sample_model, "--data", data, "--output", reports)
    wait_until(lambda: engine_loaded(process.pid), process, "the engine loaded")
    os.killpg(process.pid, signal.SIGTERM)
    stdout, stderr = finish(process)
    assert process.returncode == 143, stderr[-3000:]
    assert without_read_lines(stderr) == "newsclf evaluate: terminated\n"
    assert stdout == ""
    assert not reports.exists()


@pytest.mark.parametrize("members", [1, 2], ids=["one-model", "ensemble-in-workers"])
def test_sigterm_stops_training_and_keeps_the_checkpoint(tmp_path, started, members):
    out = tmp_path / "m"
    process = started("train", "--train", SAMPLE / "train.tsv", "--dev", SAMPLE / "dev.tsv",
                      "--output", out, "--ensemble-size", members, "--workers", members, *TRAIN)
    states = ([out / "checkpoint" / "state.json"] if members == 1 else
              [out / "checkpoint" / f"member-{m}" / "state.json" for m in (1, 2)])
    for state in states:
        wait_until(state.exists, process, f"{state} written")
    workers = worker_processes(process.pid)
    assert len(workers) == (0 if members == 1 else 2)
    os.killpg(process.pid, signal.SIGTERM)
    stdout, stderr = finish(process)
    assert process.returncode == 143, stderr[-3000:]
    assert stdout == ""
    assert_no_noise(stdout, stderr)
    *_, kept, last = stderr.splitlines()
    assert last == "newsclf train: terminated"
    if members == 1:
        match = re.fullmatch(r"interrupted during epoch \d+: the checkpoint after epoch (\d+) is "
                             r"kept; continue with --resume", kept)
        assert match, stderr
        assert json.loads(states[0].read_text(encoding="utf-8"))["epoch"] == int(match[1])
    else:
        assert kept == ("interrupted: every member's last finished epoch is kept in its "
                        "checkpoint; continue with --resume")
        assert all(json.loads(state.read_text(encoding="utf-8"))["epoch"] >= 1
                   for state in states)
    assert still_running(workers) == []
    assert not list(out.rglob("*.tmp"))



@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_member_ended_by_a_signal_stops_training_in_one_line(tmp_path, started, signum):
    """SIGTERM to one member stops the run as SIGTERM to the command does; SIGKILL (the
    kernel's out-of-memory killer) is one clear error. Either way the checkpoints stay."""
    out = tmp_path / "m"
    process = started("train", "--train", SAMPLE / "train.tsv", "--dev", SAMPLE / "dev.tsv",
                      "--output", out, "--ensemble-size", 2, "--workers", 2, *TRAIN)
    states = [out / "checkpoint" / f"member-{m}" / "state.json" for m in (1, 2)]
    for state in states:
        wait_until(state.exists, process, f"{state} written")
    workers = worker_processes(process.pid)
    assert len(workers) == 2
    killed = min(workers)
    member = 1 + sorted(workers).index(killed)  # started in member order
    os.kill(killed, signum)
    stdout, stderr = finish(process)
    assert stdout == ""
    assert_no_noise(stdout, stderr)
    kept = "every member's last finished epoch is kept in its checkpoint"
    if signum == signal.SIGTERM:
        assert process.returncode == 143, stderr[-3000:]
        assert stderr.splitlines()[-2:] == [f"interrupted: {kept}; continue with --resume",
                                           "newsclf train: terminated"]
    else:
        assert process.returncode == 2, stderr[-3000:]
        assert stderr.splitlines()[-1] == (
            f"newsclf train: error: training ensemble member {member} died (killed by signal "
            f"9, SIGKILL; perhaps out of memory); try fewer --workers; {kept}: continue with "
            "--resume")
    assert still_running(workers) == []
    assert all(json.loads(state.read_text(encoding="utf-8"))["epoch"] >= 1 for state in states)


def test_importing_paddle_through_newsclf_keeps_the_signal_handlers():
    """Paddle's import replaces SIGTERM's handler (and with it Python's) by one that prints a
    C++ banner on standard output; configure_paddle gives the process's handlers back."""
    script = textwrap.dedent("""
        import os, signal
        received = []
        signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
        before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        from newsclf.runtime import configure_paddle
        configure_paddle()
        assert {s: signal.getsignal(s) for s in before} == before
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            received.append("KeyboardInterrupt")
        print(received)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"[{int(signal.SIGTERM)}, 'KeyboardInterrupt']\n"


@pytest.mark.parametrize("ending", ["sys.exit(2)", "None"], ids=["failed", "finished"])
def test_a_member_whose_work_is_over_ends_quietly_on_sigterm_while_it_exits(ending):
    """When one member fails, the others are stopped with SIGTERM; one that has just failed or
    finished too may get it while its interpreter exits, where an exception has nothing left
    to catch it and prints a traceback. Such a member ends by the signal, quietly (here the
    signal comes while it exits, from an exit handler, where an unlucky moment sends it)."""
    script = textwrap.dedent(f"""
        import atexit, os, signal, sys, time
        from newsclf.training import ensemble

        def work_over(*args):
            atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(30)))
            {ending}

        ensemble._train_member_here = work_over
        ensemble._member_process(0, "", None, os.getppid())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert result.stderr == ""


# --- case 3: --workers capped -------------------------------------------------------------------

def test_workers_beyond_cores_and_chunks_are_not_started(tmp_path, started, sample_model):
    src = tmp_path / "in.txt"
    src.write_text((SAMPLE / "dev.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    rows = len(src.read_text(encoding="utf-8").splitlines())
    process = started("predict", "--model", sample_model, "--input", src, "--format", "txt",
                      "--output", tmp_path / "out.csv", "--workers", "16", "--no-progress")
    stdout, stderr = finish(process, timeout=180)
    assert process.returncode == 0, stderr
    cores = len(os.sched_getaffinity(0))
    reasons = ([f"{cores} CPU core{'s' * (cores > 1)}"] if cores < 16 else []) + [
        "1 chunk of up to 5000 rows to share"]
    notice, summary = without_read_lines(stderr).splitlines()
    assert notice == ("newsclf: predicting with 1 worker process instead of 16 "
                      f"({', '.join(reasons)})")
    assert summary.startswith(f"{rows} rows labelled")
    assert len((tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()) == rows + 1


# --- case 4 and 5: a worker killed by the kernel ------------------------------------------------

@pytest.mark.parametrize("when", list(WHEN))
def test_a_killed_worker_is_one_clear_error_and_no_partial_file(tmp_path, started, sample_model,
                                                                big_csv, when):
    """Killed while starting, the other worker is most likely loading its engine when the pool
    stops it."""
    folder = tmp_path / "out"
    process = start_labelling(started, sample_model, big_csv, folder, when)
    workers = worker_processes(process.pid)
    assert len(workers) == 2
    if when == "starting":  # kill the other one as soon as this one is loading its engine
        wait_until(lambda: any(engine_loaded(pid) for pid in workers), process,
                   "the engine loading")
        loading = min(pid for pid in workers if engine_loaded(pid))
        killed = (workers - {loading}).pop()
    else:
        killed = min(workers)
    os.kill(killed, signal.SIGKILL)  # as the kernel's out-of-memory killer does
    stdout, stderr = finish(process)
    assert process.returncode == 2, stderr[-3000:]
    assert without_read_lines(stderr) == (
        "newsclf predict: error: a worker process died (killed by signal 9, "
        "SIGKILL; perhaps out of memory); try fewer --workers\n")
    assert stdout == ""
    assert list(folder.iterdir()) == []
    assert still_running(workers) == []


def test_the_workers_end_when_predict_is_killed_and_the_next_run_removes_its_leftover(
        tmp_path, started, sample_model, big_csv, sample_texts):
    folder = tmp_path / "out"
    process = start_labelling(started, sample_model, big_csv, folder, "working")
    workers = worker_processes(process.pid)
    assert len(workers) == 2
    os.kill(process.pid, signal.SIGKILL)  # nothing of newsclf runs to stop the workers
    process.wait()
    assert still_running(workers) == []
    leftover = partial_output(folder, process)
    assert has_content(leftover)
    live = folder / f".out.csv.partial-{socket.gethostname()}-{os.getpid()}"  # a run still going: not touched
    live.write_text("rows", encoding="utf-8")
    for path in (leftover, live):
        os.utime(path, (time.time() - 120, time.time() - 120))
    small = tmp_path / "small.txt"
    small.write_text("\n".join(sample_texts[:3]) + "\n", encoding="utf-8")
    again = started("predict", "--model", sample_model, "--input", small, "--output",
                    folder / "out.csv", "--no-progress")
    _, stderr = finish(again, timeout=300)
    assert again.returncode == 0, stderr[-2000:]
    assert f"removed {leftover}, left by an earlier run (process {process.pid}) that was " \
           "killed before its end" in stderr
    assert sorted(path.name for path in folder.iterdir()) == [live.name, "out.csv"]


UNGUARDED = """
import sys
from newsclf.errors import NewsclfError
from newsclf.predict import predict_file

print("script body ran", flush=True)
try:
    predict_file(sys.argv[1], sys.argv[2], sys.argv[3], workers=2, chunk_size=500,
                 progress=False)
except NewsclfError as exc:
    print(exc, flush=True)
"""


def test_a_script_without_main_guard_is_not_rerun_when_a_worker_dies(tmp_path, sample_model,
                                                                      big_csv):
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED, encoding="utf-8")
    folder = tmp_path / "out"
    folder.mkdir()
    process = subprocess.Popen([sys.executable, str(script), str(sample_model), str(big_csv),
                                str(folder / "out.csv")], cwd=ROOT, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        wait_until(lambda: has_content(partial_output(folder, process)), process,
                   "labelled rows written")
        workers = worker_processes(process.pid)
        assert len(workers) == 2
        os.kill(min(workers), signal.SIGKILL)
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert stdout.count("script body ran") == 1, stdout[-2000:]
    assert process.returncode == 0, stderr[-3000:]
    assert stdout.splitlines()[-1].startswith("a worker process died (killed by signal 9")
    assert list(folder.iterdir()) == []
