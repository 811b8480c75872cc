"""Which copy of a session event the table keeps (a pure value fed the reads a drain makes)."""

from __future__ import annotations

from datetime import datetime, timezone

from deeplake_sdk.journal import Consistency
from deeplake_sdk.journal.events import EventCopies

POLICY = Consistency(window=2.0, lag_factor=4.0)
META = {"row": {"id": "e1", "last_update_date": "2026-01-01T00:00:00.000000Z"}}
FIRST = META["row"]["last_update_date"]


def _sent_twice(first_answer: float = 10.0, second_answer: float = 11.0) -> EventCopies:
    """An event sent at 10 s, not shown within the window, sent again at 11 s."""
    copies = EventCopies.of(META, marked=True, sent_before=None)
    copies.new_copy()
    copies.sent(first_answer)
    copies.new_copy(datetime(2026, 1, 1, 0, 0, 11, tzinfo=timezone.utc))
    copies.sent(second_answer)
    return copies


def test_the_first_copy_is_the_event_itself_and_every_later_one_has_a_mark_of_its_own():
    copies = EventCopies.of(META, marked=True, sent_before=None)
    now = datetime(2026, 1, 1, 0, 0, 5, tzinfo=timezone.utc)
    assert copies.new_copy(now) == FIRST
    second, third = copies.new_copy(now), copies.new_copy(now)
    assert second == "2026-01-01T00:00:05.000000Z"
    assert third == "2026-01-01T00:00:05.000001Z"
    assert copies.marks == [FIRST, second, third]


def test_an_event_that_does_not_show_is_sent_again_only_after_the_window():
    copies = EventCopies.of(META, marked=True, sent_before=None)
    copies.new_copy()
    copies.sent(10.0)
    assert copies.step([], asked=10.2, answered=10.25, window=0.5, policy=POLICY).action == "wait"
    assert copies.step([], asked=10.5, answered=10.55, window=0.5, policy=POLICY).action == "send"


def test_the_latest_copy_shown_alone_is_kept_and_dated_as_the_event_again():
    copies = _sent_twice()
    second = copies.marks[1]
    # the earlier copy, not shown, was lost: the second is kept, with the event's own date
    step = copies.step([second], asked=11.1, answered=11.15, window=0.5, policy=POLICY)
    assert step == ("restore", None)
    assert copies.keep == second
    copies.restored(11.2)
    assert copies.step([second], asked=11.3, answered=11.4, window=0.5, policy=POLICY) == (
        "wait",
        None,
    )
    # the update did not show within the window: send it again
    assert copies.step([second], asked=11.7, answered=11.8, window=0.5, policy=POLICY) == (
        "restore",
        None,
    )
    assert copies.step([FIRST], asked=11.9, answered=12.0, window=0.5, policy=POLICY) == (
        "ok",
        None,
    )


def test_the_first_copy_shown_alone_when_it_is_the_only_one_is_done():
    copies = EventCopies.of(META, marked=True, sent_before=None)
    copies.new_copy()
    copies.sent(10.0)
    assert copies.step([FIRST], asked=10.1, answered=10.2, window=0.5, policy=POLICY) == (
        "ok",
        None,
    )


def test_an_earlier_copy_shown_alone_holds_until_the_later_could_show_and_teaches_its_lag():
    copies = _sent_twice(first_answer=10.0, second_answer=11.0)
    first = copies.step([FIRST], asked=11.1, answered=11.2, window=0.5, policy=POLICY)
    assert first == ("wait", 11.2 - 10.0)  # the lag it took, learnt once
    # hold: 4 x 1.2 s = 4.8 s, at most the policy's 2 s window, after the second copy's answer
    again = copies.step([FIRST], asked=12.9, answered=13.0, window=0.5, policy=POLICY)
    assert again == ("wait", None)
    assert copies.step([FIRST], asked=13.0, answered=13.1, window=0.5, policy=POLICY).action == "ok"


def test_a_short_lag_holds_for_its_multiple_not_the_whole_window():
    copies = _sent_twice(first_answer=10.0, second_answer=10.05)
    policy = Consistency(window=5.0, lag_factor=2.0)
    assert (
        copies.step([FIRST], asked=10.1, answered=10.2, window=0.3, policy=policy).action == "wait"
    )
    # 2 x 0.2 s after the second copy's answer
    assert (
        copies.step([FIRST], asked=10.44, answered=10.5, window=0.3, policy=policy).action == "wait"
    )
    assert (
        copies.step([FIRST], asked=10.46, answered=10.5, window=0.3, policy=policy).action == "ok"
    )


