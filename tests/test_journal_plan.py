"""Pure units: how journal entries become operations, and what the overlay shows."""

from __future__ import annotations

from deeplake_sdk.journal.drain import Catalog, Consistency, Drain, _Run
from deeplake_sdk.journal.overlay import Overlay
from deeplake_sdk.journal.plan import EARLIER_IDS, SENT_IDS, first_split_group, plan
from deeplake_sdk.journal.store import Entry, NewEntry


def entry(seq: int, op: str, path: str, data: bytes = b"", attempts: int = 0, **meta) -> Entry:
    meta.setdefault("stamp", f"2026-01-01T00:00:{seq:02d}.000000Z")
    return Entry(seq, op, "memory", path, data, meta, "me", 0.0, attempts, "pending", None)


def test_a_write_and_its_appends_become_one_write_with_the_last_date():
    (segment,) = plan(
        [
            entry(1, "put", "/a", b"x", row_id="r"),
            entry(2, "append", "/a", b"y"),
            entry(3, "append", "/a", b"z"),
        ]
    )
    (op,) = segment.lanes[("memory", "/a")].ops
    assert (op.kind, op.data, op.seqs, op.meta["row_id"]) == ("put", b"xyz", [1, 2, 3], "r")
    assert op.stamp == entry(3, "append", "/a").meta["stamp"]


def test_appends_never_sent_merge_but_one_already_sent_keeps_its_bytes():
    (segment,) = plan(
        [
            entry(1, "append", "/a", b"x", attempts=1, expected=5, target="t"),
            entry(2, "append", "/a", b"y"),
            entry(3, "append", "/a", b"z"),
        ]
    )
    ops = segment.lanes[("memory", "/a")].ops
    assert [(o.data, o.seqs, o.fresh) for o in ops] == [(b"x", [1], False), (b"yz", [2, 3], True)]
    assert ops[0].meta["expected"] == 5  # its recorded offset is kept for the landed check


def sent(seq: int, path: str, group: int, members: int) -> Entry:
    """An append an earlier drain sent as part of group ``group`` of ``members`` entries."""
    return entry(seq, "append", path, b"x", attempts=1, group=group, members=members, expected=0)


def test_a_batch_is_cut_before_an_append_group_it_does_not_hold_whole():
    whole = [
        entry(1, "put", "/b"),
        sent(2, "/a", 2, 2),
        entry(3, "event", "/s"),
        sent(4, "/a", 2, 2),
    ]
    assert first_split_group(whole) is None
    assert first_split_group([]) is None
    # the third entry of group 2 is beyond the batch: cut before the group's first entry
    assert first_split_group([entry(1, "put", "/b"), sent(2, "/a", 2, 3), sent(4, "/a", 2, 3)]) == 1
    # the cut must not split a whole group that straddles it either
    straddling = [
        sent(1, "/c", 1, 2),
        sent(2, "/a", 2, 1),
        sent(3, "/c", 1, 2),
        sent(5, "/d", 5, 2),
    ]
    assert first_split_group(straddling) == 3
    straddling = [
        sent(1, "/c", 1, 2),
        sent(2, "/d", 2, 2),
        sent(3, "/d", 2, 2),
        sent(4, "/c", 1, 2),
    ]
    assert first_split_group([*straddling, sent(5, "/e", 5, 9)]) == 4
    assert first_split_group([sent(2, "/c", 2, 3), sent(3, "/c", 2, 3), entry(4, "put", "/d")]) == 0
    # a group that began before the batch, and entries recorded without a size, are not counted
    assert (
        first_split_group([sent(3, "/a", 2, 2), entry(4, "append", "/b", attempts=1, group=4)])
        is None
    )


def test_a_write_sent_with_the_appends_it_absorbed_is_never_cut_from_them():
    """A write and two appends were sent as one statement (their entries stay fresh, marked as
    a group). A batch holding the write alone would confirm it from the row that already holds
    the appends, then send the appends again on top of them."""
    group = {"group": 1, "members": 3}
    write = entry(1, "put", "/a", b"w", row_id="r", sent_ids=["r"], **group)
    first, second = (entry(s, "append", "/a", b"x", **group) for s in (3, 5))
    assert first_split_group([write, entry(2, "put", "/b"), first]) == 0
    (segment,) = plan([write, entry(2, "put", "/b"), first, entry(4, "event", "/s"), second])
    (op,) = segment.lanes[("memory", "/a")].ops
    assert (op.kind, op.data, op.seqs) == ("put", b"wxx", [1, 3, 5])


def test_the_drain_records_a_write_with_its_absorbed_appends_as_a_group():
    recorded = []
    drain = Drain(
        None,
        Catalog(lambda table, kind: frozenset()),
        Consistency(),
        attempt=lambda seqs, meta: recorded.append((list(seqs), dict(meta))),
        lanes=lambda keys: {},
    )
    (segment,) = plan([entry(1, "put", "/a", b"w", row_id="r"), entry(2, "append", "/a", b"x")])
    run = _Run(segment.lanes[("memory", "/a")], {"id": "r", "size": 1, "date": "d"})
    drain._record([run])  # sent as an UPDATE of the known row
    group = {"group": 1, "members": 2}
    assert recorded == [([], {1: group, 2: group})]


def test_a_delete_or_a_write_supersedes_what_came_before_in_its_lane():
    (segment,) = plan(
        [
            entry(1, "put", "/a", b"x"),
            entry(2, "append", "/a", b"y"),
            entry(3, "delete", "/a"),
            entry(4, "append", "/b", b"1"),
            entry(5, "put", "/b", b"2"),
        ]
    )
    a = segment.lanes[("memory", "/a")].ops
    b = segment.lanes[("memory", "/b")].ops
    assert [(o.kind, o.seqs) for o in a] == [("delete", [1, 2, 3])]
    assert [(o.kind, o.data, o.seqs) for o in b] == [("put", b"2", [4, 5])]


