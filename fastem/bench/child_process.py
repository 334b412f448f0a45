"""Fresh Python interpreters for the measurements that need one (peak memory, first fit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import fastem


def _child_environment(extra=None) -> dict:
    """The environment for a child process that can import this copy of fastem."""
    environment = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(fastem.__file__)))
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, environment.get("PYTHONPATH")]))
    environment.update(extra or {})
    return environment


def _run_child(code: str, spec: dict, extra_environment=None) -> dict:
    """Run ``code`` in a fresh interpreter with ``spec`` as JSON on stdin; it prints one JSON line last."""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=_child_environment(extra_environment),
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child process failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def cold_then_warm(code: str, spec: dict) -> tuple[dict, dict]:
    """Run ``code`` in a fresh interpreter with an empty Numba cache, then again with the cache it filled."""
    with tempfile.TemporaryDirectory(prefix="fastem-bench-numba-") as cache_dir:
        environment = {"NUMBA_CACHE_DIR": cache_dir}
        cold = _run_child(code, spec, environment)
        warm = _run_child(code, spec, environment)
    return cold, warm
