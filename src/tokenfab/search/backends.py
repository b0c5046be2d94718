"""Where candidate evaluations run: local worker processes (default) or a Ray cluster (`--backend ray`).

Both map one picklable function over a list of tasks and return results in task order, so the
search, the store and the answers are identical whichever backend ran them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tokenfab.forked import die_with_parent

BACKENDS = ("local", "ray")


class BackendError(ValueError):
    """A backend that cannot start (Ray not installed, address unreachable)."""


class LocalBackend:
    """A pool of worker processes (`jobs` of them; 1 runs in this process)."""

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = max(1, jobs or min(os.cpu_count() or 1, 4))
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        if self.jobs == 1 or len(tasks) <= 1:
            return map(fn, tasks)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.jobs, initializer=die_with_parent, initargs=(os.getpid(),))
        return self._pool.map(fn, tasks)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


RAY_CONNECT_TIMEOUT_S = 10.0


def _reachable(address: str) -> None:
    """A `host:port` (or `ray://host:port`) address must answer a TCP connection within the timeout: Ray itself
    waits for minutes on an address nobody answers."""
    import socket
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return   # "auto" and the like: Ray resolves them itself
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=RAY_CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise BackendError(f"backend ray: nothing answers at {address!r} within {RAY_CONNECT_TIMEOUT_S:g} s "
                           f"({err.strerror or err})") from None


class RayBackend:
    """Ray tasks: `address` joins an existing cluster, none starts a local instance."""

    def __init__(self, address: str | None = None, jobs: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise BackendError("backend ray: Ray is not installed; pip install 'tokenfab[cluster]'") from None
        self.ray = ray
        self._started = False
        if not ray.is_initialized():
            if address:
                _reachable(address)
            kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": jobs or os.cpu_count() or 1}
            try:
                ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **kwargs)
            except Exception as err:  # noqa: BLE001 (Ray raises many kinds; one line for the user)
                raise BackendError(f"backend ray: cannot start or join the cluster: {str(err).splitlines()[0]}") \
                    from None
            self._started = True
        self._remote: dict[Callable, Any] = {}

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        remote = self._remote.setdefault(fn, self.ray.remote(fn))
        refs = [remote.remote(t) for t in tasks]
        for ref in refs:
            yield self.ray.get(ref)

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False


def make_backend(name: str, address: str | None = None, jobs: int | None = None) -> LocalBackend | RayBackend:
    if name == "local":
        return LocalBackend(jobs)
    if name == "ray":
        return RayBackend(address, jobs)
    raise BackendError(f"backend {name!r}: allowed {', '.join(BACKENDS)}")
