"""A command's peak memory: the memory of its whole process tree, sampled as it runs.

Each process counts its proportional set size (PSS: pages shared with others split between them), so a forked
data-loader worker that shares its parent's pages does not count them twice, as summed RSS would."""

import subprocess
import threading
import time


def tree_pss(process) -> int:
    """Bytes of ``process`` (a psutil.Process) and all its descendants now."""
    import psutil

    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_full_info().pss
        except psutil.Error:  # it ended between the listing and the reading
            pass
    return total


def run_with_peak_memory(command, timeout, interval=0.5, **popen_options):
    """``(returncode, output, peak bytes)`` of ``command``, stdout and stderr together."""
    import psutil

    started = time.monotonic()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen_options) as process:
        watched, peak = psutil.Process(process.pid), 0
        chunks = []
        reader = threading.Thread(target=lambda: chunks.append(process.stdout.read()), daemon=True)
        reader.start()
        while process.poll() is None:
            peak = max(peak, tree_pss(watched))
            if time.monotonic() - started > timeout:
                # The whole tree: a grandchild left alive would hold the output pipe open, and the reader with it.
                for member in [*watched.children(recursive=True), watched]:
                    try:
                        member.kill()
                    except psutil.Error:
                        pass
                raise subprocess.TimeoutExpired(command, timeout)
            time.sleep(interval)
        reader.join()
    output = b"".join(chunks).decode(errors="replace")
    return process.returncode, output, peak
