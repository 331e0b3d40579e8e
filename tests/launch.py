"""``accelerate launch`` of an ``egt`` command with 2 CPU processes (gloo), for the scale-out tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CPU_2PROC = ["--config_file", "configs/accelerate/cpu_2proc.yaml"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_egt(
    egt_args: list[str], launcher: list[str] = CPU_2PROC, timeout: float = 240, module: str = "egt.cli"
) -> None:
    """Run ``accelerate launch <launcher> -m <module> <egt_args>`` from the repository root, one thread
    per process and no GPU; fail the test with the tail of its output unless it exits 0. ``module`` is
    ``egt.cli`` or a module of tests/ that wraps it (tests/ is on the processes' path)."""
    launch(["-m", module, *egt_args], launcher, timeout)


def launch(target: list[str], launcher: list[str] = CPU_2PROC, timeout: float = 240) -> None:
    """``accelerate launch <launcher> <target>`` (``-m module args`` or ``script.py args``), as :func:`launch_egt`."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *launcher,
        "--num_cpu_threads_per_process",
        "1",
        "--main_process_port",
        str(free_port()),
        *target,
    ]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "EGT_PROGRESS": "0",
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
