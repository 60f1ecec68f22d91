"""``chargeflow devices templates``: the device templates a site file can name (``site.templates``)."""

from __future__ import annotations

import argparse

from chargeflow.site.templates import TEMPLATES, templates_markdown


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    devices = sub.add_parser("devices", help="the site's devices", description="The site's devices.")
    actions = devices.add_subparsers(dest="devices_action", metavar="ACTION", required=True)
    templates = actions.add_parser(
        "templates",
        help="list the device templates a site file can name",
        description="List the device templates a site file's meters: can name (template: NAME) with "
        "what each needs beside it.",
    )
    templates.add_argument("--markdown", action="store_true", help="as the table in docs/devices.md")
    templates.set_defaults(handler=run_templates)


def run_templates(args: argparse.Namespace) -> int:
    if args.markdown:
        print(templates_markdown(), end="")
        return 0
    for t in TEMPLATES:
        params = ", ".join(f"{p}: {what}" for p, what in t.params.items())
        print(f"{t.name}\n  {t.summary}\n  give: {params}")
    return 0