def test_what_superseded_operations_may_still_create_is_carried_to_what_supersedes_them():
    """A write whose creates were sent (ids recorded) and an append whose create was sent may
    still show after a later write or delete of their file: its drain must wait for them."""
    (segment,) = plan(
        [
            entry(1, "put", "/a", b"x", row_id="r", sent_ids=["r", "r-1"]),
            entry(2, "delete", "/a"),
            entry(3, "append", "/b", b"1", attempts=1, append_id="q", create=True, group=3),
            entry(4, "put", "/b", b"2", row_id="s"),
            entry(5, "put", "/c", b"3", row_id="t", sent_ids=["t"]),
            entry(6, "append", "/c", b"4"),
        ]
    )
    (a,) = segment.lanes[("memory", "/a")].ops
    (b,) = segment.lanes[("memory", "/b")].ops
    (c,) = segment.lanes[("memory", "/c")].ops
    assert (a.kind, a.meta[EARLIER_IDS]) == ("delete", ["r", "r-1"])
    assert (b.kind, b.meta[EARLIER_IDS]) == ("put", ["q"])
    assert (c.kind, c.data, c.meta[SENT_IDS]) == ("put", b"34", ["t"])
    assert EARLIER_IDS not in c.meta


def test_renames_and_tree_deletes_are_barriers_between_segments():
    segments = plan(
        [
            entry(1, "put", "/d/x", b"x"),
            entry(2, "rename_tree", "/d", dst="/e"),
            entry(3, "put", "/e/y", b"y"),
            entry(4, "delete_tree", "/e"),
            entry(5, "put", "/z", b""),
        ]
    )
    shapes = [(sorted(s.lanes), s.barrier.kind if s.barrier else None, s.seqs) for s in segments]
    assert shapes == [
        ([("memory", "/d/x")], None, [1]),
        ([], "rename_tree", [2]),
        ([("memory", "/e/y")], None, [3]),
        ([], "delete_tree", [4]),
        ([("memory", "/z")], None, [5]),
    ]


def test_events_of_a_segment_are_kept_apart_from_file_lanes():
    events = [
        Entry(
            i,
            "event",
            "sessions",
            "/s.jsonl",
            b"{}",
            {"row": {"id": str(i)}},
            "me",
            0.0,
            0,
            "pending",
            None,
        )
        for i in (1, 2)
    ]
    (segment,) = plan([*events, entry(3, "put", "/a", b"x")])
    assert [op.seqs for op in segment.events] == [[1], [2]]
    assert list(segment.lanes) == [("memory", "/a")]


def new(op: str, path: str, data: bytes = b"", **meta) -> NewEntry:
    return NewEntry(op, "memory", path, data, meta)


def test_overlay_shows_full_content_deletes_and_what_needs_the_table():
    overlay = Overlay()
    overlay.add(
        [1, 2, 3, 4, 5],
        [
            new("put", "/a", b"x", row={"mime_type": "text/plain"}),
            new("append", "/a", b"y"),
            new("append", "/b", b"tail"),
            new("delete", "/c"),
            new("append", "/c", b"again"),
        ],
    )
    a, b, c = (
        overlay.file("memory", "/a"),
        overlay.file("memory", "/b"),
        overlay.file("memory", "/c"),
    )
    assert (a.state, a.data, a.seqs, a.meta["mime_type"]) == ("full", b"xy", (1, 2), "text/plain")
    assert (b.state, b.seqs) == ("wait", (3,))  # an append to a stored file needs its base
    assert (c.state, c.data) == ("full", b"again")  # appended after a delete: a new file
    assert overlay.file("memory", "/nothing") is None
    overlay.remove([1, 2])
    assert overlay.file("memory", "/a") is None
    assert overlay.seqs() == {3, 4, 5}


def test_overlay_sends_reads_under_a_pending_rename_to_the_table():
    overlay = Overlay()
    overlay.add([1, 2], [new("put", "/d/x", b"x"), new("rename_tree", "/d", dst="/e")])
    assert overlay.file("memory", "/e/x").state == "wait"
    assert overlay.file("memory", "/d/x").seqs == (2, 1)
    assert overlay.file("memory", "/other") is None


def test_overlay_lists_the_pending_files_of_a_scope_and_forgets_confirmed_ones():
    overlay = Overlay()
    paths = ["/notes/u1/a.md", "/notes/u1/deep/b.md", "/notes/u10/c.md", "/notes/u1", "/x.md"]
    overlay.add(range(1, 6), [new("put", p, b"x") for p in paths])
    overlay.add([6], [NewEntry("event", "sessions", "/notes/u1/s.jsonl", b"{}", {})])
    assert list(overlay.paths("memory", "/notes/u1")) == paths[3:4] + sorted(paths[:2])
    assert list(overlay.paths("memory", "/notes/u1/a.md")) == ["/notes/u1/a.md"]
    assert list(overlay.paths("memory")) == sorted(paths)
    assert list(overlay.paths("memory", "/none", ["/x.md", "/y.md"])) == ["/x.md"]
    assert overlay.event_paths("sessions", "/notes") == ["/notes/u1/s.jsonl"]
    assert overlay.event_paths("memory", "/notes/u10") == ["/notes/u10/c.md"]
    overlay.remove([1, 3, 6])
    assert list(overlay.paths("memory", "/notes")) == ["/notes/u1", "/notes/u1/deep/b.md"]
    assert overlay.event_paths("sessions") == []
    overlay.add([7], [new("append", "/notes/u10/c.md", b"y")])
    assert list(overlay.paths("memory", "/notes/u10")) == ["/notes/u10/c.md"]
