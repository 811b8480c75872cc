"""A LangGraph store keeping items as JSON files of the memory table.

Extra ``[langgraph]``. :class:`DeeplakeStore` is a ``langgraph.store.base.BaseStore``: give it
to a graph (``graph.compile(store=store)``) or call its ``put``/``get``/``search``/``delete``/
``list_namespaces`` (and their ``a*`` versions) directly::

    from deeplake_sdk import DeeplakeApi, DeeplakeFs
    from deeplake_sdk.integrations.langgraph import DeeplakeStore

    with DeeplakeApi() as api, DeeplakeFs(api) as fs:
        store = DeeplakeStore(fs)
        store.put(("users", "ada"), "prefs", {"drink": "tea"})
        store.search(("users",), query="tea")

A namespace is a directory under ``root`` (``/langgraph``), one percent-encoded component per
label; an item is the file ``<directory>/<key>.json`` (key percent-encoded too) holding
``{"value": ..., "created_at": ..., "updated_at": ...}`` on one line. Every operation is a
thin call into :class:`~deeplake_sdk.DeeplakeFs`: writes are journaled (durable when the call
returns), text search is one :meth:`~deeplake_sdk.DeeplakeFs.grep`.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from deeplake_sdk.errors import FsError
from deeplake_sdk.fs import paths

if TYPE_CHECKING:
    from deeplake_sdk.fs import DeeplakeFs

__all__ = ["DEFAULT_ROOT", "DeeplakeStore", "decode_label", "encode_label"]

log = logging.getLogger(__name__)

#: Directory of the store's items in the memory table.
DEFAULT_ROOT = "/langgraph"
_SUFFIX = ".json"
_OPERATORS = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
}


def encode_label(label: str) -> str:
    """A namespace label or key as one path component (percent-encoding, ``.`` included).

    Every character but ASCII letters, digits, ``_``, ``-`` and ``~`` is encoded, so ``/``,
    ``.`` (and with it ``.``/``..`` and the ``.json`` suffix), spaces and non-ASCII text
    cannot change the path's shape; :func:`decode_label` reverses it.
    """
    return quote(label, safe="").replace(".", "%2E")


def decode_label(component: str) -> str:
    """The label or key :func:`encode_label` encoded as ``component``."""
    return unquote(component)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class DeeplakeStore(BaseStore):
    """LangGraph ``BaseStore`` over a :class:`~deeplake_sdk.DeeplakeFs`.

    ``batch`` runs the operations in order on the calling thread; ``abatch`` runs ``batch`` in
    a worker thread (:func:`asyncio.to_thread`), so the event loop never waits on the service.
    One lock serialises every use of the filesystem by the store.

    * ``get``: the item's file (files other processes wrote are found too); a batch's gets
      are read in one query.
    * ``put``: writes the file; ``created_at`` is kept from the stored item, ``updated_at`` is
      now; a ``None`` value deletes. ``index`` is ignored (no embeddings) and ``ttl`` is not
      supported (``supports_ttl`` is False).
    * ``search``: items under the namespace prefix in namespace then key order. ``filter``
      compares top-level value fields client side: a plain value matches by equality, a dict
      of operators (``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``) by comparison.
      ``query`` keeps items whose value, as JSON text, contains it as a literal ignoring
      case: one grep over the namespace finds the candidate files, the match is checked on
      each value. ``offset`` and ``limit`` page the result; ``score`` is None.
    * ``list_namespaces``: namespaces holding at least one item, sorted, filtered by
      ``prefix``/``suffix`` (``"*"`` matches any label), cut to ``max_depth`` labels
      (deduplicated), then paged.

    Search and namespace listing see this process's changes at once and other processes'
    after ``store.fs.refresh()``, or within ``max_age`` seconds with a filesystem opened with
    one (``DeeplakeFs(api, max_age=1.0)``).

    Args:
        fs: The filesystem (not closed by the store).
        root: Directory holding the namespaces.
    """

    def __init__(self, fs: DeeplakeFs, root: str = DEFAULT_ROOT) -> None:
        self.fs = fs
        self.root = paths.normalize(root)
        self._lock = threading.Lock()

    # -- paths ------------------------------------------------------------------------------
    def _dir(self, namespace: tuple[str, ...]) -> str:
        return paths.normalize("/".join([self.root, *map(encode_label, namespace)]))

    def _file(self, namespace: tuple[str, ...], key: str) -> str:
        return paths.join(self._dir(namespace), encode_label(key) + _SUFFIX)

    def _namespace(self, directory: str) -> tuple[str, ...]:
        rel = directory[len(self.root) :].strip("/")
        return tuple(decode_label(c) for c in rel.split("/")) if rel else ()

    def _items_under(self, directory: str) -> list[tuple[tuple[str, ...], str, str]]:
        """``(namespace, key, path)`` of every item under ``directory``, sorted."""
        found = []
        for current, _, files in self.fs.walk(directory):
            namespace = self._namespace(current)
            if not namespace:
                continue
            for name in files:
                if name.endswith(_SUFFIX):
                    key = decode_label(name[: -len(_SUFFIX)])
                    found.append((namespace, key, paths.join(current, name)))
        return sorted(found)

    # -- files ------------------------------------------------------------------------------
    def _load(self, path: str) -> dict[str, Any] | None:
        """The stored document of an item, or None when it does not exist (or is not one)."""
        try:
            doc = json.loads(self.fs.read_bytes(path))
        except FsError as exc:
            if exc.errno in (errno.ENOENT, errno.EISDIR):
                return None
            raise
        except ValueError:
            log.warning("%s is not a JSON document: left out of the store", path)
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("value"), dict):
            log.warning("%s holds no item value: left out of the store", path)
            return None
        return doc

    @staticmethod
    def _item(kind: type[Item], doc: dict[str, Any], namespace: tuple[str, ...], key: str) -> Any:
        return kind(
            value=doc["value"],
            key=key,
            namespace=namespace,
            created_at=doc.get("created_at") or doc.get("updated_at") or _now(),
            updated_at=doc.get("updated_at") or doc.get("created_at") or _now(),
        )

    # -- operations -------------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run the operations in order; one result per operation (None for a put)."""
        ops = list(ops)
        with self._lock:
            gets = [self._file(op.namespace, op.key) for op in ops if isinstance(op, GetOp)]
            if len(gets) > 1:
                self.fs.prefetch(gets)
            return [self._run(op) for op in ops]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread."""
        return await asyncio.to_thread(self.batch, list(ops))

    def _run(self, op: Op) -> Result:
        if isinstance(op, GetOp):
            doc = self._load(self._file(op.namespace, op.key))
            return None if doc is None else self._item(Item, doc, op.namespace, op.key)
        if isinstance(op, PutOp):
            self._put(op)
            return None
        if isinstance(op, SearchOp):
            return self._search(op)
        if isinstance(op, ListNamespacesOp):
            return self._list_namespaces(op)
        raise ValueError(f"unknown operation: {type(op).__name__}")

    def _put(self, op: PutOp) -> None:
        path = self._file(op.namespace, op.key)
        if op.value is None:
            self.fs.rm(path, force=True)
            return
        now = _now()
        old = self._load(path) if self.fs.exists(path) else None
        doc = {
            "value": dict(op.value),
            "created_at": (old or {}).get("created_at") or now,
            "updated_at": now,
        }
        self.fs.write_text(path, json.dumps(doc, ensure_ascii=False) + "\n")

    def _search(self, op: SearchOp) -> list[SearchItem]:
        scope = self._dir(op.namespace_prefix)
        items = self._items_under(scope)
        needle = None
        if op.query:
            # The value is stored as JSON text: look for the query as JSON writes it.
            needle = json.dumps(op.query, ensure_ascii=False)[1:-1]
            hits = self.fs.grep(
                needle, scope, fixed=True, ignore_case=True, files_with_matches=True
            )
            found = {r.path for r in hits}
            items = [it for it in items if it[2] in found]
        start, stop = max(op.offset, 0), max(op.offset, 0) + max(op.limit, 0)
        if not op.filter and needle is None:
            items = items[start:stop]
        self.fs.prefetch(path for _, _, path in items)
        results = []
        for namespace, key, path in items:
            doc = self._load(path)
            if doc is None or not _matches(doc["value"], op.filter, needle):
                continue
            results.append(self._item(SearchItem, doc, namespace, key))
        return results if not op.filter and needle is None else results[start:stop]

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        found = {namespace for namespace, _, _ in self._items_under(self.root)}
        conditions = op.match_conditions or ()
        chosen = [ns for ns in found if all(_namespace_matches(c, ns) for c in conditions)]
        if op.max_depth is not None:
            chosen = list({ns[: op.max_depth] for ns in chosen})
        start = max(op.offset, 0)
        return sorted(chosen)[start : start + max(op.limit, 0)]


def _matches(value: dict[str, Any], where: Mapping[str, Any] | None, needle: str | None) -> bool:
    """Whether an item's value passes a search's filter and query."""
    for field, wanted in (where or {}).items():
        have = value.get(field)
        if isinstance(wanted, Mapping) and wanted and all(k in _OPERATORS for k in wanted):
            try:
                if not all(_OPERATORS[k](have, v) for k, v in wanted.items()):
                    return False
            except TypeError:  # values that do not compare (a string and a number)
                return False
        elif have != wanted:
            return False
    if needle is not None:
        text = json.dumps(value, ensure_ascii=False)
        return re.search(re.escape(needle), text, re.IGNORECASE) is not None
    return True


def _namespace_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """A ``prefix`` or ``suffix`` match condition (``"*"`` matches any label)."""
    pattern = tuple(condition.path)
    if len(namespace) < len(pattern):
        return False
    if condition.match_type == "prefix":
        labels = namespace[: len(pattern)]
    elif condition.match_type == "suffix":
        labels = namespace[len(namespace) - len(pattern) :]
    else:
        raise ValueError(f"unsupported match type: {condition.match_type!r}")
    return all(p in ("*", label) for p, label in zip(pattern, labels, strict=True))
