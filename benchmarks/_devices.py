"""One XLA CPU device per core, for the benchmarks that spread independent fits
over devices (multi-start, batch fits). Import before anything imports jax:
``XLA_FLAGS`` is read once, when the backend starts. A device count already
in ``XLA_FLAGS`` is kept. A single fit runs on one device either way."""

import os

FLAG = "--xla_force_host_platform_device_count"


def use_all_cores() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={os.cpu_count() or 1}".strip()
