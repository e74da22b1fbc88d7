"""One behavioural suite for every Store: the same assertions against memory and a real redis-server."""

from __future__ import annotations

import contextvars
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from unittest import mock

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.model.store import DELETE, Limits, MemoryStore, Record, Store, memory, store_from_url
from mock_server.model.store.base import current_pin, pin_version
from mock_server.model.store.memory import Table
from mock_server.model.store.redis import RedisStore

LIMITS = Limits(record_ttl=60, max_records=5, log_entries=4, log_bytes=400, blob_ttl=60)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        made = store_from_url("memory://", LIMITS)
    else:
        made = store_from_url(request.getfixturevalue("redis_url"), LIMITS)
    yield made
    made.close()


def test_a_record_reads_back_as_a_copy_that_cannot_change_the_store(store: Store) -> None:
    store.put("prediction", "p1", {"status": "created", "outputs": []}, tenant="alice")
    copy = store.get("prediction", "p1")
    assert copy == {"status": "created", "outputs": []}
    copy["outputs"].append("x")
    assert store.get("prediction", "p1") == {"status": "created", "outputs": []}
    assert store.owner("prediction", "p1") == "alice"
    assert store.get("prediction", "nope") is None and store.owner("prediction", "nope") is None


def test_get_many_reads_each_key_in_order_with_none_for_the_missing(store: Store) -> None:
    store.put("thing", "a", {"n": 1}, tenant="t1")
    store.put("thing", "c", {"n": 3}, tenant="t2")
    store.delete("thing", "c")
    store.put("thing", "c", {"n": 5}, tenant="t2")

    assert store.get_many("thing", ["c", "b", "a"]) == [{"n": 5}, None, {"n": 1}]
    assert store.get_many("other", ["a"]) == [None]
    assert store.get_many("thing", []) == []


def test_add_creates_only_when_the_key_is_free(store: Store) -> None:
    assert store.add("slot", "t1", {"n": 1})
    assert not store.add("slot", "t1", {"n": 2})
    assert store.get("slot", "t1") == {"n": 1}


