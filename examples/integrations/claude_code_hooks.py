"""Claude Code hooks without Claude Code: log a session, answer a Read and a Bash ``cat``.

Run it with no arguments (see ../quickstart.py for where it connects). It uses its own tables
``example_memory`` and ``example_sessions`` (dropped first) and a temporary mount and view
directory. Claude Code itself runs the same code as ``deeplake-sdk hook ...`` processes
(install them with ``deeplake-sdk hook install --write``).
"""

import subprocess
import tempfile
from pathlib import Path

from deeplake_sdk import DeeplakeFs
from deeplake_sdk.integrations.claude_code import HookSettings, capture, pre_tool_use
from deeplake_sdk.server import connect

TABLE, SESSIONS = "example_memory", "example_sessions"
temporary = tempfile.TemporaryDirectory()  # removed at exit
tmp = Path(temporary.name)
settings = HookSettings(
    mount=str(tmp / "memory"),
    hook_dir=tmp / "hook",
    user="ada",
    table=TABLE,
    sessions_table=SESSIONS,
)

with connect() as api:
    for table in (TABLE, SESSIONS):
        api.drop_table(table, missing_ok=True)

    with DeeplakeFs(api, TABLE, SESSIONS, cache=False) as fs:
        fs.write_text("/notes/plan.md", "ship on Friday\nsay $(whoami) and `id`\n")

    payload = {"session_id": "s-1", "cwd": "/home/ada/proj", "hook_event_name": "UserPromptSubmit"}
    row_id = capture(api, {**payload, "prompt": "When do we ship?"}, settings)
    print(f"captured event {row_id[:8]}... (journaled; the drain stores it)")

    read = {"tool_name": "Read", "tool_input": {"file_path": f"{settings.mount}/notes/plan.md"}}
    answer = pre_tool_use(api, read, settings)["hookSpecificOutput"]
    local = answer["updatedInput"]["file_path"]
    print(f"Read answered with a private copy: {Path(local).read_text().splitlines()[0]!r}")

    cat = {"tool_name": "Bash", "tool_input": {"command": f"cat {settings.mount}/notes/plan.md"}}
    command = pre_tool_use(api, cat, settings)["hookSpecificOutput"]["updatedInput"]["command"]
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    print("cat printed, unexpanded:", out.stdout.splitlines()[1])

    other = {"tool_name": "Write", "tool_input": {"file_path": "/tmp/x", "content": ""}}
    print("Write falls through:", pre_tool_use(api, other, settings) is None)
temporary.cleanup()
print("done")
