"""A LangGraph store on the memory table: put, get, search, list namespaces, and a graph using it.

Run it with no arguments (see ../quickstart.py for where it connects). No model is called: the
graph's node reads a preference from the store, as an agent's node would. It uses its own
table ``example_memory`` (dropped first).
"""

from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from deeplake_sdk import DeeplakeFs
from deeplake_sdk.integrations.langgraph import DeeplakeStore
from deeplake_sdk.server import connect


class State(TypedDict):
    user: str
    answer: str


def recall(state: State, runtime: Runtime) -> dict:
    """Answer from the user's stored preferences."""
    item = runtime.store.get(("users", state["user"]), "prefs")
    drink = item.value["drink"] if item else "nothing yet"
    return {"answer": f"{state['user']} likes {drink}"}


with connect() as api:
    api.drop_table("example_memory", missing_ok=True)
    with DeeplakeFs(api, "example_memory", cache=False) as fs:
        store = DeeplakeStore(fs)
        store.put(("users", "ada"), "prefs", {"drink": "tea", "note": "Green tea, no sugar"})
        store.put(("users", "bob"), "prefs", {"drink": "coffee"})
        print("get:", {"drink": store.get(("users", "ada"), "prefs").value["drink"]})
        hits = store.search(("users",), query="TEA")
        print("search 'TEA':", [hit.namespace for hit in hits])
        print("filter:", [hit.namespace[1] for hit in store.search((), filter={"drink": "coffee"})])
        print("namespaces:", store.list_namespaces(prefix=("users",)))
        graph = StateGraph(State)
        graph.add_node("recall", recall)
        graph.add_edge(START, "recall")
        graph.add_edge("recall", END)
        app = graph.compile(store=store)
        print("graph:", app.invoke({"user": "ada", "answer": ""})["answer"])
        store.delete(("users", "bob"), "prefs")
        print("after delete:", store.list_namespaces())
print("done")
