"""One call run in a forked child process while the parent goes on, and the start-up every tokenfab child runs.

Why: a capacity query's two longest simulations (the full-length confirmation at the rate just under
saturation, and the probe just above it) do not depend on each other; on a two-core machine running them at
once halves the query's time without changing its answer. Fork shares the parent's state (the request sample,
the step-time tables) without pickling it; only the result comes back through a pipe.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_LIVE: weakref.WeakSet[Background[Any]] = weakref.WeakSet()   # children started and not yet collected or stopped


def die_with_parent(parent: int) -> None:
    """Child start-up: on Linux ask the kernel for SIGTERM when the parent dies (a killed parent must not leave
    its children running); everywhere, a child whose parent is already gone exits."""
    if os.getppid() != parent:
        os._exit(0)
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:   # the parent died between fork and prctl
        os._exit(0)


class Background(Generic[T]):
    """`fn()` computed in a forked child (or, where fork is unavailable or not allowed, on `result()`)."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn: Callable[[], T] | None = fn
        self._proc: Any = None
        held = _hold_alarm()   # a budget's alarm must not land between the child's start and its owner's hold on it
        try:
            try:
                ctx = multiprocessing.get_context("fork")
                self._recv, send = ctx.Pipe(duplex=False)
                # daemonic: a child whose answer nobody collects is stopped at exit, not waited for
                self._proc = ctx.Process(target=_child, args=(fn, send, os.getpid()), daemon=True)
                self._proc.start()
                send.close()
            except (ValueError, AssertionError, OSError):   # no fork here, or a daemonic parent may have no children
                self._proc = None
            if self._proc is not None:
                _LIVE.add(self)
        finally:
            if held is not None:
                try:
                    signal.pthread_sigmask(signal.SIG_SETMASK, held)   # an alarm held back meanwhile is raised here
                except BaseException:
                    self.cancel()
                    raise

    def result(self) -> T:
        """The call's value (its exception re-raised); waits for the child."""
        if self._proc is None:
            assert self._fn is not None
            return self._fn()
        try:
            ok, value = self._recv.recv()
        except EOFError:
            self.cancel()
            raise RuntimeError("a forked simulation ended without an answer (killed?)") from None
        except BaseException:   # interrupted (a time budget): the child would wait for ever to hand its answer over
            self.cancel()
            raise
        self._release()
        if not ok:
            raise value
        return value

    def cancel(self) -> None:
        """Stop the child: its answer is not needed. A time budget's alarm (`predict --budget-s` rings every
        0.2 s) is held back until the child is gone, so it cannot cut the clean-up short."""
        if self._proc is not None:
            held = _hold_alarm()
            try:
                self._proc.terminate()
                self._release()
            finally:
                if held is not None:
                    signal.pthread_sigmask(signal.SIG_SETMASK, held)
        self._fn = None

    def _release(self) -> None:
        """Reap the child that has answered or been told to stop, and forget it."""
        self._proc.join()
        self._recv.close()
        self._proc = None
        _LIVE.discard(self)

    def __enter__(self) -> Background[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        """Leaving the block stops a child whose answer was not collected (an error, a time budget)."""
        self.cancel()


def stop_all() -> None:
    """Stop every child still running (a caller that gave up on its answers: a query past its time budget)."""
    for job in list(_LIVE):
        job.cancel()


def _hold_alarm() -> Any:
    """Block SIGALRM in this thread; returns the previous mask (None where signal masks do not exist)."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})


def _child(fn: Callable[[], Any], send: Any, parent: int) -> None:
    signal.setitimer(signal.ITIMER_REAL, 0.0)   # the parent's time budget stays the parent's
    die_with_parent(parent)
    try:
        send.send((True, fn()))
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent, which re-raises it
        send.send((False, err))
    finally:
        send.close()
        os._exit(0)


__all__ = ["Background", "die_with_parent", "stop_all"]
