from __future__ import annotations

import pytest

from nas.budget import Budget, Unit, display_amount, format_amount
from nas.engine.ledger import Ledger
from nas.errors import UserError


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("300ep", 300, Unit.EPOCHS),
        ("2.5ep", 2.5, Unit.EPOCHS),
        ("90s", 90, Unit.SECONDS),
        ("10m", 600, Unit.SECONDS),
        ("1h", 3600, Unit.SECONDS),
        ("1.5h", 5400, Unit.SECONDS),
        ("50trials", 50, Unit.TRIALS),
        (" 7 trial ", 7, Unit.TRIALS),
    ],
)
def test_parse(text: str, amount: float, unit: Unit) -> None:
    b = Budget.parse(text)
    assert (b.amount, b.unit) == (amount, unit)


@pytest.mark.parametrize("text", ["", "ten minutes", "10", "5parsecs", "-3m", "0s", "2.5trials"])
def test_parse_rejects_with_one_line(text: str) -> None:
    with pytest.raises(UserError) as err:
        Budget.parse(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["300ep", "90s", "10m", "1h", "50trials", "2.5ep", "12.5s"])
def test_format_round_trips(text: str) -> None:
    b = Budget.parse(text)
    assert Budget.parse(str(b)) == b


def test_format_amount_units() -> None:
    assert format_amount(120, Unit.SECONDS) == "2m"
    assert format_amount(118.25, Unit.SECONDS) == "118.25s"
    assert display_amount(118.25, Unit.SECONDS) == "118.2s"
    assert display_amount(120, Unit.SECONDS) == "2m"
    assert format_amount(1234567, Unit.EPOCHS) == "1234567ep"
    assert format_amount(3, Unit.TRIALS) == "3trials"


def test_ledger_charges_and_refuses() -> None:
    ledger = Ledger(Budget.parse("10ep"))
    assert ledger.can_afford(10) and not ledger.can_afford(10.5)
    ledger.charge(4)
    assert ledger.remaining == 6 and not ledger.exhausted
    assert not ledger.can_afford(7)
    ledger.charge(6)
    assert ledger.exhausted and ledger.remaining == 0
    assert not ledger.can_afford(0)
    assert str(ledger) == "10ep / 10ep"
    with pytest.raises(ValueError):
        ledger.charge(-1)


def test_ledger_resumes_from_spent() -> None:
    ledger = Ledger(Budget.parse("1m"), spent=45)
    assert ledger.remaining == 15
