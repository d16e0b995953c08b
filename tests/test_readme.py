"""The README's and the documentation's shell blocks run as written, in a fresh folder, each
line with its exit code.

How blocks are read is documented in docs/contributing.md: a block preceded by
`<!-- readme-test: sketch -->` holds placeholders and is only checked for real command names;
install steps count as done; the test command is left to CI; `cmd &` starts a long-running
process (its `--port` replaced by a free one) and `kill %1` stops it; `# exit N` in a line's
comment is its expected exit code (0 otherwise).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from campaign_dialer.cli import build_parser

from .e2e_support import MIDDAY

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Every page of the site; each runs in a folder of its own, as a reader following it would.
DOCS = sorted((ROOT / "docs").rglob("*.md"))
SKETCH = "<!-- readme-test: sketch -->"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
EXPECT = re.compile(r"#.*?\bexit (\d+)\b")


@dataclass
class Block:
    lang: str
    text: str
    sketch: bool
    line: int


@dataclass
class Step:
    command: str
    expect: int = 0
    background: bool = False
    line: int = 0


@dataclass
class Shell:
    """What a user's shell keeps between lines: the environment and background jobs."""

    cwd: Path
    env: dict[str, str]
    jobs: list[subprocess.Popen[str]] = field(default_factory=list)


def blocks(text: str) -> list[Block]:
    out = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip().splitlines()
        sketch = bool(before) and before[-1].strip() == SKETCH
        out.append(Block(m.group(1), m.group(2), sketch, text[: m.start()].count("\n") + 1))
    return [b for b in out if b.lang in ("sh", "bash", "shell")]


def is_install(segment: str) -> bool:
    words = shlex.split(segment)
    return (words[:3] == ["python3", "-m", "venv"]
            or (len(words) > 1 and words[0].endswith("pip") and words[1] == "install"))


def is_test_command(segment: str) -> bool:
    return "-m pytest" in segment or shlex.split(segment)[0].endswith("pytest")


def steps(block: Block) -> list[Step]:
    """The commands of a runnable block, install steps and the test command left out."""
    out = []
    for i, raw in enumerate(block.text.splitlines()):
        words = shlex.split(raw, comments=True)
        if not words:
            continue
        m = EXPECT.search(raw)
        expect = int(m.group(1)) if m else 0
        code = shlex.join(words)
        background = words[-1] == "&"
        if background:
            code = shlex.join(words[:-1])
        segments = [s.strip() for s in code.split(" '&&' ") if s.strip()]
        if len(segments) == 1:
            segments = [s.strip() for s in code.split(" && ")]
        for seg in segments:
            if is_install(seg) or is_test_command(seg):
                continue
            # `.venv/bin/x` is the venv the install step made: here, the one running this test
            seg = re.sub(r"(^|\s)\.venv/bin/", r"\1", seg)
            out.append(Step(seg, expect, background, block.line + 1 + i))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"background command exited {proc.returncode}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")


