"""mjcord's custom-id grammar: bounded numbers, one template per family, nothing else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.core.followups import MAX_ID, MAX_INDEX, PressKind, job_button_id, recognised


@given(st.integers(-(2**70), 2**70))
def test_a_job_id_is_recognised_exactly_when_it_fits_63_bits(job: int) -> None:
    assert recognised(f"mj:{job}:0") == (1 <= job <= MAX_ID)
    assert recognised(f"mjin:{job}") == (1 <= job <= MAX_ID)
    assert recognised(f"mjreport:{job}") == (1 <= job <= MAX_ID)


@given(st.integers(-5, 10_000))
def test_a_button_index_is_recognised_exactly_when_below_25(index: int) -> None:
    assert recognised(f"mj:1:{index}") == (0 <= index <= MAX_INDEX)


@given(st.integers(1, MAX_ID), st.integers(0, MAX_INDEX), st.sampled_from(list(PressKind)))
def test_every_id_the_bot_makes_is_recognised_and_fits_discord(
    job: int, index: int, kind: PressKind
) -> None:
    custom_id = job_button_id(job, index, kind)
    assert recognised(custom_id) and len(custom_id) <= 100


@given(st.text(max_size=40))
def test_leading_zeros_signs_and_other_digits_are_not_numbers(tail: str) -> None:
    for text in ("01", "+1", "-1", "1.0", "\u0661", "１", " 1"):
        assert not recognised(f"mj:{text}:0")
    assert not recognised(f"mj:1:0:{tail}") or tail in ("z", "d")
