"""Run a command with the variables of a systemd EnvironmentFile, parsed the way systemd does.

    python deploy/envfile.py /etc/whalewatch/whalewatch.env -- python manage.py migrate

Sourcing the file in a shell is wrong: a value such as `Whale Watch <whalewatch@example.org>`
is a redirection to the shell but a plain string to systemd. This reads it like systemd (KEY=VALUE
lines, # and ; comments, optional single or double quotes, backslash-newline continuation), so a
manage.py command run by hand sees exactly what the services see. Standard library only.
"""

from __future__ import annotations

import os
import re
import sys

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        if value[0] == '"':
            inner = re.sub(r'\\(["\\$`])', r"\1", inner)
        return inner
    return value


def parse(text: str) -> dict[str, str]:
    variables: dict[str, str] = {}
    logical = re.sub(r"\\\n", "", text)
    for number, line in enumerate(logical.splitlines(), start=1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, separator, value = line.partition("=")
        key = key.strip()
        if not separator or not _KEY.fullmatch(key):
            raise ValueError(f"line {number}: not KEY=VALUE: {line[:40]!r}")
        variables[key] = _unquote(value.strip())
    return variables


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path, command = argv[1], argv[3:]
    try:
        with open(path, encoding="utf-8") as handle:
            variables = parse(handle.read())
    except (OSError, ValueError) as exc:
        print(f"envfile: {path}: {exc}", file=sys.stderr)
        return 2
    environment = dict(os.environ)
    environment.update(variables)
    os.execvpe(command[0], command, environment)  # noqa: S606 - the operator's own command
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