def test_update_is_atomic_under_concurrent_writers(store: Store) -> None:
    store.put("counter", "c", {"n": 0})

    def bump() -> None:
        for _ in range(50):
            store.update("counter", "c", lambda r: {**r, "n": r["n"] + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("counter", "c") == {"n": 200}


def test_update_can_leave_unchanged_or_delete(store: Store) -> None:
    store.put("rule", "r1", {"used": 0})
    assert store.update("rule", "r1", lambda r: None) == {"used": 0}
    assert store.update("rule", "r1", lambda r: DELETE) is None
    assert store.get("rule", "r1") is None
    assert store.update("rule", "r1", lambda r: {"used": 1}) is None  # absent: nothing created


def test_update_hands_back_the_record_it_wrote(store: Store) -> None:
    store.put("prediction", "p1", {"polls": 0, "log": []})
    written = store.update("prediction", "p1", lambda r: {**r, "polls": 1, "log": [*r["log"], "x"]})
    assert written == {"polls": 1, "log": ["x"]} == store.get("prediction", "p1")
    assert written is not None
    written["polls"] = 99  # the caller's copy, not the stored state
    assert store.get("prediction", "p1") == {"polls": 1, "log": ["x"]}


def test_update_for_a_tenant_treats_another_tenants_record_as_absent(store: Store) -> None:
    store.put("prediction", "p1", {"polls": 0}, tenant="alice")
    calls: list[dict[str, int]] = []

    def bump(record: dict[str, int]) -> dict[str, int]:
        calls.append(record)
        return {"polls": record["polls"] + 1}

    assert store.update("prediction", "p1", bump, tenant="mallory") is None
    assert calls == [] and store.get("prediction", "p1") == {"polls": 0}
    assert store.update("prediction", "p1", bump, tenant="alice") == {"polls": 1}
    assert store.update("prediction", "p1", bump) == {"polls": 2}


def test_records_list_oldest_first_per_tenant(store: Store) -> None:
    for i, tenant in enumerate(["a", "b", "a"]):
        store.put("prediction", f"p{i}", {"i": i}, tenant=tenant)
    assert [r["i"] for r in store.records("prediction")] == [0, 1, 2]
    assert [r["i"] for r in store.records("prediction", "a")] == [0, 2]
    assert store.delete("prediction", "p0") and not store.delete("prediction", "p0")
    assert [r["i"] for r in store.records("prediction", "a")] == [2]


def test_each_kind_keeps_at_most_max_records_dropping_the_oldest(store: Store) -> None:
    for i in range(8):
        store.put("prediction", f"p{i}", {"i": i}, tenant="a")
    assert [r["i"] for r in store.records("prediction")] == [3, 4, 5, 6, 7]
    assert store.get("prediction", "p0") is None


def test_logs_are_numbered_and_capped_in_entries_and_bytes(store: Store) -> None:
    seqs = [store.append("journal", {"path": f"/{i}"}, tenant="a" if i % 2 else "b") for i in range(6)]
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert [e["seq"] for e in store.entries("journal")] == [3, 4, 5, 6]
    assert [e["path"] for e in store.entries("journal", "a")] == ["/3", "/5"]
    store.append("journal", {"body": "x" * 300}, tenant="a")
    kept = store.entries("journal")
    assert kept[-1]["seq"] == 7 and sum(len(str(e)) for e in kept) < 600
    assert store.dropped("journal") >= 3


def test_counters_add_up_per_tenant(store: Store) -> None:
    assert store.incr("spent", 0.04, tenant="a") == pytest.approx(0.04)
    assert store.incr("spent", 0.08, tenant="a") == pytest.approx(0.12)
    assert store.counter("spent", tenant="b") == 0
    assert store.incr("ids") == 1 and store.incr("ids") == 2


def test_a_claim_is_granted_once(store: Store) -> None:
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(store.claim("webhook:p1"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


def test_blobs_round_trip(store: Store) -> None:
    store.put_blob("abc", "image/png", b"\x89PNG...")
    assert store.get_blob("abc") == ("image/png", b"\x89PNG...")
    assert store.get_blob("missing") is None


def test_reset_of_one_tenant_leaves_the_others(store: Store) -> None:
    store.put("prediction", "p1", {"n": 1}, tenant="a")
    store.put("prediction", "p2", {"n": 2}, tenant="b")
    store.put("rule", "r1", {"n": 3})  # server-wide
    store.append("journal", {"n": 1}, tenant="a")
    store.append("journal", {"n": 2}, tenant="b")
    store.incr("spent", 1, tenant="a")
    store.incr("spent", 1, tenant="b")
    assert store.reset("a") == 1
    assert store.get("prediction", "p1") is None and store.get("prediction", "p2") == {"n": 2}
    assert store.get("rule", "r1") == {"n": 3}
    assert [e["n"] for e in store.entries("journal")] == [2]
    assert store.counter("spent", tenant="a") == 0 and store.counter("spent", tenant="b") == 1
    assert [r["n"] for r in store.records("prediction", "a")] == []


def test_reset_of_everything(store: Store) -> None:
    store.put("prediction", "p1", {"n": 1}, tenant="a")
    store.put_blob("k", "text/plain", b"x")
    store.append("journal", {"n": 1})
    store.reset()
    assert store.records("prediction") == [] and store.entries("journal") == []
    assert store.get_blob("k") is None


def test_memory_records_and_blobs_expire_by_the_store_clock() -> None:
    now = [1000.0]
    store = MemoryStore(LIMITS, clock=lambda: now[0])
    store.put("slot", "short", {"n": 1}, ttl=5)
    store.put("slot", "long", {"n": 2})
    store.put_blob("b", "text/plain", b"x")
    now[0] += 6
    assert store.get("slot", "short") is None
    assert [r["n"] for r in store.records("slot")] == [2]
    now[0] += 60
    assert store.records("slot") == [] and store.get_blob("b") is None


def test_redis_keys_carry_ttls(redis_url: str) -> None:
    import redis

    store = store_from_url(redis_url, LIMITS)
    store.put("slot", "short", {"n": 1}, ttl=5)
    store.put("prediction", "p", {"n": 1}, tenant="a")
    store.put_blob("b", "text/plain", b"x")
    store.append("journal", {"n": 1}, tenant="a")
    raw = redis.Redis.from_url(redis_url)
    ttls = {key.decode(): raw.pttl(key) for key in raw.scan_iter("*")}
    raw.close()
    store.close()
    assert ttls, "the store wrote no keys"
    assert all(0 < ttl <= LIMITS.record_ttl * 1000 for key, ttl in ttls.items()), ttls


def test_redis_update_keeps_the_ttl_and_its_delete_leaves_no_index_entry(redis_url: str) -> None:
    import redis

    store = store_from_url(redis_url, LIMITS)
    store.put("slot", "s", {"n": 1}, tenant="a", ttl=5)
    assert store.update("slot", "s", lambda r: {"n": r["n"] + 1}) == {"n": 2}
    raw = redis.Redis.from_url(redis_url)
    ttl = raw.pttl("wsm:r:slot:s")
    store.put("slot", "t", {"n": 1}, tenant="a")
    assert store.update("slot", "t", lambda r: DELETE) is None
    indexes = [raw.zrange(key, 0, -1) for key in ("wsm:k:slot", "wsm:t:slot:a")]
    raw.close()
    store.close()
    assert 0 < ttl <= 5000
    assert indexes == [[b"s"], [b"s"]]


def test_a_log_can_be_emptied_for_one_tenant_or_all(store: Store) -> None:
    for tenant in ("a", "b", "a"):
        store.append("deliveries", {"t": tenant}, tenant=tenant)
    store.reset_log("deliveries", "a")
    assert [e["t"] for e in store.entries("deliveries")] == ["b"]
    store.reset_log("deliveries")
    assert store.entries("deliveries") == []
    assert store.append("deliveries", {"t": "c"}, tenant="c") == 4  # numbering goes on


def test_a_full_reset_keeps_the_server_identity_and_the_clock(store: Store) -> None:
    store.put("server", "webhook-secret", {"secret": "whsec_x"})
    store.put("clock", "clock", {"start": 1.0, "offset": 5.0})
    store.put("prediction", "p", {"n": 1}, tenant="a")
    assert store.reset() == 1
    assert store.get("server", "webhook-secret") == {"secret": "whsec_x"}
    assert store.get("clock", "clock") == {"start": 1.0, "offset": 5.0}


def changes_move_the_version(
    reader: Store, writer: Store, *, rule_ttl: float
) -> tuple[Callable[[], bool], list[int | None]]:
    """Make every kind of change through ``writer``, checking after each that ``reader``'s version moved exactly
    when server-wide state changed; returns the check, for what a test does next, and the versions seen."""
    seen = [reader.version()]

    def moved() -> bool:
        seen.append(reader.version())
        return seen[-1] != seen[-2]

    writer.put("prediction", "p1", {"n": 1})
    writer.update("prediction", "p1", lambda r: {**r, "n": 2})
    writer.append("journal", {"n": 1})
    writer.incr("rule.seq")
    assert not moved()  # predictions, logs and counters are not server-wide state
    writer.put("rule", "r1", {"n": 1}, ttl=rule_ttl)
    assert moved()
    assert writer.update("rule", "r1", lambda r: None) == {"n": 1}
    assert not moved()  # left unchanged
    writer.update("rule", "r1", lambda r: {**r, "n": 2})
    assert moved()
    assert writer.add("fault", "f1", {"n": 1}) and moved()
    assert not writer.add("fault", "f1", {"n": 2}) and not moved()
    writer.update("fault", "f1", lambda r: DELETE)
    assert moved()
    assert writer.delete("behaviour", "nope") is False and not moved()
    writer.put("behaviour", "b", {"n": 1})
    assert writer.delete("behaviour", "b") and moved()
    writer.put("clock", "clock", {"offset": 0.0})
    assert moved()
    writer.reset("someone")
    assert moved()
    return moved, seen


def test_the_version_moves_with_every_change_to_server_wide_state_and_only_then() -> None:
    now = [1000.0]
    store = MemoryStore(LIMITS, clock=lambda: now[0])
    moved, _ = changes_move_the_version(store, store, rule_ttl=5)
    now[0] += 6  # the rule's five seconds are up: expiring is a change too, read or not
    assert moved()
    assert not moved()
    assert store.records("rule") == []


@pytest.fixture
def two_workers(redis_url: str) -> Iterator[tuple[RedisStore, RedisStore]]:
    """Two stores on one Redis, as two workers (or hosts) have them."""
    made = (RedisStore(redis_url, LIMITS), RedisStore(redis_url, LIMITS))
    yield made
    for store in made:
        store.close()


def test_a_shared_version_moves_with_every_change_to_server_wide_state_made_anywhere_and_only_then(
    two_workers: tuple[RedisStore, RedisStore],
) -> None:
    store, other = two_workers
    moved, seen = changes_move_the_version(store, other, rule_ttl=60)
    other.reset()
    assert moved()
    known = [version for version in seen if version is not None]
    assert known == seen and known == sorted(known)  # it only grows, a full reset included


def test_a_shared_version_moves_when_a_server_wide_record_expires(
    two_workers: tuple[RedisStore, RedisStore], redis_url: str
) -> None:
    store, other = two_workers
    other.put("rule", "r1", {"n": 1}, ttl=60)
    other.put("rule", "r2", {"n": 2}, ttl=0)  # never expires: not listed
    before = store.version()
    assert store.version() == before
    # Its minute is up, without waiting one: the record and its place in the expiry list are moved into the past.
    raw = redis.Redis.from_url(redis_url)
    try:
        assert raw.zscore("wsm:expiring", "wsm:r:rule:r2") is None
        raw.pexpireat("wsm:r:rule:r1", 1)
        raw.zadd("wsm:expiring", {"wsm:r:rule:r1": 1})
    finally:
        raw.close()
    after = store.version()
    assert after != before
    assert store.version() == after  # once
    assert store.records("rule") == [{"n": 2}]


def test_a_flushed_database_restarts_the_version_beyond_every_number_held(
    two_workers: tuple[RedisStore, RedisStore], redis_url: str
) -> None:
    store, _ = two_workers
    store.put("rule", "r1", {"n": 1})
    held = store.version()
    raw = redis.Redis.from_url(redis_url)
    try:
        raw.flushdb()
    finally:
        raw.close()
    assert store.version() > held


def test_a_request_asks_for_the_version_once_and_sees_its_own_writes(
    two_workers: tuple[RedisStore, RedisStore],
) -> None:
    store, other = two_workers
    end = pin_version()
    try:
        pinned = store.version()
        # Another worker, meanwhile (its own process, so not this request's context): this request keeps its view.
        contextvars.Context().run(other.put, "fault", "f1", {"n": 1})
        assert store.version() == pinned
        store.put("rule", "r1", {"n": 1})  # this request's own write: its next reader reads again
        assert store.version() > pinned
        ended = current_pin()
    finally:
        end()
    assert ended is not None and not ended.open and current_pin() is None
    before = store.version()
    other.put("fault", "f2", {"n": 2})
    assert store.version() > before  # no request: every ask goes to Redis


def test_an_update_rests_on_what_redis_holds_not_on_what_this_worker_last_wrote(
    two_workers: tuple[RedisStore, RedisStore],
) -> None:
    store, other = two_workers

    def plus_one(r: Record) -> Record:
        return {**r, "n": r["n"] + 1}

    store.put("prediction", "p", {"n": 1}, tenant="a")
    with mock.patch.object(store._redis, "get", wraps=store._redis.get) as reads:
        assert store.update("prediction", "p", plus_one) == {"n": 2}
        assert store.update("prediction", "p", plus_one, tenant="a") == {"n": 3}
    assert reads.call_count == 0  # what it wrote last is what Redis holds: the compare-and-set alone
    other.update("prediction", "p", lambda r: {**r, "n": 10})  # another worker, since
    assert store.update("prediction", "p", plus_one) == {"n": 11}
    other.update("prediction", "p", lambda r: {**r, "n": 20})
    assert store.update("prediction", "p", lambda r: None) == {"n": 20}  # unchanged: what Redis holds
    store.update("prediction", "p", plus_one)
    other.put("prediction", "p", {"n": 30}, tenant="b")  # changed hands
    assert store.update("prediction", "p", plus_one, tenant="a") is None
    assert store.update("prediction", "p", plus_one, tenant="b") == {"n": 31}
    other.delete("prediction", "p")
    assert store.update("prediction", "p", plus_one) is None
    assert store.get("prediction", "p") is None


def test_what_readers_keep_on_a_shared_store_follows_changes_made_by_another_worker(
    two_workers: tuple[RedisStore, RedisStore],
) -> None:
    from mock_server.http.faults import Faults
    from mock_server.model.predictions import Outcome
    from mock_server.model.rules import Rules

    store, other = two_workers
    rules, faults = Rules(store), Faults(store)
    assert rules.rules() == [] and faults.match("GET", "/x", None) is None
    assert rules.behaviour_for("m").progression is None

    Rules(other).enqueue(Outcome(), model="m", times=None)
    Faults(other).add({"path": "/x", "status": 503, "times": 1})
    Rules(other).set_behaviour("m", progression="polls")
    assert [r.model for r in rules.rules()] == ["m"]
    assert rules.behaviour_for("m").progression == "polls"
    fired = faults.match("GET", "/x", None)
    assert fired is not None and fired.status == 503
    assert Faults(other).match("GET", "/x", None) is None  # its one use is spent, seen from the other worker too
    other.reset()
    assert rules.rules() == [] and rules.behaviour_for("m").progression is None


def test_what_readers_keep_under_the_version_follows_every_change_and_expiry() -> None:
    from mock_server.http.faults import Faults
    from mock_server.model.predictions import Outcome
    from mock_server.model.rules import Rules

    now = [1000.0]
    store = MemoryStore(Limits(record_ttl=5), clock=lambda: now[0])
    rules, faults = Rules(store), Faults(store)
    assert rules.rules() == [] and faults.match("GET", "/x", None) is None
    assert rules.behaviour_for("m").progression is None

    rules.enqueue(Outcome(), model="m", times=None)
    faults.add({"path": "/x", "status": 503, "times": 1})
    rules.set_behaviour("m", progression="polls")
    assert [r.model for r in rules.rules()] == ["m"]
    assert rules.behaviour_for("m").progression == "polls"
    fired = faults.match("GET", "/x", None)
    assert fired is not None and fired.status == 503
    assert faults.match("GET", "/x", None) is None  # its one use is spent

    faults.add({"path": "/x", "status": 500})
    now[0] += 6  # every record above has expired
    assert rules.rules() == [] and faults.match("GET", "/x", None) is None
    assert rules.behaviour_for("m").progression is None


# Few keys, so that deletes and inserts again of the same key are common: what makes an order entry stale.
_KEYS = st.sampled_from([f"k{i}" for i in range(12)])
_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), _KEYS, st.binary(max_size=3)),
        st.tuples(st.just("rewrite"), _KEYS, st.binary(max_size=3)),
        st.tuples(st.just("pop"), _KEYS, st.just(b"")),
        st.tuples(st.just("pop_oldest"), st.just(""), st.just(b"")),
    ),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(_OPERATIONS)
def test_a_table_keeps_records_and_their_order_as_one_ordered_dict_would(
    operations: list[tuple[str, str, bytes]],
) -> None:
    with mock.patch.object(memory, "CHUNK", 2):  # chunks of two entries: freezing and passing chunks are exercised
        table, model = Table(), OrderedDict[str, tuple[str, float, bytes]]()
        for operation, key, raw in operations:
            if operation == "insert":  # the tenant and expiry vary with the record, to be read back with it
                table.insert(key, f"tenant-{key}-{len(raw)}", float(len(raw)), raw)
                model.pop(key, None)
                model[key] = (f"tenant-{key}-{len(raw)}", float(len(raw)), raw)
            elif operation == "rewrite" and key in model:  # in place: the record keeps its place, tenant and expiry
                table.rewrite(key, raw)
                model[key] = (*model[key][:2], raw)
            elif operation == "pop":
                assert table.pop(key) == (model.pop(key, None) is not None)
            elif operation == "pop_oldest":
                oldest = table.oldest()
                assert (oldest[0] if oldest else None) == next(iter(model), None)
                if oldest is not None:
                    table.pop(oldest[0])
                    model.popitem(last=False)
            assert len(table) == len(model)
            assert [(key, slot[:3]) for key, slot in table.items()] == list(model.items())
            assert all((slot := table.get(key)) is not None and slot[:3] == kept for key, kept in model.items())


def test_a_key_inserted_again_and_again_leaves_no_trail() -> None:
    table = Table()
    table.insert("kept", "tenant", 0.0, b"x")  # the oldest record stays, so stale entries never reach the front
    for _ in range(10_000):
        table.insert("again", "tenant", 0.0, b"y")
    assert len(table) == 2
    assert table._entries <= 2 * len(table) + 64 + 1  # stale order entries are dropped, not kept
