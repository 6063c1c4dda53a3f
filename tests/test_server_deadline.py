"""Reading kube-apiserver's ``?timeout=`` (a Go duration) into the time we may take."""

from __future__ import annotations

import pytest

from webhook.deadline import DEFAULT_TIMEOUT, Deadline, parse_go_duration, request_timeout


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10.0),
    ("5s", 5.0),
    ("30s", 30.0),
    ("1m", 60.0),
    ("500ms", 0.5),
    ("1m30s", 90.0),
    ("1.5s", 1.5),
    (".5s", 0.5),
    ("1h", 3600.0),
    ("250us", 0.00025),
    ("250µs", 0.00025),
    ("100ns", 1e-7),
    ("1m0.5s", 60.5),
])
def test_go_durations_are_read_as_seconds(text: str, seconds: float) -> None:
    """Every unit Go prints, alone or combined, gives the right number of seconds."""
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "10 s", "-5s", "0s", "1d", "10S", "5s;", "1e3s", "ten", "s10"])
def test_malformed_or_useless_durations_are_refused(text: str) -> None:
    """No unit, unknown units, signs, spaces and zero are not durations we can use."""
    with pytest.raises(ValueError):
        parse_go_duration(text)


@pytest.mark.parametrize(("query", "seconds"), [
    (None, DEFAULT_TIMEOUT),
    ("5s", 5.0),
    ("garbage", DEFAULT_TIMEOUT),
    ("0s", DEFAULT_TIMEOUT),
])
def test_the_request_timeout_falls_back_to_the_apiserver_default(query: str | None, seconds: float) -> None:
    """Without a usable ?timeout= the server assumes kube-apiserver's default of 10 s."""
    assert request_timeout(query) == seconds


@pytest.mark.parametrize(("timeout", "margin"), [(10.0, 1.0), (30.0, 1.0), (5.0, 0.5), (0.2, 0.02)])
def test_the_deadline_keeps_a_safety_margin(timeout: float, margin: float) -> None:
    """An answer is due 10% (at most 1 s) before the apiserver gives up."""
    deadline = Deadline(started=100.0, timeout=timeout)
    assert deadline.margin == pytest.approx(margin)
    assert deadline.at == pytest.approx(100.0 + timeout - margin)
    assert not deadline.expired(deadline.at - 0.001)
    assert deadline.expired(deadline.at)
