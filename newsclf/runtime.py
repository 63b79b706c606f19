"""The one place that configures the process for Paddle; nothing here runs at import time.

- :func:`configure_paddle` imports Paddle quietly (no glog lines, no import warnings) and sets
  the Paddle flags newsclf's model needs through ``paddle.set_flags``, once per process.
  :mod:`newsclf.model.layers` (the network), training, the inference engine and so ``Predictor``
  and every command that runs a model call it before Paddle does any work. Importing Paddle
  replaces the process's SIGTERM handler (and, in some versions, SIGINT's) with one that prints
  a C++ "FatalError" banner on standard output and aborts; this import keeps the handlers the
  process had, so importing Paddle through newsclf (from the main thread, the only one that can
  set handlers) leaves signal handling as it was.
- :func:`check_device` and :func:`use_device` choose what Paddle computes on: the CPU (the
  default) or a GPU of a ``paddlepaddle-gpu`` install.
- :func:`math_threads` runs a block with Paddle's CPU math on more than one thread (Paddle's
  default is one); the number changes a result's last bits, so training fixes it per model.
- :func:`signals_held_back` defers SIGINT and SIGTERM over a block of code that must not be
  cut short (that import, ONNX Runtime's; starting a worker process). :class:`Terminated` is
  how SIGTERM stops newsclf: raised like Ctrl-C's KeyboardInterrupt.
- :func:`tune_allocator` raises glibc's malloc thresholds. Paddle's CPU tensors come from malloc,
  and glibc serves blocks over 128 KiB with fresh mmaps, so every activation costs page faults
  (about half the run time of a small encoder). Keeping freed blocks in the process removes
  that cost but holds on to up to 512 MiB of freed memory for the life of the process, so it is
  applied only to processes newsclf owns (the ``newsclf`` command and its worker processes).
  Long-running programs of your own may call it too if that trade suits them.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import warnings
from contextlib import contextmanager

# Paddle's strided-view kernels make matmul on transposed tensors (every attention head) 10-30x
# slower on CPU; contiguous kernels are what this model needs.
PADDLE_FLAGS = {"FLAGS_use_stride_kernel": False}

_configured = False
_allocator_tuned = False


def configure_paddle():
    """Import Paddle quietly and set the flags newsclf needs (idempotent); returns ``paddle``."""
    global _configured
    if not _configured:
        quiet = "GLOG_minloglevel" not in os.environ and "paddle" not in sys.modules
        if quiet:  # glog reads this once, when Paddle's core library loads
            os.environ["GLOG_minloglevel"] = "2"
        try:
            with warnings.catch_warnings(), signals_held_back():
                warnings.simplefilter("ignore")  # Paddle warns about ccache on import
                import paddle as paddle_module
        finally:
            if quiet:  # leave the environment (and so child processes) as it was
                os.environ.pop("GLOG_minloglevel", None)
        paddle_module.set_flags(PADDLE_FLAGS)
        _configured = True
    import paddle as paddle_module

    return paddle_module


def check_device(device) -> str:
    """``device`` (``cpu``, ``gpu`` or ``gpu:N``), refused unless Paddle can compute on it here:
    a GPU needs Paddle's GPU build (``paddlepaddle-gpu``) and that GPU. Paddle is imported only
    for a GPU."""
    from newsclf.errors import NewsclfError

    if not isinstance(device, str) or not re.fullmatch(r"cpu|gpu(:\d+)?", device):
        raise NewsclfError(f"device must be cpu, gpu or gpu:N (N from 0), not {device!r}")
    if device != "cpu":
        paddle = configure_paddle()
        if not paddle.device.is_compiled_with_cuda():
            raise NewsclfError(f"--device {device}: this Paddle ({paddle.__version__}) is the CPU "
                               "build; install paddlepaddle-gpu for the machine's CUDA version, "
                               "or train on the CPU (--device cpu)")
        count = paddle.device.cuda.device_count()
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            raise NewsclfError(f"--device {device}: this machine has "
                               + (f"{count} GPU(s), gpu:0 to gpu:{count - 1}" if count
                                  else "no GPU that Paddle sees"))
    return device


def use_device(device: str) -> None:
    """Paddle's tensors of this process from now on on ``device`` (checked by
    :func:`check_device`)."""
    configure_paddle().set_device(device)


HELD_BACK_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt, so whatever cleans up after Ctrl-C
    (partial output removed, checkpoints kept, worker processes stopped) runs for it too. The
    ``newsclf`` command raises it for its own SIGTERM; worker pools raise it when their workers
    ended by SIGTERM (a signal to the process group reaches them too, and may end them before
    this process has handled its own)."""


def raise_terminated(signum, frame):
    """A SIGTERM handler: raise :class:`Terminated`."""
    raise Terminated()


@contextmanager
def math_threads(threads: int):
    """Run the block with Paddle's CPU math (matrix products, oneDNN kernels) on ``threads``
    threads of this process, then on one again (Paddle's default, ``FLAGS_paddle_num_threads``)."""
    paddle = configure_paddle()
    paddle.base.core.set_num_threads(threads)
    try:
        yield
    finally:
        paddle.base.core.set_num_threads(1)


@contextmanager
def signals_held_back():
    """Hold SIGINT and SIGTERM back during the block, then handle those that arrived with the
    handlers in place before it.

    They are blocked in this thread (threads and processes started meanwhile inherit the block)
    and, in the main thread, where Python runs signal handlers, recorded instead of handled.
    The handlers are put back at the end, down to the C level, where code run in the block
    (Paddle's import) may have replaced them. In other threads Python's handlers cannot be
    changed: the ones in place stay in charge.
    """
    received, handlers = [], {}
    if threading.current_thread() is threading.main_thread():
        for signum in HELD_BACK_SIGNALS:
            if signal.getsignal(signum) is not None:  # None: not set from Python, not ours
                handlers[signum] = signal.signal(signum, lambda number, frame:
                                                 received.append(number))
    blocking = hasattr(signal, "pthread_sigmask")
    if blocking:
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_BACK_SIGNALS)
    try:
        yield
    finally:
        for signum, handler in handlers.items():  # before unblocking: blocked ones are pending
            signal.signal(signum, handler)
        if blocking:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        for signum in received:
            signal.raise_signal(signum)


def tune_allocator() -> bool:
    """Raise glibc's mmap threshold to 32 MiB and its trim threshold to 512 MiB for this process
    (see the module docstring). Returns whether it applied (glibc on Linux only)."""
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): leave the allocator alone
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    mallopt(m_trim_threshold, 512 * 1024 * 1024)
    _allocator_tuned = True
    return True
