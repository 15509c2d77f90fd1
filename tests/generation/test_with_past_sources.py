"""With-past export beyond stock Hugging Face folders: a Python source whose factory builds a transformers
causal LM (the user's own code, named on the command line: it runs as for every other task), and a folder
with its own modeling code (config.json ``auto_map``): nothing of the folder's runs without ``--trust-model``
(exit 2 naming the flag, no side effect); with it, optimum's folder is written and a greedy loop of this
test's own over model.onnx reproduces ``generate()``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.generation.test_with_past import PROMPTS, hf_greedy, ort_greedy

NEW = 10
LLAMA = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=96,
    max_position_embeddings=128,
    initializer_range=0.2,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)

SOURCE = """
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

Path({marker!r}).write_text("imported")


def tiny_llama():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return LlamaForCausalLM(LlamaConfig(**{config!r})).eval()


def not_an_lm():
    return torch.nn.Linear(4, 4)
"""


def _check_loop(out: Path, model) -> None:
    want = hf_greedy(model, PROMPTS, NEW)
    np.testing.assert_array_equal(ort_greedy(out, PROMPTS, NEW), want)
    np.testing.assert_array_equal(ort_greedy(out, PROMPTS[1:2], NEW), hf_greedy(model, PROMPTS[1:2], NEW))
    assert len({tuple(r) for r in want}) > 1


def test_python_source_with_past_writes_optimums_folder(tmp_path, run_cli):
    marker = tmp_path / "imported.txt"
    src = tmp_path / "lm.py"
    src.write_text(SOURCE.format(marker=str(marker), config=LLAMA))
    out = tmp_path / "out"
    task = ("--task", "text-generation-with-past")
    # a Python source is the user's own code, named on the command line: it runs as for every other task
    res = run_cli("convert", f"{src}:tiny_llama", "-o", out, *task, "--new-tokens", "8", "--json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["generation"]["passed"] is True and "past_key_values.1.value" in report["inputs"]
    assert {p.name for p in out.iterdir()} == {"model.onnx", "config.json", "generation_config.json"}  # no tokenizer
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["architectures"] == ["LlamaForCausalLM"]
    assert config["num_key_value_heads"] == 2 and config["vocab_size"] == 96
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == 2
    from onnxbridge.generation.lm_source import load_lm_source

    _check_loop(out, load_lm_source(f"{src}:tiny_llama", True).model)

    assert marker.exists()
    res = run_cli("validate", f"{src}:tiny_llama", out)
    assert res.code == 0, res.out + res.err
    res = run_cli("convert", f"{src}:not_an_lm", "-o", tmp_path / "o2", *task)
    assert res.code == 2 and "not a transformers causal LM" in res.err, res.err


CONFIGURATION = """
from pathlib import Path

from transformers import LlamaConfig

Path({marker!r}).write_text("configuration ran")


class MyLlamaConfig(LlamaConfig):
    model_type = "my-llama"
"""
MODELING = """
from pathlib import Path

from transformers import LlamaForCausalLM

from .configuration_myllama import MyLlamaConfig

Path({marker!r}).write_text("modeling ran")


class MyLlamaForCausalLM(LlamaForCausalLM):
    config_class = MyLlamaConfig
"""


@pytest.fixture
def custom_folder(tmp_path) -> tuple[Path, Path]:
    """(a folder whose config.json's auto_map names its own LlamaForCausalLM subclass, the marker file its
    code writes when it is imported)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder, marker = tmp_path / "myllama_custom", tmp_path / "ran.txt"
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**LLAMA)).save_pretrained(folder)
    (folder / "configuration_myllama.py").write_text(CONFIGURATION.format(marker=str(marker)))
    (folder / "modeling_myllama.py").write_text(MODELING.format(marker=str(marker)))
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="my-llama",
        architectures=["MyLlamaForCausalLM"],
        auto_map={
            "AutoConfig": "configuration_myllama.MyLlamaConfig",
            "AutoModelForCausalLM": "modeling_myllama.MyLlamaForCausalLM",
        },
    )
    (folder / "config.json").write_text(json.dumps(config))
    return folder, marker


def test_a_folder_with_its_own_code_converts_with_past_only_when_trusted(custom_folder, tmp_path, run_cli):
    folder, marker = custom_folder
    out = tmp_path / "out"
    res = run_cli("convert", folder, "-o", out)
    assert res.code == 2 and "--trust-model" in res.err and "modeling_myllama.py" in res.err, res.err
    res = run_cli("convert", folder, "-o", out, "--task", "text-generation-with-past")
    assert res.code == 2 and "--trust-model" in res.err, res.err
    assert not marker.exists() and not out.exists()  # nothing of the folder ran, nothing written

    res = run_cli("convert", folder, "-o", out, "--trust-model", "--new-tokens", "8", "--json")
    assert res.code == 0, res.err
    assert marker.exists()  # the folder's own code did run
    report = json.loads(res.out)
    assert report["generation"]["passed"] is True and "present.1.key" in report["outputs"]
    assert {"model.onnx", "config.json", "modeling_myllama.py", "configuration_myllama.py"} <= {
        p.name for p in out.iterdir()
    }
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__name__ == "MyLlamaForCausalLM"
    _check_loop(out, model)
    marker.unlink()
    assert run_cli("validate", folder, out).code == 2 and not marker.exists()
    assert run_cli("validate", folder, out, "--trust-model").code == 0
