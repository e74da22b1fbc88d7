"""The poll log a prediction keeps for polling audits: bounded, in order, and readable from older records."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from mock_server.model.predictions import POLL_LOG_CAP, Outcome, Prediction, rfc3339
from mock_server.model.store.base import dumps, loads


def prediction() -> Prediction:
    return Prediction(
        id="p1",
        tenant="t",
        model="wavespeed-ai/flux-kontext-pro/text-to-image",
        input={"prompt": "x"},
        params={"prompt": "x"},
        created_at=0.0,
        progression="polls",
        queue_seconds=0.0,
        run_seconds=0.0,
        poll_every=1,
        outcome=Outcome(),
        seed=1,
        num_outputs=1,
        base_url="http://127.0.0.1:8000",
    )


statuses = st.sampled_from(["created", "processing", "completed"])
wall_times = st.floats(min_value=1.0e9, max_value=4.0e9, allow_nan=False)


@given(st.lists(st.tuples(wall_times, statuses), max_size=3 * POLL_LOG_CAP + 7))
def test_the_poll_log_keeps_the_last_polls_in_order_through_the_store(polls: list[tuple[float, str]]) -> None:
    current = prediction()
    for wall_time, status in polls:
        current.status = status
        current.log_poll(wall_time)
        # every poll is a round trip through the stored record
        current = Prediction.from_record(loads(dumps(current.to_record())))
    assert current.poll_log == polls[-POLL_LOG_CAP:]


def test_a_record_written_with_the_older_list_form_reads_the_same() -> None:
    record = prediction().to_record()
    del record["polled"]
    record["poll_log"] = [[1.7e9, "created"], [1.7e9 + 0.5, "processing"]]
    restored = Prediction.from_record(loads(dumps(record)))
    assert restored.poll_log == [(1.7e9, "created"), (1.7e9 + 0.5, "processing")]
    restored.status = "completed"
    restored.log_poll(1.7e9 + 1.0)
    assert restored.poll_log[-1] == (1.7e9 + 1.0, "completed")


@given(
    st.one_of(
        st.floats(min_value=-1e9, max_value=4e9, allow_nan=False),
        st.builds(
            lambda s, f: s + f, st.integers(0, 2**32), st.sampled_from([0.9999995, 5e-7, 0.4999995, 0.9999994999])
        ),
    )
)
def test_rfc3339_reads_as_datetime_writes_it(epoch: float) -> None:
    expected = dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"
    assert rfc3339(epoch) == expected


def test_a_whole_record_reads_back_as_the_prediction_it_was_and_a_partial_one_fills_in_defaults() -> None:
    written = prediction()
    written.outcome = Outcome(status="failed", nsfw=(True, False))
    written.notes = ["seed -1 resolved to 7"]
    record = loads(dumps(written.to_record()))
    restored = Prediction.from_record(record)
    assert restored == written
    restored.polls += 1  # the record it was read from is not the prediction's state
    assert record["polls"] == 0
    # a record from a version with fewer fields: the missing ones take their defaults
    del record["queued"], record["polls_at_start"], record["started_at"]
    assert Prediction.from_record(record) == written


def test_a_record_holds_json_types_only() -> None:
    current = prediction()
    current.outcome = Outcome(nsfw=(True,))
    record = current.to_record()
    assert record == loads(dumps(record))


outcomes = st.builds(
    Outcome,
    status=st.sampled_from(["completed", "failed", "cancelled", "timeout"]),
    code=st.none() | st.integers(0, 9999),
    error=st.none() | st.text(max_size=20),
    nsfw=st.none() | st.lists(st.booleans(), max_size=4).map(tuple),
    outputs=st.none() | st.integers(0, 100),
    stuck=st.booleans(),
    sync_timeout=st.booleans(),
    latency=st.none() | st.floats(0, 3600),
)


@given(outcomes)
def test_an_outcome_reads_back_from_its_record_as_it_was(outcome: Outcome) -> None:
    # 0 outputs, a 0-second latency and code 0 are values, not defaults to leave out
    assert Outcome.from_record(loads(dumps(outcome.to_record()))) == outcome
