"""The package imports its parts on first use: short processes import what they need."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import deeplake_sdk

HEAVY = ("requests", "urllib3", "gevent", "sqlite3", "diskcache")


def imported_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has imported after running ``code``."""
    report = f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    probe = f"{code}\nimport json, sys\n{report}"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(proc.stdout.splitlines()[-1])


def test_every_public_name_resolves_to_its_module():
    assert set(deeplake_sdk.__all__) == set(deeplake_sdk._LAZY) | {"__version__"}
    for name, module in deeplake_sdk._LAZY.items():
        assert getattr(deeplake_sdk, name) is getattr(importlib.import_module(module), name)


def test_dir_lists_the_public_names_before_they_are_imported():
    code = "import deeplake_sdk as d\nassert set(d.__all__) <= set(dir(d))"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_an_unknown_name_is_an_attribute_error():
    try:
        deeplake_sdk.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_submodules_are_attributes_of_the_package():
    code = "import deeplake_sdk as d\nassert d.journal.core.flush_all and d.fs.core.DeeplakeFs"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert not hasattr(deeplake_sdk, "no_such_module")


def test_importing_the_package_or_the_path_rules_imports_no_client():
    assert imported_after("import deeplake_sdk, deeplake_sdk.fs.paths, deeplake_sdk.errors") == []


def test_using_a_public_name_imports_its_module():
    assert "sqlite3" in imported_after("import deeplake_sdk.fs as fs; fs.DeeplakeFs")


def test_a_client_imports_the_http_stack_at_its_first_request():
    make = (
        "from deeplake_sdk import DeeplakeApi\n"
        "api = DeeplakeApi('t', 'o', 'w', 'http://127.0.0.1:9', retries=0)"
    )
    assert "requests" not in imported_after(make)
    send = "import contextlib\nwith contextlib.suppress(Exception):\n    api.query('SELECT 1')"
    assert "requests" in imported_after(f"{make}\n{send}")


def test_a_module_gives_its_lazy_names_and_no_others():
    from deeplake_sdk.integrations import claude_code, claude_code_answer

    assert claude_code.pre_tool_use is claude_code_answer.pre_tool_use
    assert not hasattr(claude_code, "no_such_name")  # a module has no submodules to look for


def test_a_plain_program_sends_a_request_without_importing_gevent():
    """gevent comes with the journal's flusher or the program's own greenlets, not before."""
    make = (
        "from deeplake_sdk import DeeplakeApi\n"
        "api = DeeplakeApi('t', 'o', 'w', 'http://127.0.0.1:9', retries=0)\n"
        "import contextlib\n"
        "with contextlib.suppress(Exception):\n"
        "    api.query('SELECT 1')\n"
    )
    imported = imported_after(make)
    assert "requests" in imported and "gevent" not in imported


def test_originals_are_the_unpatched_functions_whenever_gevent_patches():
    code = (
        "import _thread, sys, time\n"
        "from deeplake_sdk import _coop\n"
        "assert 'gevent' not in sys.modules and _coop.hub_if_exists() is None\n"
        "assert _coop.original('time', 'sleep') is time.sleep\n"
        "real_sleep, real_lock = time.sleep, _thread.allocate_lock\n"
        "from gevent import monkey\n"
        "monkey.patch_all()\n"
        "assert time.sleep is not real_sleep and _coop.original('time', 'sleep') is real_sleep\n"
        "assert _coop.allocate_lock is real_lock and _coop.sockets_patched()\n"
        "import gevent\n"
        "gevent.sleep(0)\n"
        "assert _coop.hub_if_exists() is gevent.get_hub()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
