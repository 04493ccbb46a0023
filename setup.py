"""Install transformers_align: cross-lingual alignment for fine-tuning decoder LLMs."""
from setuptools import find_packages, setup

setup(
    name="transformers_align",
    version="0.1.0",
    description="Cross-lingual representation alignment (middle-layer InfoNCE, AFP, AdaMergeX) "
    "for decoder LLMs over Hugging Face transformers 4.43.4",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    package_dir={"": "src"},
    packages=find_packages("src"),
    python_requires=">=3.9",
    # torch is not pinned here: install the build that fits the machine first
    # (README: `pip install torch==2.13.0`), so pip never swaps a CPU build for a CUDA one.
    install_requires=[
        "torch>=2.1",
        "transformers==4.43.4",
        "tokenizers>=0.19,<0.20",
        "huggingface-hub<1.0",
        "peft>=0.12,<0.16",  # 0.16+ fail to import against transformers 4.43.4
        "accelerate>=0.33",
        "datasets>=2.20,<=5.0.1",  # 5.1+ need huggingface-hub>=1.31, which 4.43.4 forbids
        "deepspeed>=0.14",
        "evaluate>=0.4",
        "seqeval>=1.2.2",
        "Levenshtein>=0.25",
        "sacrebleu>=2.4",
        "safetensors>=0.4",
        "numpy",
        "tqdm",
        "matplotlib",
    ],
    extras_require={
        "flash": ["flash-attn>=2.5"],  # needs CUDA to build; sdpa is used when it is absent
        "eval": ["lm-eval==0.4.13"],
        "dev": ["pytest>=7", "lm-eval==0.4.13"],
    },
)
