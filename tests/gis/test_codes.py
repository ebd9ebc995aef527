"""Grid code scheme (CJ/T 213 14 digits, DB11 15 digits)."""

from __future__ import annotations

import pytest

from gis.codes import CodeError, CodeScheme, parent_level


@pytest.mark.parametrize(
    ("width", "code", "level"),
    [
        (14, "41010000000000", "city"),
        (14, "41010500000000", "district"),
        (14, "41010500300000", "street"),
        (14, "41010500300200", "community"),
        (14, "41010500300207", "unit"),
        (15, "410105003002107", "unit"),
        (15, "410105003002000", "community"),
    ],
)
def test_valid_codes_pass(width: int, code: str, level: str) -> None:
    assert CodeScheme(width).validate(code, level) == code


@pytest.mark.parametrize(
    ("code", "level", "fragment"),
    [
        ("41010500300207", "community", "must be zeros"),
        ("4101050030020", "unit", "13 digits"),
        ("41010500300200", "unit", "all-zero unit part"),
        ("41010500000000", "street", "all-zero street part"),
        ("4101050030020x", "unit", "digits only"),
    ],
)
def test_invalid_codes_say_why(code: str, level: str, fragment: str) -> None:
    with pytest.raises(CodeError, match=fragment):
        CodeScheme(14).validate(code, level)


def test_child_must_share_parent_prefix() -> None:
    with pytest.raises(CodeError, match="410105003"):
        CodeScheme(14).validate("41010500400101", "unit", parent_code="41010500300100")


def test_child_codes_number_from_one_and_refuse_overflow() -> None:
    scheme = CodeScheme(14)
    assert scheme.child_code("41010500300200", "community", 1) == "41010500300201"
    assert scheme.child_code("41010500000000", "district", 12) == "41010501200000"
    with pytest.raises(CodeError, match="does not fit in 2 digits"):
        scheme.child_code("41010500300200", "community", 100)
    assert CodeScheme(15).child_code("410105003002000", "community", 100) == "410105003002100"


def test_width_and_levels_are_checked() -> None:
    with pytest.raises(CodeError):
        CodeScheme(13)
    with pytest.raises(CodeError, match="no parent"):
        parent_level("city")
    with pytest.raises(CodeError, match="unknown level"):
        parent_level("province")
