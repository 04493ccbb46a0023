"""Subprocesses on CPU: a free port, the environment torchrun and the recipe scripts run under, and starting and
waiting for them so that a timeout ends every process a test started."""

import os
import signal
import socket
import subprocess
import sys
import time

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


def start(command, **kwargs):
    """``subprocess.Popen`` in a process group of its own, so that ``wait_all`` can end it with its children (a
    recipe's python under bash, torchrun's ranks)."""
    return subprocess.Popen(command, start_new_session=True, **kwargs)


def wait_all(processes, timeout):
    """Wait for every process started by ``start``, ``timeout`` seconds in all; on a timeout (or any error) end
    every one still running, children included, before raising: nothing goes on using the CPU after its test."""
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run(command, timeout, **kwargs):
    """``subprocess.run(command, capture_output=True, text=True)`` whose timeout ends the whole process group."""
    process = start(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
