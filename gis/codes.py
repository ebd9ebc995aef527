"""Grid codes (GB/T 30428 / CJ/T 213): county(6) + street(3) + community(3) + sequence(2 or 3).

Every code has the full width; a code at a higher level has its lower parts all zeros (a
community code ends in a zero sequence). The width of the unit-grid sequence is configuration:
14 digits in CJ/T 213, 15 in Beijing's DB11.
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS: tuple[str, ...] = ("city", "district", "street", "community", "unit")


class CodeError(ValueError):
    """A grid code does not fit the scheme; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class CodeScheme:
    """The coding rule for one deployment (``width`` 14 or 15)."""

    width: int = 14

    def __post_init__(self) -> None:
        if self.width not in (14, 15):
            raise CodeError("code width must be 14 (CJ/T 213) or 15 (DB11)")

    @property
    def sequence_digits(self) -> int:
        """Digits of the unit-grid sequence (2 or 3)."""
        return self.width - 12

    def prefix_length(self, level: str) -> int:
        """Number of significant leading digits of a code at ``level``."""
        return {"city": 4, "district": 6, "street": 9, "community": 12, "unit": self.width}[
            check_level(level)
        ]

    def validate(self, code: str, level: str, parent_code: str | None = None) -> str:
        """Check ``code`` for ``level`` (and against its parent's code); return it."""
        if not isinstance(code, str) or not code.isdigit():
            raise CodeError(f"code {code!r} must be digits only")
        if len(code) != self.width:
            raise CodeError(
                f"code {code!r} has {len(code)} digits; this registry uses {self.width}-digit codes"
            )
        n = self.prefix_length(level)
        if code[n:].strip("0"):
            raise CodeError(
                f"code {code!r} is a {level} code, so digits after the first {n} must be zeros"
            )
        own = code[self.prefix_length(parent_level(level)) : n] if level != "city" else code[:n]
        if not own.strip("0"):
            raise CodeError(f"code {code!r} has an all-zero {level} part")
        if parent_code is not None:
            p = self.prefix_length(parent_level(level))
            if code[:p] != parent_code[:p]:
                raise CodeError(
                    f"code {code!r} must start with its parent's code prefix {parent_code[:p]!r}"
                )
        return code

    def level_of(self, code: str) -> str:
        """The level a full-width ``code`` names: the deepest level whose own part is not all
        zeros (``CodeError`` for a code that fits no level)."""
        if not isinstance(code, str) or not code.isdigit() or len(code) != self.width:
            raise CodeError(f"code {code!r} must be {self.width} digits")
        for level in reversed(LEVELS):
            start = self.prefix_length(parent_level(level)) if level != "city" else 0
            if code[start : self.prefix_length(level)].strip("0"):
                if code[self.prefix_length(level) :].strip("0"):
                    break
                return level
        raise CodeError(f"code {code!r} names no grid level")

    def subtree_prefix(self, code: str) -> str:
        """The prefix every code in ``code``'s subtree starts with."""
        return code[: self.prefix_length(self.level_of(code))]

    def child_code(self, parent_code: str, parent_lvl: str, sequence: int) -> str:
        """Code of the ``sequence``-th (1-based) child of ``parent_code`` at the next level."""
        child_lvl = LEVELS[LEVELS.index(check_level(parent_lvl)) + 1]
        start, end = self.prefix_length(parent_lvl), self.prefix_length(child_lvl)
        digits = end - start
        if not 1 <= sequence < 10**digits:
            raise CodeError(
                f"{child_lvl} sequence {sequence} does not fit in {digits} digits under "
                f"{parent_code}; split the parent or use a wider code"
            )
        return parent_code[:start] + str(sequence).zfill(digits) + "0" * (self.width - end)


def check_level(level: str) -> str:
    """Return ``level`` if it is one of the five levels, else raise ``CodeError``."""
    if level not in LEVELS:
        raise CodeError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
    return level


def parent_level(level: str) -> str:
    """The level directly above ``level`` (the city has none)."""
    i = LEVELS.index(check_level(level))
    if i == 0:
        raise CodeError("the city level has no parent")
    return LEVELS[i - 1]
