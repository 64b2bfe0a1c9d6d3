"""Rules over the evidence of one explanation, a hybrid decision, and the explanation in words."""

from .rules import load_rules
from .writer import reason, write_reasoning

__all__ = ["load_rules", "reason", "write_reasoning"]
