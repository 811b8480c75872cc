"""The Anthropic memory tool backed by the memory table, driven as the tool runner drives it.

Run it with no arguments (see ../quickstart.py for where it connects). No model is called: the
commands below are the inputs Claude sends; give ``memory`` to
``client.beta.messages.tool_runner(tools=[memory], ...)`` to let Claude send them. It uses
its own table ``example_memory`` (dropped first).
"""

from deeplake_sdk import DeeplakeFs
from deeplake_sdk.integrations.anthropic import DeeplakeMemoryTool, MemoryCommandError
from deeplake_sdk.server import connect

with connect() as api:
    api.drop_table("example_memory", missing_ok=True)
    with DeeplakeFs(api, "example_memory", cache=False) as fs:
        memory = DeeplakeMemoryTool(fs)
        create = {"command": "create", "path": "/memories/prefs.md", "file_text": "prefers tea\n"}
        print(memory.call(create))
        print(memory.call({"command": "view", "path": "/memories/prefs.md"}))
        try:
            memory.call(
                {
                    "command": "str_replace",
                    "path": "/memories/prefs.md",
                    "old_str": "coffee",
                    "new_str": "tea",
                }
            )
        except MemoryCommandError as exc:
            print("error:", exc)
        print(memory.call({"command": "view", "path": "/memories"}))
print("done")
