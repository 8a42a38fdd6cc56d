"""Project-level contracts: the README Quickstart and CI agree, the CLI answers, no pickle."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quickstart)


def test_quickstart_has_exactly_two_commands_install_demo_and_tests() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("vfl demo")
    assert "pytest" in commands[1]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci_lines


def test_ci_runs_the_tests_in_a_fresh_copy_with_no_shared_data_in_reach() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    before = ci_lines[: ci_lines.index(_readme_commands()[1])]
    # The copy: only the tracked files, in a new empty folder of its own, entered before the run.
    assert 'fresh="$(mktemp -d)/vfl"' in before
    copy = [n for n, line in enumerate(before) if line.startswith("git ls-files -z | tar")]
    assert copy and 'tar -xf - -C "$fresh"' in before[copy[0]]
    assert before[-1] == 'cd "$fresh"' and "unset VFL_SHARED_DATA" in before
    assert not any(line.startswith("cd ") for line in before[copy[0] : -1])


# How a test would reach the data sets beside the repository (a user's clone has none of them).
_SHARED = re.compile(
    r"\.\./shared|[\"']shared[\"']\s*/|VFL_SHARED_DATA|shared_data_dir|/work/shared"
)


def test_no_test_reads_data_outside_the_repository() -> None:
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _SHARED.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_outside_data_check_catches_the_old_forms() -> None:
    # The check above would have caught how the tests used to find the data.
    old = 'DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "fate"'
    assert _SHARED.search(old) and _SHARED.search("FATE = shared_data_dir()")
    assert _SHARED.search('os.environ["VFL_SHARED_DATA"]') and _SHARED.search("../shared/data")
    assert not _SHARED.search('assert f"{n} shared customers" in out')


def test_cli_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vfl.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("demo", "bench"):
        assert command in out


def test_cli_bad_input_is_one_line_and_nonzero() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vfl.cli", "no-such-command"], capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "invalid choice" in proc.stderr


_UNSAFE = re.compile(
    r"pickle\.loads?\(|allow_pickle=True|yaml\.load\(|torch\.load\((?!.*weights_only=True)"
)


def test_no_unsafe_deserialisation_in_library_code() -> None:
    offenders = []
    for package in ("crypto", "protocols", "psi", "vfl", "examples"):
        for path in (ROOT / package).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if _UNSAFE.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
