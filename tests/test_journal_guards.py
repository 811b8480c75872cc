"""A change the service runs late never undoes a newer one: the date guard (real server).

Statements are sent as a late copy would be (a request still queued on the service when its
process died, or the slow first copy of a resend): after the newer change they must leave.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from deeplake_sdk import DeeplakeFs
from deeplake_sdk.dates import next_stamp, utc_stamp
from deeplake_sdk.statements import journal as sj

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def at(seconds: float) -> str:
    return utc_stamp(NOW + timedelta(seconds=seconds))


def test_a_row_newer_than_a_change_supersedes_it_unless_dated_past_the_slack():
    slack = sj.FUTURE_SLACK_S
    assert sj.supersedes(at(1), at(0), now=NOW)
    assert not sj.supersedes(at(0), at(0), now=NOW)  # the change itself, sent again
    assert not sj.supersedes(at(-1), at(0), now=NOW)
    assert sj.supersedes(at(slack - 1), at(0), now=NOW)
    assert not sj.supersedes(at(slack + 1), at(0), now=NOW)  # a clock far ahead: no hold
    assert not sj.supersedes("Mon Jun 01 2026", at(0), now=NOW)  # another format sorting higher
    assert not sj.supersedes("", at(0), now=NOW)  # the tables' default


def _row(path: str, text: str, date: str) -> dict:
    return {
        "path": path,
        "filename": path.rsplit("/", 1)[-1],
        "content": text.encode(),
        "summary": text,
        "mime_type": "text/markdown",
        "size_bytes": len(text.encode()),
        "last_update_date": date,
    }


def test_a_late_rewrite_leaves_the_newer_write(raw, api):
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/a.md", "older\n")
        older = fs.stat("/a.md").last_update_date
        fs.write_text("/a.md", "newer\n")
    sql, params = sj.replace(api.ensure_table(), _row("/a.md", "older\n", older))
    assert api.execute(sql, params).row_count == 0
    assert raw.rows("SELECT summary FROM memory") == [["newer\n"]]
    # the same change, not late: it applies (a resend of the latest write is exact)
    sql, params = sj.replace(api.ensure_table(), _row("/a.md", "again\n", next_stamp()))
    assert api.execute(sql, params).row_count == 1


def test_a_late_append_leaves_a_file_rewritten_to_the_size_it_expects(raw, api):
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/a.md", "older\n")
        fs.flush()
        (before,) = api.query("SELECT id, last_update_date FROM memory")
        fs.write_text("/a.md", "newer\n")  # the same size
    late = sj.append_cas(
        api.ensure_table(),
        "/a.md",
        before["id"],
        b"late\n",
        text="late\n",
        expected_size=6,
        expected_date=before["last_update_date"],
        date=next_stamp(),
    )
    assert api.execute(*late).row_count == 0
    assert raw.rows("SELECT summary FROM memory") == [["newer\n"]]


def test_late_deletes_and_renames_leave_a_file_written_since(raw, api):
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/dir/d.md", "first\n")
        fs.write_text("/b.md", "target\n")
        before = next_stamp()  # the date of deletes and renames made now, run late
        fs.write_text("/dir/d.md", "written since\n")
    table = api.ensure_table().name
    for sql, params in [
        sj.delete_path(table, "/dir/d.md", not_after=before),
        *sj.rename_path(table, "/dir/d.md", "/b.md", "b.md", before),
        sj.rename_tree(table, "/dir", "/moved", before),
        sj.delete_tree(table, "/dir", not_after=before),
    ]:
        assert api.execute(sql, params).row_count == 0
    assert raw.rows("SELECT path, summary FROM memory ORDER BY path") == [
        ["/b.md", "target\n"],
        ["/dir/d.md", "written since\n"],
    ]


def test_a_file_dated_far_ahead_is_still_rewritten_and_removed(raw, api):
    ahead = utc_stamp(datetime.now(timezone.utc) + timedelta(days=365))
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/f.md", "dated next year\n", last_update_date=ahead)
        fs.write_text("/f.md", "now\n")
        fs.flush()
        assert raw.rows("SELECT summary FROM memory") == [["now\n"]]
        fs.write_text("/g.md", "dated next year\n", last_update_date=ahead)
        fs.flush()
        fs.rm("/g.md")
    assert raw.rows("SELECT path FROM memory") == [["/f.md"]]


def test_a_write_given_an_older_date_replaces_the_file(raw, api):
    """A caller's own date (an import keeping the original dates) is not a late change."""
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/i.md", "today\n")
        fs.flush()
        fs.write_text("/i.md", "imported\n", last_update_date="2020-01-01T00:00:00.000000Z")
    assert raw.rows("SELECT summary, last_update_date FROM memory") == [
        ["imported\n", "2020-01-01T00:00:00.000000Z"]
    ]


def test_a_late_delete_of_event_copies_removes_only_the_copies_it_names(raw, api):
    """The copy kept may be dated back as the event: a delete naming the copy kept (all but
    it) would remove it when run late; one naming the surplus copies never does."""
    table = api.ensure_sessions_table().name
    first, later = "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:03.000000Z"
    insert = f'INSERT INTO "{table}" (id, path, message, last_update_date) VALUES ($1, $2, $3, $4)'
    for mark in (first, later):  # two copies of one event, as a grown read lag leaves them
        raw.rows(insert, "e1", "/s.jsonl", "{}", mark)
    drop = sj.delete_event_copies(table, "e1", [later])
    for _ in range(2):  # applied, then run again late
        api.execute(*drop)
        assert raw.rows(f'SELECT last_update_date FROM "{table}"') == [[first]]


def test_a_late_dedupe_leaves_a_file_created_at_the_path_since(raw, api):
    table = api.ensure_table().name
    insert = f'INSERT INTO "{table}" (id, path, summary, size_bytes) VALUES ($1, $2, $3, $4)'
    for row_id in ("kept", "twin"):  # two creators of one path
        raw.rows(insert, row_id, "/d.md", "x", 1)
    dedupe = sj.dedupe(table, "/d.md", ["twin"])
    api.execute(*dedupe)
    assert raw.rows(f'SELECT id FROM "{table}"') == [["kept"]]
    raw.rows(f'DELETE FROM "{table}"')  # the file removed, then created again
    raw.rows(insert, "again", "/d.md", "y", 1)
    api.execute(*dedupe)  # the first dedupe, run late
    assert raw.rows(f'SELECT id, summary FROM "{table}"') == [["again", "y"]]


def test_rows_without_a_date_are_older_than_any_change(raw, api):
    """Another client's table may hold NULL dates: such a row is rewritten, not left."""
    raw.rows(
        'CREATE TABLE "loose" (id TEXT, path TEXT, filename TEXT, summary TEXT, '
        "mime_type TEXT, size_bytes BIGINT, last_update_date TEXT) USING deeplake"
    )
    raw.rows("INSERT INTO \"loose\" (id, path, summary, size_bytes) VALUES ('r', '/n.md', 'a', 1)")
    layout = api.ensure_table("loose")
    row = _row("/n.md", "rewritten\n", next_stamp())
    del row["content"]
    assert api.execute(*sj.replace(layout, row)).row_count == 1
    assert raw.rows('SELECT summary FROM "loose"') == [["rewritten\n"]]
