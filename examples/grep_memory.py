"""grep over agent memory: GNU grep flags and output, in one round trip.

Run it with no arguments (see quickstart.py for where it connects). It writes 120 notes to
its client's table ``example_memory`` (dropped first), then searches them. The server filters the
files with a LIKE test on the longest literal of the pattern; lines are matched here.
"""

from deeplake_sdk import DeeplakeFs
from deeplake_sdk.bench.reference import ReferenceFs
from deeplake_sdk.grep import GrepOptions, format_gnu
from deeplake_sdk.server import connect

TOPICS = ["billing", "deploy", "on-call", "roadmap", "hiring", "security"]
OWNERS = ["ada", "grace", "linus", "adam"]
LETTER = {
    "ignore_case": "i",
    "line_numbers": "n",
    "files_with_matches": "l",
    "count": "c",
    "word": "w",
    "invert": "v",
    "fixed": "F",
}


def round_trips(api, since):
    return api.stats.requests_sent - since


with connect(table="example_memory") as api:
    api.drop_table(api.credentials.table, missing_ok=True)
    with DeeplakeFs(api, sessions_table=None, cache=False) as fs:
        for i in range(120):
            topic = TOPICS[i % len(TOPICS)]
            owner = OWNERS[(i // len(TOPICS)) % len(OWNERS)]
            fs.write_text(
                f"/meetings/{topic}/{i:03d}.md",
                f"# {topic} sync #{i}\nowner: {owner}\n"
                + ("TODO: rotate the API keys\n" if topic == "security" and i % 4 == 1 else "")
                + (f"Decision: ship v{i // 10} on Friday\n" if topic == "deploy" else "")
                + "notes: nothing else\n",
            )
        fs.flush()

        searches = [
            ("TODO", "/", {"line_numbers": True}),
            (
                "todo: rotate",
                "/meetings/security",
                {"ignore_case": True, "files_with_matches": True},
            ),
            (r"ship v[0-9]+ on friday", "/meetings/deploy", {"ignore_case": True, "count": True}),
            ("ada", "/meetings/hiring", {"word": True, "files_with_matches": True}),
            ("owner: ada", "/meetings/billing", {"invert": True, "line_numbers": True}),
        ]
        for pattern, path, flags in searches:
            before = api.stats.requests_sent
            results = fs.grep(pattern, path, **flags)
            opts = GrepOptions(pattern, **flags)
            lines = format_gnu(results, opts, with_filename=True)
            shown = "-" + "".join(LETTER[k] for k in flags)
            print(
                f"\n== grep {shown} {pattern!r} {path}: {len(lines)} lines, "
                f"{round_trips(api, before)} round trip(s)"
            )
            for line in lines[:4]:
                print(f"   {line}")
            if len(lines) > 4:
                print(f"   ... {len(lines) - 4} more")

        # The reference client read every file, one round trip each, before matching.
        per_file = ReferenceFs(api, sessions_table=None, cache=False)
        per_file.ls("/")  # its metadata, loaded first: the files in scope
        before = api.stats.requests_sent
        slow = per_file.grep("Friday", "/meetings/deploy")
        fast_before = api.stats.requests_sent
        fast = fs.grep("Friday", "/meetings/deploy")
        print(
            f"\n== same answer ({len(fast)} files), one query vs one read per file: "
            f"{round_trips(api, fast_before)} vs {fast_before - before} round trips"
        )
        assert [r.path for r in slow] == [r.path for r in fast]
        per_file.close()
    print("\ndone")
