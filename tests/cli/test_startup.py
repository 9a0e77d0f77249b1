"""The command line starts at once: `--help`, and a command that fails on its arguments, load
none of the services behind the commands (SQLAlchemy, pandas, bcrypt, the importer, the model
stack, the settings); a command loads what it calls when it runs.

Checked in a new interpreter, where nothing else has imported them yet. The CPU it takes is
measured with `python -X importtime -m core.cli --help`, not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from core.config import ROOT

HEAVY = ("pandas", "numpy", "pyarrow", "sqlalchemy", "alembic", "psycopg", "bcrypt", "openpyxl",
         "xlsxwriter", "langchain_core", "langchain_openai", "langgraph", "openai", "tiktoken",
         "plotly", "scipy", "phonenumbers", "holidays", "zxcvbn", "structlog", "apscheduler",
         "httpx", "pydantic_settings", "rich", "core.config", "core.db", "core.models",
         "core.auth", "core.campaigns", "core.leads.importer", "core.suppressions")

GROUPS = {
    "api-keys": ["create", "list", "revoke"],
    "audit": ["export"],
    "campaigns": ["ab-result", "archive", "cancel", "clone", "create", "delete", "keep-winner", "list",
                  "pause", "restore", "resume", "retry-failed", "schedule", "start", "status"],
    "init": [],
    "leads": ["export", "import", "reply"],
    "messages": ["list"],
    "suppressions": ["import"],
    "tenants": ["create", "list", "update"],
    "users": ["create", "list", "reset-password"],
}

# Imports the CLI, asks every group and every command for its help, runs the commands given
# (which fail on their arguments before they reach a service), then says what got loaded.
PROBE = """
import json, sys
import typer.main
from typer.testing import CliRunner
from core.cli import app
heavy, runs, extra = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3:]
loaded_by_import = [m for m in heavy if m in sys.modules]
root = typer.main.get_command(app)
groups = {name: sorted(getattr(group, "commands", {})) for name, group in root.commands.items()}
helps = [[]] + [[g] for g in groups] + [[g, c] for g, cs in groups.items() for c in cs]
runner = CliRunner()
helped = {" ".join(args): runner.invoke(app, [*args, "--help"]).exit_code for args in helps}
refused = [runner.invoke(app, args).exit_code for args in runs]
for name in extra:
    __import__(name)
print(json.dumps({"loaded_by_import": loaded_by_import, "groups": groups, "helped": helped,
                  "refused": refused, "loaded": [m for m in heavy if m in sys.modules]}))
"""

# Light commands, with their exit codes: typer refuses them (2), or the command does before it
# calls a service.
LIGHT_RUNS = {
    ("users", "list"): 2,  # --tenant missing
    ("campaigns", "start", "not-a-number"): 2,
    ("campaigns", "schedule", "1", "--at", "next tuesday"): 1,
    ("users", "create", "--tenant", "Acme", "--username", "ann", "--role", "admin"): 2,  # no --password-stdin
    ("leads", "export", "--tenant", "Acme", "--out", "leads.txt"): 1,
}


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "OPENAI_"))}


def _probe(*extra_imports: str) -> dict[str, object]:
    command = [sys.executable, "-c", PROBE, json.dumps(HEAVY), json.dumps(list(LIGHT_RUNS)), *extra_imports]
    done = subprocess.run(command, cwd=ROOT, env=_environment(), capture_output=True, text=True,
                          check=True, timeout=120)
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_help_and_light_commands_load_none_of_the_services() -> None:
    answer = _probe()
    assert answer["loaded_by_import"] == []
    assert answer["loaded"] == []
    assert answer["groups"] == GROUPS
    helped = answer["helped"]
    assert isinstance(helped, dict)
    assert len(helped) == 1 + len(GROUPS) + sum(map(len, GROUPS.values()))
    assert set(helped.values()) == {0}
    assert answer["refused"] == list(LIGHT_RUNS.values())


def test_the_probe_sees_the_services_once_something_imports_them() -> None:
    answer = _probe("core.leads.importer")
    assert {"pandas", "sqlalchemy", "phonenumbers", "core.models", "core.leads.importer"} <= set(
        answer["loaded"]  # type: ignore[arg-type]
    )


def test_help_lists_every_command_group() -> None:
    done = subprocess.run([sys.executable, "-m", "core.cli", "--help"], cwd=ROOT, env=_environment(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    commands = done.stdout.split("Commands:")[1].splitlines()
    assert sorted(line.split()[0] for line in commands if line.strip()) == sorted(GROUPS)
