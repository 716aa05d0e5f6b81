import pytest

from rempart.model.finess import finess_problem, luhn_check_digit


@pytest.mark.parametrize("number", ["750712184", "010003812", "010003820", "340999903", "75 071 218 4"])
def test_real_and_lab_numbers_are_accepted(number):
    assert finess_problem(number) is None


@pytest.mark.parametrize("number", ["2A0999902", "2B0999902"])
def test_corsican_numbers_with_the_right_key_are_accepted(number):
    assert finess_problem(number) is None


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("750712185", "wrong check key"),
        ("2A0999903", "wrong check key"),
        ("2B0999901", "wrong check key"),
        ("2C0999902", "not a FINESS number"),
        ("75071218", "not a FINESS number"),
        ("7507121840", "not a FINESS number"),
        ("75O712184", "not a FINESS number"),
        (750712184, "must be a string"),
    ],
)
def test_bad_numbers_are_refused_with_a_reason(number, expected):
    problem = finess_problem(number)
    assert problem is not None and expected in problem


def test_key_message_gives_the_right_digit():
    assert "must be 4" in finess_problem("750712180")


def test_luhn_digit_matches_a_known_number():
    assert luhn_check_digit("75071218") == 4
