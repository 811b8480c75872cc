"""fsspec and pandas on the memory: ``deeplake://<table>/<path>`` URLs.

Run it with no arguments: it needs a configured service (``DEEPLAKE_TOKEN``,
``DEEPLAKE_ORG_ID``...), else it starts a local server and points the environment at it. It
uses its own table ``example_memory`` (dropped first).
"""

import os

import fsspec
import pandas as pd

from deeplake_sdk.server import connect

with connect() as api:
    api.drop_table("example_memory", missing_ok=True)
    creds = api.credentials
    os.environ.update(
        DEEPLAKE_API_URL=creds.api_url,
        DEEPLAKE_TOKEN=creds.token,
        DEEPLAKE_ORG_ID=creds.org_id,
        DEEPLAKE_WORKSPACE_ID=creds.workspace_id,
    )
    with fsspec.open("deeplake://example_memory/data/cities.csv", "w") as f:
        f.write("city,population\nLisbon,545000\nOslo,709000\n")
    df = pd.read_csv("deeplake://example_memory/data/cities.csv")
    print(df.to_string(index=False))
    fs = fsspec.filesystem("deeplake")
    print("ls:", fs.ls("example_memory/data", detail=False))
    fs.flush()
print("done")
