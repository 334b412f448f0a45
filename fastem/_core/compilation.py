"""Saying when Numba compiles, and compiling ahead of time.

Numba compiles a kernel the first time it is called with new argument types,
then stores the machine code in its on-disk cache; later processes load it
instead. Loading takes milliseconds, compiling seconds, so users deserve to
know which one is happening. Numba reports real compilations (never cache
loads) as ``numba:compile`` events; both tools here listen to them.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

from numba.core import event


class _AnnounceOnce(event.Listener):
    """Print a message at the start of the first compilation it hears of."""

    def __init__(self, message: str, stream):
        self.message = message
        self.stream = stream
        self._lock = threading.Lock()
        self.announced = False

    def on_start(self, event_):
        with self._lock:
            if self.announced:
                return
            self.announced = True
        print(self.message, file=self.stream or sys.stdout, flush=True)

    def on_end(self, event_):
        pass


@contextlib.contextmanager
def announce_compilation(message: str, enabled: bool = True, stream=None):
    """Print ``message`` once, before the first kernel that compiles inside the block.

    Nothing is printed when every kernel is already compiled in this process
    or loaded from Numba's disk cache, nor when ``enabled`` is false. Numba's
    event listeners are process-wide, so a compilation started meanwhile by
    another thread also triggers the message.
    """
    if not enabled:
        yield
        return
    with event.install_listener("numba:compile", _AnnounceOnce(message, stream)):
        yield


class _ProgressLines(event.Listener):
    """One line per top-level compilation (a kernel called from Python), with its time."""

    def __init__(self, stream):
        self.stream = stream
        self.depth = 0
        self.started = []
        self.compiled = []

    def on_start(self, event_):
        if self.depth == 0:
            self.started.append(time.perf_counter())
        self.depth += 1

    def on_end(self, event_):
        self.depth -= 1
        if self.depth:
            return  # a helper compiled for the kernel being compiled: part of its time
        seconds = time.perf_counter() - self.started.pop()
        name = event_.data["dispatcher"].py_func.__qualname__
        self.compiled.append((name, seconds))
        print(f"    compiled {name} in {seconds:.1f} s", file=self.stream, flush=True)


def compile_ahead(tasks, stream=None) -> list:
    """Run each ``(label, function)`` of ``tasks``, printing what each compiles; return what compiled.

    A task is a small call that needs the kernels of one specialisation (a
    tiny fit, for instance): calling it compiles them and stores them in the
    disk cache, or finds them there already. Returns ``(label, [(kernel,
    seconds), ...], seconds)`` per task.
    """
    stream = stream or sys.stdout
    done = []
    for number, (label, function) in enumerate(tasks, start=1):
        print(f"[{number}/{len(tasks)}] {label}", file=stream, flush=True)
        listener = _ProgressLines(stream)
        start = time.perf_counter()
        with event.install_listener("numba:compile", listener):
            function()
        seconds = time.perf_counter() - start
        if not listener.compiled:
            print(f"    already compiled (cache) in {seconds:.1f} s", file=stream, flush=True)
        done.append((label, listener.compiled, seconds))
    return done
