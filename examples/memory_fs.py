"""The memory filesystem: write, append, read, list, copy, move, remove, errors and the cache.

Run it with no arguments (see quickstart.py for where it connects). Its client is configured
with its own tables ``example_memory`` and ``example_sessions`` (the filesystem uses the
client's tables: ``DEEPLAKE_TABLE`` / ``DEEPLAKE_SESSIONS_TABLE`` when the client names none),
dropped first so every run starts clean.
"""

import errno
import tempfile

from deeplake_sdk import ContentCache, DeeplakeFs, FsError
from deeplake_sdk.server import connect


def show(title, value=""):
    print(f"\n== {title}")
    for line in str(value).rstrip("\n").splitlines():
        print(f"   {line}".rstrip())


with (
    connect(table="example_memory", sessions_table="example_sessions") as api,
    tempfile.TemporaryDirectory() as cache_dir,
):
    for table in (api.credentials.table, api.credentials.sessions_table):
        api.drop_table(table, missing_ok=True)

    # Every change is durable in the local journal when the call returns; the journal's
    # flusher stores it in the background. flush() and close() wait until it is stored.
    with DeeplakeFs(api, cache=ContentCache(cache_dir)) as fs:
        fs.write_text("/profile/user.md", "name: Ada\nlikes: tea\n", description="who the user is")
        fs.write_text("/projects/engine.md", "# Analytical engine\n")
        fs.append_text("/projects/engine.md", "- status: designing\n")  # sent with the write
        fs.flush()  # returns how many were still waiting: the flusher may have sent some
        show("after flush(), /projects/engine.md reads", fs.read_text("/projects/engine.md"))

        # An append to a stored file is one UPDATE guarded by the expected size: applied
        # exactly once even if it has to be retried. Reading waits until it is stored.
        fs.append_text("/projects/engine.md", "- next: punch cards\n")
        show("after an append to the stored file", fs.read_text("/projects/engine.md"))

        fs.mkdir("/archive")
        fs.cp("/projects/engine.md", "/archive/engine-v1.md")
        fs.mv("/profile/user.md", "/people/ada.md")
        fs.flush()
        show(
            "walk('/')",
            "\n".join(f"{d}: dirs={sub} files={files}" for d, sub, files in fs.walk("/")),
        )
        st = fs.stat("/people/ada.md")
        show(
            "stat('/people/ada.md')",
            f"{st.type}, {st.size} bytes, {st.mime_type}, updated {st.last_update_date}",
        )
        show("/people/ada.md (moved from /profile/user.md)", fs.read_text("/people/ada.md"))

        # Errors carry errno codes, like the os module's.
        show("errors")
        for action in (
            lambda: fs.read_text("/nope.md"),
            lambda: fs.rm("/projects"),
            lambda: fs.ls("/people/ada.md"),
        ):
            try:
                action()
            except FsError as exc:
                print(f"   {errno.errorcode[exc.errno]:<8} {exc}")
        fs.rm("/archive", recursive=True)

        # /index.md is generated from the metadata when no real file has that path.
        show("/index.md", fs.read_text("/index.md"))

    # A new filesystem (another run, another process) on the same cache directory reads
    # unchanged files from the cache: the entry is valid while size and date match. A
    # filesystem learns sizes and dates when it loads the metadata (here for ls /: 1 round
    # trip, both tables in one statement); before that, a read asks for the file's row.
    cache = ContentCache(cache_dir)
    with DeeplakeFs(api, cache=cache) as fs:
        before = api.stats.requests_sent
        fs.ls("/")
        fs.read_text("/projects/engine.md")
        fs.read_text("/people/ada.md")
        show(
            "second open: ls, then two reads",
            f"cache hits {cache.stats.hits}, misses {cache.stats.misses}, "
            f"round trips {api.stats.requests_sent - before}",
        )
    cache.close()
    print("\ndone")
