"""Session logs: every prompt, tool call and response of an agent session, as one JSONL file.

Run it with no arguments (see quickstart.py for where it connects). Its client is configured
with its own tables ``example_memory`` and ``example_sessions`` (the log and the filesystem
use the client's tables), dropped first so every run starts clean.

Each event is one row of the sessions table, shaped like the agent-memory plugin's (an
envelope with a UUID ``id``, ``session_id``, ``timestamp`` and ``type``); the insert does
nothing if that id exists, so a write retried after a lost answer is never stored twice. The
file is ``/sessions/<user>/<user>_<org>_<workspace>_<session>.jsonl``, as the plugin names it.
"""

import errno
import json

from deeplake_sdk import DeeplakeFs, FsError, SessionLog
from deeplake_sdk.server import connect
from deeplake_sdk.sessions import assistant_message, tool_call, user_message

with connect(table="example_memory", sessions_table="example_sessions") as api:
    for table in (api.credentials.table, api.credentials.sessions_table):
        api.drop_table(table, missing_ok=True)

    log = SessionLog(api, "2024-06-01-a", user="ada", project="travel")
    log.log(user_message("When is my flight to Oslo?"))
    log.log(tool_call("Grep", {"pattern": "oslo", "path": "/trips", "-i": True}, "1 match"))
    log.log(assistant_message("Friday 9:40 from Lisbon, seat 12A."))
    print(f"logged {log.events_logged} events to {log.path}")

    print("\n== log.read(): the events, in order")
    for event in log.read():
        print(f"   {event['type']:<17} {json.dumps(event, ensure_ascii=False)}")

    with DeeplakeFs(api, cache=False) as fs:
        print(f"\n== the session as a file: cat {log.path}")
        print("   " + fs.read_text(log.path).rstrip("\n").replace("\n", "\n   "))
        print(f"\n== ls /sessions/ada: {fs.ls('/sessions/ada')}")

        fs.write_text("/trips/oslo.md", "Flight to Oslo: Friday 9:40, seat 12A\n")
        fs.flush()
        print("\n== grep -i oslo over memory and sessions (one query)")
        for result in fs.grep(
            "oslo", ignore_case=True, include_sessions=True, files_with_matches=True
        ):
            print(f"   {result.path}")

        try:
            fs.write_text(log.path, "rewrite history")
        except FsError as exc:
            print(f"\n== session files are read-only: {errno.errorcode[exc.errno]} {exc}")
    print("\ndone")
