"""The README's Python API block runs as written on the tiny default model."""

import re

from tests.support import REPO


def test_readme_python_block_trains_and_saves_an_adapter(tiny_model_dir, tmp_path, monkeypatch):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Python API\n\n```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(REPO)
    namespace = {"MODEL_DIR": str(tiny_model_dir), "OUTPUT_DIR": str(tmp_path / "out")}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["trainer"].state.global_step == 4
    from safetensors.torch import load_file

    adapter = load_file(tmp_path / "out/adapter_model.safetensors")
    assert any(
        "lora_B" in name and tensor.abs().sum() > 0 for name, tensor in adapter.items()
    )  # trained away from zero