def test_both_copies_shown_keep_the_first_and_wait_for_the_delete_to_show():
    """The first copy is dated as the event already: kept, nothing is dated back, and the
    delete names the later copy (a late run of it never removes the one kept)."""
    copies = _sent_twice()
    second = copies.marks[1]
    step = copies.step([FIRST, second], asked=11.1, answered=11.2, window=0.5, policy=POLICY)
    assert step.action == "drop"
    assert (copies.keep, copies.drop, copies.first_dropped) == (FIRST, [second], False)
    copies.dropped(11.3)
    both = [FIRST, second]
    assert copies.step(both, asked=11.5, answered=11.6, window=0.5, policy=POLICY).action == "wait"
    # the delete did not show within the window: delete again
    assert copies.step(both, asked=11.8, answered=11.9, window=0.5, policy=POLICY).action == "drop"
    # the latest copy showed and is gone: no later one can show, no hold
    assert copies.step([FIRST], asked=12.0, answered=12.1, window=0.5, policy=POLICY).action == "ok"


def test_a_later_copy_shown_during_the_hold_is_deleted_and_the_first_kept():
    copies = _sent_twice()
    second = copies.marks[1]
    assert (
        copies.step([FIRST], asked=11.1, answered=11.2, window=0.5, policy=POLICY).action == "wait"
    )
    step = copies.step([FIRST, second], asked=11.6, answered=11.7, window=0.5, policy=POLICY)
    assert step.action == "drop"
    assert (copies.keep, copies.drop) == (FIRST, [second])


def test_without_the_first_copy_the_latest_is_kept_and_the_delete_never_names_the_first():
    copies = _sent_twice()
    copies.new_copy(datetime(2026, 1, 1, 0, 0, 12, tzinfo=timezone.utc))
    copies.sent(12.0)
    second, third = copies.marks[1:]
    step = copies.step([second, third], asked=12.1, answered=12.2, window=0.5, policy=POLICY)
    assert step.action == "drop"
    assert (copies.keep, copies.drop, copies.first_dropped) == (third, [second], False)
    copies.dropped(12.3)
    step = copies.step([third], asked=12.9, answered=13.0, window=0.5, policy=POLICY)
    assert step.action == "restore" and copies.keep == third


def test_copies_that_cannot_be_told_apart_are_all_deleted_and_the_event_sent_once_more():
    copies = _sent_twice()
    step = copies.step([FIRST, FIRST], asked=11.1, answered=11.2, window=0.5, policy=POLICY)
    assert step.action == "drop"
    assert (copies.keep, copies.drop, copies.first_dropped) == (None, [FIRST], True)
    copies.dropped(11.3)
    assert copies.step([], asked=11.5, answered=11.6, window=0.5, policy=POLICY).action == "wait"
    assert copies.step([], asked=11.8, answered=11.9, window=0.5, policy=POLICY).action == "send"
    third = copies.new_copy(datetime(2026, 1, 1, 0, 0, 12, tzinfo=timezone.utc))
    copies.sent(12.0)
    # a late run of the delete that named the event's date would remove a copy dated back to
    # it: the copy kept keeps its own mark
    assert copies.step([third], asked=12.1, answered=12.2, window=0.5, policy=POLICY).action == "ok"


def test_a_process_resuming_an_event_whose_first_date_was_deleted_dates_nothing_back():
    meta = {**META, "copies": [FIRST, "2026-01-01T00:00:03.000000Z"], "first_dropped": True}
    copies = EventCopies.of(meta, marked=True, sent_before=20.0)
    latest = copies.marks[-1]
    assert copies.step([latest], asked=20.1, answered=20.2, window=0.5, policy=POLICY) == (
        "ok",
        None,
    )


def test_a_table_without_last_update_date_takes_any_row_as_the_event():
    copies = EventCopies.of(META, marked=False, sent_before=None)
    copies.new_copy()
    copies.sent(10.0)
    copies.new_copy()
    copies.sent(11.0)
    assert copies.step([None], asked=11.1, answered=11.2, window=0.5, policy=POLICY).action == "ok"
    step = copies.step([None, None], asked=11.1, answered=11.2, window=0.5, policy=POLICY)
    assert step.action == "ok"


def test_copies_recorded_by_an_earlier_process_are_waited_for_the_whole_window():
    meta = {**META, "copies": [FIRST, "2026-01-01T00:00:03.000000Z"]}
    copies = EventCopies.of(meta, marked=True, sent_before=20.0)
    assert copies.marks == meta["copies"]
    # its copies' answers are unknown here: an earlier copy alone holds for the policy's window
    assert copies.step([FIRST], asked=21.9, answered=22.0, window=0.5, policy=POLICY) == (
        "wait",
        None,
    )
    assert copies.step([FIRST], asked=22.0, answered=22.1, window=0.5, policy=POLICY).action == "ok"
    assert copies.new_copy() not in meta["copies"]


def test_an_event_sent_before_without_recorded_copies_is_done_once_it_shows():
    copies = EventCopies.of(META, marked=True, sent_before=20.0)
    assert copies.marks == [FIRST]
    assert copies.step([FIRST], asked=20.1, answered=20.2, window=0.5, policy=POLICY) == (
        "ok",
        None,
    )
