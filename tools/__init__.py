"""Project tooling outside the installed library: the fork-view patch generator and the transfer experiment.

Run from the repository root (``python -m scripts.make_patches``, ``python -m scripts.run_transfer_experiment``).
"""
