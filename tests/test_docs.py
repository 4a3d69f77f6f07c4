"""Run the documentation: every ```python block of docs/*.md (and README.md), in order, one namespace per page.

A block fenced with ```python runs unless the line before it (blank lines
aside) is the HTML comment ``<!-- no-run -->``. Each page runs in a fresh
namespace, after ``torch.manual_seed(0)``, in a temporary working directory
(so pages may write files), with Pyro's parameter store cleared and torch's
default dtype and argument validation restored afterwards.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import pyro
import pytest
import torch
from torch.distributions import Distribution

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
NO_RUN = "<!-- no-run -->"
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass
class Block:
    number: int  # 1-based, counting every ```python block of the page (no-run ones too)
    line: int  # 1-based line of the first line of code in the page
    source: str

    @property
    def first_line(self) -> str:
        return next((s.strip() for s in self.source.splitlines() if s.strip()), "")


def _closes(line: str, fence: str) -> bool:
    m = _FENCE.match(line)
    return m is not None and m["fence"][0] == fence[0] and len(m["fence"]) >= len(fence) and not m["info"].strip()


def python_blocks(text: str) -> list[Block]:
    r"""The ```python blocks of a Markdown text, in order, without those marked ``<!-- no-run -->``."""
    lines = text.splitlines()
    blocks: list[Block] = []
    number = 0
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not _closes(lines[end], m["fence"]):
            end += 1
        info = m["info"].split()
        is_python = bool(info) and info[0].lower() == "python"
        number += is_python
        before = next((s.strip() for s in reversed(lines[:i]) if s.strip()), "")
        if is_python and before != NO_RUN:
            indent = len(m["indent"])
            code = [line[indent:] if line[:indent].isspace() else line for line in lines[i + 1 : end]]
            blocks.append(Block(number, i + 2, "\n".join(code) + "\n"))
        i = end + 1
    return blocks


def run_page(path: Path, name: str) -> None:
    r"""Execute the page's blocks in one fresh namespace; fail naming the page, block and its first line.

    Each block is compiled under the page's path, shifted to its line in the
    page, so tracebacks point at the Markdown source.
    """
    namespace: dict[str, object] = {"__name__": "__main__"}
    for block in python_blocks(path.read_text(encoding="utf-8")):
        where = f"{name}: block {block.number} (line {block.line}, starting `{block.first_line}`)"
        try:
            code = compile("\n" * (block.line - 1) + block.source, str(path), "exec")
        except SyntaxError as e:
            detail = "".join(traceback.format_exception_only(type(e), e))
            pytest.fail(f"{where} does not compile:\n{detail}", pytrace=False)
        try:
            exec(code, namespace)
        except Exception as e:  # noqa: BLE001 - any error of a doc block fails the page
            tb = e.__traceback__.tb_next if e.__traceback__ is not None else None  # drop this frame
            detail = "".join(traceback.format_exception(type(e), e, tb))
            pytest.fail(f"{where} raised {type(e).__name__}: {e}\n\n{detail}", pytrace=False)


@pytest.fixture
def _page_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dtype = torch.get_default_dtype()
    validate = Distribution._validate_args
    pyro.clear_param_store()
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(dtype)
    Distribution.set_default_validate_args(validate)
    pyro.clear_param_store()


PAGES = sorted(p.name for p in DOCS.glob("*.md"))


@pytest.mark.parametrize("page", PAGES)
def test_doc_page(page: str, _page_env: None) -> None:
    run_page(DOCS / page, f"docs/{page}")


def test_readme(_page_env: None) -> None:
    if not README.exists():
        pytest.skip("README.md does not exist yet")
    run_page(README, "README.md")


def test_parser() -> None:
    text = "\n".join([
        "# Title",
        "```python",
        "a = 1",
        "```",
        "<!-- no-run -->",
        "",
        "```python",
        "raise SystemExit",
        "```",
        "````markdown",
        "```python",
        "b = 2",
        "```",
        "````",
        "```bash",
        "make test",
        "```",
        "```python",
        "a += 1",
        "```",
    ])
    blocks = python_blocks(text)
    assert [b.source for b in blocks] == ["a = 1\n", "a += 1\n"]
    assert [(b.number, b.line, b.first_line) for b in blocks] == [(1, 3, "a = 1"), (3, 19, "a += 1")]
