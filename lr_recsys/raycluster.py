"""Joining or starting Ray, the one distributed engine of the project (explanations, tuning,
the comparison's parallel runs): ``$RAY_ADDRESS`` (or ``address``) joins a cluster unchanged,
otherwise a local Ray starts with this machine's CPUs."""

from __future__ import annotations

import logging
import os
from pathlib import Path


def ensure_ray(
    address: str | None = None, temp_dir: Path | None = None, num_cpus: int | None = None
) -> bool:
    """Initialise Ray unless it already is; returns True when this call started it (the caller
    then owns ``ray.shutdown()``)."""
    import ray

    if ray.is_initialized():
        return False
    # Ray 2.60 enables token auth for local clusters; a laptop run needs none (STACK.md)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    # a busy 2-core machine can need longer than Ray's default to register the local node
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        kwargs = {"_temp_dir": str(Path(temp_dir).resolve())} if temp_dir else {}
        ray.init(
            num_cpus=num_cpus or max(2, os.cpu_count() or 2),
            include_dashboard=False,
            log_to_driver=False,
            **kwargs,
        )
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return True
