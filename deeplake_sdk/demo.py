"""``make demo`` (``python -m deeplake_sdk.demo``): an agent-memory session, end to end.

Starts the local server on a temporary embedded PostgreSQL, gives an agent some memory files,
runs one short session (every prompt, tool call and answer logged with
:class:`~deeplake_sdk.SessionLog`), writes and appends memory, greps it GNU-style, shows the
generated ``/index.md``, then stops the server and its PostgreSQL and removes their data.
Nothing outside a temporary directory is touched, and no credentials are needed.
"""

from __future__ import annotations

import sys
import textwrap
import time
from typing import Any

from deeplake_sdk.api import DeeplakeApi
from deeplake_sdk.fs import DeeplakeFs
from deeplake_sdk.grep import GrepOptions, format_gnu
from deeplake_sdk.server import local
from deeplake_sdk.sessions import SessionLog, assistant_message, tool_call, user_message

MEMORY = {
    "/profile/ada.md": (
        "name: Ada Lovelace\nrole: product lead\nprefers: short answers, metric units\n",
        "who the user is",
    ),
    "/projects/launch.md": (
        "# Launch of the analytical engine\nDecision: launch on June 3\n"
        "Owner of the checklist: Grace\nTODO: book the venue\n",
        "launch plan and decisions",
    ),
    "/people/grace.md": (
        "Grace Hopper, engineering. Owns the launch checklist.\n",
        "colleague",
    ),
}


class Demo:
    """Prints the demo's sections and keeps the clock."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.step = 0

    def section(self, title: str) -> None:
        """Start a numbered section."""
        self.step += 1
        print(f"\n[{self.step}] {title}")

    @staticmethod
    def say(text: str = "", indent: int = 4) -> None:
        """Print indented lines, long ones wrapped."""
        for line in text.splitlines() or [""]:
            wrapped = textwrap.wrap(
                line,
                76 - indent,
                subsequent_indent="  ",
                break_on_hyphens=False,
                break_long_words=False,
            ) or [""]
            for part in wrapped:
                print((" " * indent + part).rstrip())

    def elapsed(self) -> str:
        """Seconds since the demo started."""
        return f"{time.monotonic() - self.started:.1f} s"


def grep_lines(fs: DeeplakeFs, pattern: str, path: str = "/", **flags: Any) -> list[str]:
    """Run ``fs.grep`` and format the result as GNU grep prints it."""
    sessions = flags.pop("include_sessions", False)
    results = fs.grep(pattern, path, include_sessions=sessions, **flags)
    return format_gnu(results, GrepOptions(pattern, **flags), with_filename=True)


def run(demo: Demo) -> None:
    """The session itself, with the server already chosen by :func:`main`."""
    demo.section("starting the local server (embedded PostgreSQL, temporary data)")
    with local() as srv:
        demo.say(f"listening on {srv.url} after {demo.elapsed()}")
        api = DeeplakeApi(srv.token, srv.org, "demo", srv.url)

        demo.section("opening the memory filesystem")
        with DeeplakeFs(api, cache=False, author="agent") as fs:
            demo.say(
                f"tables '{fs.table}' and '{fs.sessions_table}' ensured, synced and loaded "
                "in parallel"
            )
            for path, (text, description) in MEMORY.items():
                fs.write_text(path, text, description=description)
            stored = fs.flush()
            demo.say(f"wrote {stored} memory files in one flush: {', '.join(MEMORY)}")

            demo.section("an agent session, every event logged")
            log = SessionLog(api, "launch", user="ada", project="demo")
            prompt = "When do we launch, and who owns the checklist?"
            log.log(user_message(prompt))
            demo.say(f"user  > {prompt}")
            hits = grep_lines(
                fs, "launch|checklist", "/projects", ignore_case=True, line_numbers=True
            )
            log.log(
                tool_call(
                    "Grep",
                    {"pattern": "launch|checklist", "path": "/projects", "-i": True, "-n": True},
                    {"matches": len(hits)},
                )
            )
            demo.say("tool  $ grep -in 'launch|checklist' /projects")
            for line in hits:
                demo.say(line, indent=12)
            answer = "June 3. Grace owns the checklist; the venue is still to book."
            log.log(assistant_message(answer))
            demo.say(f"agent < {answer}")
            demo.say(f"{log.events_logged} events stored in {log.path}")

            demo.section("writing and appending memory")
            fs.append_text("/projects/launch.md", "Venue: booked by Ada on June 1\n")
            fs.write_text(
                "/journal/2024-06-01.md",
                "- asked about the launch date\n",
                description="what happened today",
            )
            fs.append_text("/journal/2024-06-01.md", "- venue booked\n")
            fs.flush()
            demo.say("append /projects/launch.md   (one guarded UPDATE, applied once)")
            demo.say("write  /journal/2024-06-01.md + append (merged before the flush)")
            demo.say("")
            demo.say(fs.read_text("/journal/2024-06-01.md").rstrip(), indent=6)

            demo.section("grep, GNU style, one round trip each")
            for title, lines in [
                ("grep -in venue /", grep_lines(fs, "venue", ignore_case=True, line_numbers=True)),
                ("grep -c -i grace /", grep_lines(fs, "grace", ignore_case=True, count=True)),
                (
                    "grep -l --sessions launch /",
                    grep_lines(fs, "launch", files_with_matches=True, include_sessions=True),
                ),
            ]:
                demo.say(f"$ {title}")
                for line in lines:
                    demo.say(line, indent=6)

            demo.section("/index.md (generated from the tables' metadata)")
            fs.refresh()  # reload the metadata: the session logged meanwhile appears
            demo.say(fs.read_text("/index.md").rstrip(), indent=6)
        stats = srv.stats()
        demo.section("stopping the server and its PostgreSQL")
        demo.say(
            f"the server answered {stats['requests']} requests "
            f"({stats['queries_executed']} SQL statements) for this session"
        )
    demo.say(f"stopped; temporary data removed. demo took {demo.elapsed()}")


def main() -> int:
    """Run the demo; returns the exit status."""
    print("deeplake-sdk demo: an AI agent's memory, on a local Deeplake-compatible server")
    run(Demo())
    print("\nnext: 'make test', the examples in examples/, and the docs (make docs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
