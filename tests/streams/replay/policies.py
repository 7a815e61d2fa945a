"""Candidate policies for the replay tests: the shipped policy file with one change each,
made on its text (what a data protection officer edits), and checked by loading it."""

from __future__ import annotations

import re
from pathlib import Path

from streams.routing.policy import DEFAULT_POLICY, Policy, load_policy

RULE_SEPARATOR = "\n[[rules]]\n"

# A new rule: schools' absence signals also to the SSP cooperation of the residence.
ABSENCE_TO_SSP = """
id = "absence.ssp"
event = "school_absence_signal"
sources = ["school"]
age = { max = 17 }
when = { unlawful_absence_percent = { min = 15 } }
unit = "ssp"
municipality = "residence"
basis = "barnets_lov_notification"
fields = ["envelope.event_id", "envelope.occurred_at", "school_name", "grade"]
take_over_within = { working_days = 5 }
priority = "normal"
"""


class PolicyText:
    """The shipped policy's text, split into its head and its rules, to edit."""

    def __init__(self, text: str | None = None) -> None:
        text = text if text is not None else DEFAULT_POLICY.read_text(encoding="utf-8")
        self.head, *self.rules = text.split(RULE_SEPARATOR)

    def version(self, version: str) -> PolicyText:
        self.head = re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', self.head)
        return self

    def without_rule(self, rule_id: str) -> PolicyText:
        kept = [r for r in self.rules if f'id = "{rule_id}"' not in r]
        assert len(kept) == len(self.rules) - 1, f"no rule {rule_id}"
        self.rules = kept
        return self

    def with_field(self, rule_id: str, field: str) -> PolicyText:
        (index,) = [i for i, r in enumerate(self.rules) if f'id = "{rule_id}"' in r]
        rule = self.rules[index]
        start = rule.index("\nfields = [") + len("\nfields = [")
        self.rules[index] = f'{rule[:start]}"{field}", {rule[start:]}'
        return self

    def with_rule(self, text: str) -> PolicyText:
        self.rules.append(text.lstrip("\n"))
        return self

    def write(self, path: Path) -> Policy:
        path.write_text(RULE_SEPARATOR.join([self.head, *self.rules]), encoding="utf-8")
        return load_policy(path)
