"""Subprocesses on CPU: a free port and the environment torchrun and the recipe scripts run under."""

import os
import socket
import sys

from tests.support import REPO


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def cpu_env(**extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=free_port())
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def torchrun_command(*arguments):
    """Two processes on this machine; ``arguments``: torchrun's own options, then the script and its flags."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        free_port(),
        *arguments,
    ]
