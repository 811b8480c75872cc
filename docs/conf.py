"""Sphinx configuration of the deeplake-sdk documentation (``make docs``)."""

import argparse
import os
import sys

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.util.nodes import nested_parse_with_titles

sys.path.insert(0, os.path.abspath(".."))

from deeplake_sdk import __version__

project = "deeplake-sdk"
author = "deeplake-sdk contributors"
copyright = "deeplake-sdk contributors"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
]

# Google-style docstrings, documented in source order, type hints in the descriptions.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "separated"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_preserve_defaults = True

# No network during the build: intersphinx links are resolved from nothing (plain text).
intersphinx_mapping: dict = {}

templates_path: list = []
# docs/bench/ holds the benchmark's published results, included by benchmark.rst.
exclude_patterns = ["_build", "bench/**"]
html_theme = "furo"
html_title = f"deeplake-sdk {release}"
pygments_style = "sphinx"


def _sentence(text):
    return text[:1].upper() + text[1:] + ("." if text else "")


class CliCommands(Directive):
    """``.. cli-commands::``: one section per registered command with its ``--help`` text."""

    def run(self):
        os.environ["COLUMNS"] = "92"  # argparse wraps help text to the terminal width
        from deeplake_sdk.cli import build_parser

        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        summaries = {a.dest: a.help for a in sub._choices_actions}
        lines = []
        for name, command in sub.choices.items():
            title = f"deeplake-sdk {name}"
            lines += [
                title,
                "-" * len(title),
                "",
                _sentence(summaries.get(name) or ""),
                "",
                ".. code-block:: text",
                "",
            ]
            lines += [f"   {line}".rstrip() for line in command.format_help().splitlines()]
            lines.append("")
        container = nodes.section()
        nested_parse_with_titles(self.state, StringList(lines, "<cli-commands>"), container)
        return container.children


def setup(app):
    app.add_directive("cli-commands", CliCommands)
