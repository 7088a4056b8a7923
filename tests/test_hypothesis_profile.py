"""CI draws the same Hypothesis examples on every run (issue #20: flaky property tests)."""

import os

import hypothesis


def test_hypothesis_is_derandomized_without_a_deadline():
    current = hypothesis.settings()
    if os.environ.get('TFPRIV_HYPOTHESIS_PROFILE', 'ci') == 'ci':
        assert current.derandomize is True
    assert current.deadline is None