def run_step(shell: Shell, step: Step) -> str:
    words = shlex.split(step.command)
    if words[0] == "export":
        for assignment in words[1:]:
            name, _, value = assignment.partition("=")
            shell.env[name] = value
        return ""
    if words == ["kill", "%1"]:
        job = shell.jobs.pop(0)
        job.send_signal(signal.SIGTERM)
        out, err = job.communicate(timeout=60)
        assert job.returncode == step.expect, (step, err[-2000:])
        return out
    if step.background:
        proc = subprocess.Popen(["bash", "-c", step.command], cwd=shell.cwd, env=shell.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        shell.jobs.append(proc)
        m = re.search(r"--port[ =](\d+)", step.command)
        if m:
            wait_for_port(int(m.group(1)), proc)
        return ""
    proc = subprocess.run(["bash", "-c", step.command], cwd=shell.cwd, env=shell.env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == step.expect, (
        f"README line {step.line}: `{step.command}` exited {proc.returncode}, "
        f"expected {step.expect}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def shell_for(tmp_path: Path) -> Shell:
    """A user's shell: the installed program first on PATH, whatever venv runs this test."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "campaign-dialer"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m campaign_dialer.cli "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_DIALER_")}
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent),
                                   env.get("PATH", "")])
    env["VANTAX_API_KEY"] = "readme-test-key"
    env["CAMPAIGN_DIALER_TEST_CLOCK"] = MIDDAY
    env.pop("FORCE_COLOR", None)
    work = tmp_path / "work"
    work.mkdir()
    return Shell(work, env)


def check_sketches(path: Path) -> list[Block]:
    """Runnable blocks have no placeholders; every block names real commands."""
    found = blocks(path.read_text(encoding="utf-8"))
    runnable = [b for b in found if not b.sketch]
    for b in runnable:
        assert "..." not in b.text and "spring.toml" not in b.text, (
            f"{path.name} line {b.line}: a block with placeholders needs the {SKETCH} marker")
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for b in found:
        for name in re.findall(r"campaign-dialer ([\w|-]+)", b.text):
            assert set(name.split("|")) <= commands, (path.name, b.line, name)
    return found


def test_readme_has_runnable_blocks_and_marks_its_sketches() -> None:
    found = check_sketches(README)
    assert len([b for b in found if not b.sketch]) >= 3


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_blocks_mark_their_sketches_and_name_real_commands(page: Path) -> None:
    check_sketches(page)


def test_the_docs_keep_the_step_by_step_sandbox_block_and_its_exit_codes() -> None:
    """The README's old walk through every command, with its exit-code claims, lives on in
    the operations guide, where the test below runs it."""
    text = (ROOT / "docs" / "operations" / "scheduling.md").read_text(encoding="utf-8")
    runnable = [b for b in blocks(text) if not b.sketch]
    codes = [s.expect for b in runnable for s in steps(b)]
    assert {64, 66, 75} <= set(codes)
    assert any("pause-wait 0s" in b.text and "kill %1" in b.text for b in runnable)


def test_readme_two_commands_install_is_skipped_and_the_demo_runs() -> None:
    first = next(b for b in blocks(README.read_text(encoding="utf-8")) if not b.sketch)
    assert [s.command for s in steps(first)] == ["campaign-dialer demo"]
    second = blocks(README.read_text(encoding="utf-8"))[1]
    assert steps(second) == []  # install (done) and pytest (CI's job)


def run_blocks(path: Path, tmp_path: Path) -> tuple[Shell, list[str]]:
    """Every runnable block of `path`, in order, in one shell; the commands run."""
    shell = shell_for(tmp_path)
    port = str(free_port())
    ran: list[str] = []
    try:
        for block in blocks(path.read_text(encoding="utf-8")):
            if block.sketch:
                continue
            for step in steps(block):
                step.command = step.command.replace("8787", port)
                run_step(shell, step)
                ran.append(step.command)
    finally:
        for job in shell.jobs:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert not shell.jobs, "a background command was never stopped"
    return shell, ran


RUNNABLE_DOCS = [p for p in DOCS
                 if any(not b.sketch and steps(b) for b in blocks(p.read_text(encoding="utf-8")))]


@pytest.mark.e2e
@pytest.mark.parametrize("page", RUNNABLE_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_docs_command_runs_with_its_exit_code(tmp_path: Path, page: Path) -> None:
    _, ran = run_blocks(page, tmp_path)
    assert ran


def test_the_docs_have_runnable_pages() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in RUNNABLE_DOCS}
    assert {"docs/operations/scheduling.md", "docs/guide/first-campaign.md"} <= names


@pytest.mark.e2e
def test_every_readme_command_runs_with_its_exit_code(tmp_path: Path) -> None:
    shell, ran = run_blocks(README, tmp_path)
    assert "campaign-dialer demo" in ran
    assert any(c.startswith("campaign-dialer sandbox") for c in ran)
    demo = shell.cwd / "campaign-dialer-demo"
    assert (demo / "results.csv").exists() and (demo / "report.html").exists()
    assert any(c.startswith("campaign-dialer init") for c in ran)
    tour = shell.cwd / "tour" / "out"  # the tour's campaign, written by `init`
    assert (tour / "report.html").exists() and (tour / "results.csv").exists()


def test_readme_stays_short() -> None:
    """A first read of five minutes; the reference lives in docs/."""
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 150
