"""The README's examples are checked, not hoped: every ```sh block runs, in order, in one shell, against a fresh
demo served on a loopback port, and every curl in them must answer 2xx (or the status its line says, `# → 409`).

A block is left out only when the line before its fence says so: `<!-- readme-test: skip (why) -->` (`make run`,
a deployment). The reader's placeholders are replaced by what `dutyline demo` printed: the base URL
`http://127.0.0.1:8000`, the password `Demo-…` and the key `dlk_demo119_…`.

Run it alone against a server of your own: `python tests/test_readme.py BASE PASSWORD KEY_119`.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SKIP = "<!-- readme-test: skip"
BASE = "http://127.0.0.1:8000"
PASSWORD = "Demo-…"
KEY_119 = "dlk_demo119_…"
_STATUS = re.compile(r"^@@status (\d{3}) (\d+)$", re.MULTILINE)
_EXPECT = re.compile(r"#\s*→\s*(\d{3})\b")
# Every curl answer is recorded (on stderr, so a pipe into python3 reads only the body) with the script line of
# the command that made it.
PRELUDE = """set -euo pipefail
curl() { command curl -w "%{stderr}@@status %{http_code} ${BASH_LINENO[0]}\\n" "$@"; }
"""


@dataclass(frozen=True)
class Block:
    line: int  # the README line of the block's first line of code
    code: str


@dataclass(frozen=True)
class Command:
    line: int  # README line
    text: str
    expected: int | None  # None: any 2xx


def shell_blocks(text: str) -> list[Block]:
    """The ```sh blocks of a Markdown text, less those marked to skip."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            if not before.startswith(SKIP):
                blocks.append(Block(i + 2, "\n".join(lines[i + 1 : end])))
            i = end
        i += 1
    return blocks


def build_script(blocks: list[Block], *, base: str, password: str, key: str) -> tuple[str, dict[int, int]]:
    """One bash script of all blocks, with the placeholders filled; and script line → README line."""
    out = PRELUDE.splitlines()
    where: dict[int, int] = {}
    for block in blocks:
        code = block.code.replace(BASE, base).replace(PASSWORD, password).replace(KEY_119, key)
        for offset, line in enumerate(code.splitlines()):
            out.append(line)
            where[len(out)] = block.line + offset
    return "\n".join(out) + "\n", where


def curl_commands(blocks: list[Block]) -> list[Command]:
    """Each curl command of the blocks (README line of its first line, its expected status)."""
    found: list[Command] = []
    for block in blocks:
        lines = block.code.splitlines()
        for offset, line in enumerate(lines):
            if re.search(r"(^|[\s(|$])curl\s", line) and not line.lstrip().startswith("#"):
                expected = _EXPECT.search(line.split("#", 1)[1]) if "#" in line else None
                found.append(Command(block.line + offset, line.strip(), int(expected.group(1)) if expected else None))
    return found


@dataclass
class Outcome:
    returncode: int
    statuses: list[tuple[int, int]]  # (HTTP status, README line)
    stdout: str
    stderr: str


def run_readme(base: str, password: str, key: str, workdir: Path, readme: Path = README) -> Outcome:
    blocks = shell_blocks(readme.read_text(encoding="utf-8"))
    script, where = build_script(blocks, base=base, password=password, key=key)
    (workdir / "readme.sh").write_text(script, encoding="utf-8")
    _evidence_photo(workdir / "after.jpg")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUTYLINE_", "DATABASE_URL", "TWILIO_"))}
    done = subprocess.run(["bash", "readme.sh"], cwd=workdir, env=env, capture_output=True, text=True, timeout=600,
                          check=False)  # fmt: skip
    statuses = [(int(code), where.get(int(line), -int(line))) for code, line in _STATUS.findall(done.stderr)]
    return Outcome(done.returncode, statuses, done.stdout, _STATUS.sub("", done.stderr).strip())


def _evidence_photo(path: Path) -> None:
    """The photo the hazard example uploads (`-F file=@after.jpg`): the reader's own; here a small real JPEG."""
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 120, 40)).save(path, "JPEG")


def check(outcome: Outcome, readme: Path = README) -> list[str]:
    """Every problem: a command that failed or was never reached, an unexpected status."""
    commands = curl_commands(shell_blocks(readme.read_text(encoding="utf-8")))
    by_line = {c.line: c for c in commands}
    problems: list[str] = []
    seen: set[int] = set()
    starts = sorted(by_line)
    for status, line in outcome.statuses:
        # Bash names the last line of a command substitution spread over lines: the command started at or before.
        start = max((n for n in starts if n <= line), default=line)
        command = by_line.get(start)
        seen.add(start)
        expected = command.expected if command else None
        ok = status == expected if expected is not None else 200 <= status < 300
        if not ok:
            text = command.text if command else "?"
            problems.append(f"README line {start}: answered {status}, expected {expected or '2xx'}: {text}")
    missing = [c for c in commands if c.line not in seen]
    if outcome.returncode != 0:
        problems.append(f"the script stopped (exit {outcome.returncode}): {outcome.stderr[-1500:]}")
    problems += [f"README line {c.line}: never ran: {c.text}" for c in missing]
    return problems


# ---- against a fresh demo ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Demo:
    base: str
    password: str
    key_119: str


@pytest.fixture(scope="module")
def fresh_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    here = tmp_path_factory.mktemp("readme-demo")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUTYLINE_", "TWILIO_", "ALIBABA_", "TENCENT"))}
    env |= {
        "DATABASE_URL": f"sqlite:///{here / 'demo.db'}",
        "DUTYLINE_SIMULATOR": "on",
        "DUTYLINE_LOG_LEVEL": "WARNING",
        "DUTYLINE_DATA_DIR": str(here / "data"),
        "PUBLIC_BASE_URL": base,
    }
    demo = subprocess.run([sys.executable, "-m", "app.cli", "demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=True)  # fmt: skip
    password = re.search(r"password: (\S+)", demo.stdout)
    key = re.search(r"^\s+119\s+(dlk_\S+)$", demo.stdout, re.MULTILINE)
    assert password and key, demo.stdout
    log = (here / "serve.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (here / "serve.log").read_text()
            time.sleep(0.3)
        yield Demo(base, password.group(1), key.group(1))
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_the_readme_blocks_are_found_and_name_their_placeholders() -> None:
    blocks = shell_blocks(README.read_text(encoding="utf-8"))
    text = "\n".join(b.code for b in blocks)
    assert len(curl_commands(blocks)) >= 40
    for placeholder in (BASE, PASSWORD, KEY_119):
        assert placeholder in text, placeholder
    assert "PRODUCT.md" not in README.read_text(encoding="utf-8")  # not in the repository: docs/reference.md is
    # A date written out goes stale (a roster query of a past month answers nothing): `day N` computes them.
    assert re.findall(r"\b20\d\d-\d\d(?:-\d\d)?\b", text) == []


def test_every_readme_example_works_against_a_fresh_demo(fresh_demo: Demo, tmp_path: Path) -> None:
    outcome = run_readme(fresh_demo.base, fresh_demo.password, fresh_demo.key_119, tmp_path)
    problems = check(outcome)
    assert problems == [], "\n".join(problems)


if __name__ == "__main__":
    base_url, demo_password, key_119 = sys.argv[1:4]
    with tempfile.TemporaryDirectory() as folder:
        result = run_readme(base_url, demo_password, key_119, Path(folder))
        for problem in check(result):
            print(problem)  # noqa: T201
        print(f"{len(result.statuses)} answers; exit {result.returncode}")  # noqa: T201
