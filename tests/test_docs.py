"""The documentation stays true to the code.

- every subcommand has help text and a section in docs/reference/cli.md;
- docs/reference/cli.md is what scripts/gen-cli-reference generates now (its --check mode);
- the README opens with `make demo` and `make test`, and every `moqwk X` it names exists;
- every relative link in README.md and docs/**/*.md points to an existing file (and heading);
- the config and exit-code references name every config field and exit code the code has.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from moqwk.cli import EXIT_CODES_DOC, build_parser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
CLI_MD = DOCS / "reference" / "cli.md"
GENERATOR = REPO / "scripts" / "gen-cli-reference"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("moqwk's parser has no subcommands")


def subcommand_help() -> dict[str, str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    raise AssertionError("moqwk's parser has no subcommands")


# --------------------------------------------------------------------------- CLI reference


def test_every_subcommand_has_help_text() -> None:
    helps = subcommand_help()
    assert set(helps) == set(subcommands())
    missing = [name for name, text in helps.items() if not text.strip()]
    assert not missing, f"subcommands without help text: {missing}"
    for name, sub in subcommands().items():
        assert (sub.description or "").strip(), f"`moqwk {name} --help` has no description"


def test_every_subcommand_is_in_the_cli_reference() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    missing = [n for n in subcommands() if f"\n## moqwk {n}\n" not in text]
    assert not missing, (f"{CLI_MD.relative_to(REPO)} lacks sections for {missing}; "
                         "run scripts/gen-cli-reference")


def test_cli_reference_is_current() -> None:
    proc = subprocess.run([sys.executable, str(GENERATOR), "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (
        f"{CLI_MD.relative_to(REPO)} is stale: run `.venv/bin/python scripts/gen-cli-reference`"
        f"\n{proc.stdout}{proc.stderr}")


def test_generator_output_is_deterministic() -> None:
    runs = [subprocess.run([sys.executable, str(GENERATOR), "--stdout"], cwd=REPO,
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "COLUMNS": cols})
            for cols in ("60", "200")]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert runs[0].stdout == runs[1].stdout, "the reference depends on the terminal width"
    assert "```text\nusage: moqwk " in runs[0].stdout


# --------------------------------------------------------------------------- README


def test_readme_starts_with_make_demo_and_make_test() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# "), "README.md must start with its title"
    head = "\n".join(lines[:15])
    for cmd in ("make demo", "make test"):
        assert re.search(rf"^\s*{cmd}\b", head, re.M), f"`{cmd}` not within README's first 15 lines"
    first_section = next((i for i, ln in enumerate(lines) if ln.startswith("## ")), len(lines))
    assert first_section > max(i for i, ln in enumerate(lines[:15]) if "make test" in ln), \
        "`make demo` / `make test` must come before the first section"


def _code_text(markdown: str) -> str:
    """Fenced code blocks and inline code spans of a Markdown text."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.M | re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S))
    return "\n".join(fenced + inline)


def test_every_command_named_in_readme_exists() -> None:
    code = _code_text(README.read_text(encoding="utf-8"))
    named = set(re.findall(r"(?:^|[\s/(])moqwk\s+([a-z][a-z0-9_-]*)", code, re.M))
    assert named, "README names no moqwk command"
    unknown = sorted(named - set(subcommands()))
    assert not unknown, f"README names commands the parser does not have: {unknown}"


def test_readme_flags_exist() -> None:
    """Every `moqwk CMD ... --flag` in README's code is a flag of CMD."""
    subs = subcommands()
    code = _code_text(README.read_text(encoding="utf-8"))
    code = re.sub(r"\\\n\s*", " ", code)  # join continued lines
    bad = []
    for line in code.splitlines():
        m = re.search(r"(?:^|[\s/(])moqwk\s+([a-z][a-z0-9_-]*)(.*)", line)
        if not m or m.group(1) not in subs:
            continue
        known = {s for a in subs[m.group(1)]._actions for s in a.option_strings}
        rest = m.group(2).split("#", 1)[0]
        bad += [f"moqwk {m.group(1)} {f}" for f in re.findall(r"(?<!\S)(--[a-z][a-z0-9-]*)", rest)
                if f not in known]
    assert not bad, f"README uses flags the parser does not have: {bad}"


# --------------------------------------------------------------------------- links


def markdown_files() -> list[Path]:
    return [README, REPO / "CHANGELOG.md", REPO / "benchmarks" / "README.md",
            *sorted(DOCS.rglob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading (lower case, punctuation dropped, spaces to hyphens)."""
    text = heading.strip().replace("`", "").replace("*", "").lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M):
        base = _slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def _pending(target: Path) -> bool:
    """Documents that come later from the ELLIPSE pilot: links to them may precede them."""
    rel = target.relative_to(REPO).as_posix() if target.is_relative_to(REPO) else ""
    return rel.startswith("docs/research/") or re.fullmatch(r"docs/decisions/0001-.*\.md", rel) \
        is not None


def relative_links(path: Path) -> list[tuple[str, str]]:
    """(target, anchor) of every relative Markdown link outside code."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    out = []
    for m in re.finditer(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text):
        url = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):  # http:, https:, mailto: ...
            continue
        target, _, anchor = url.partition("#")
        out.append((target, anchor))
    return out


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for target, anchor in relative_links(path):
        dest = (path.parent / target).resolve() if target else path
        if _pending(dest) and not dest.exists():
            continue  # docs/research/* and docs/decisions/0001-*.md are written after the pilot
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}#{anchor}: no such heading in {dest.relative_to(REPO)}")
    assert not broken, f"broken links in {path.relative_to(REPO)}: {broken}"


def test_docs_exist() -> None:
    for rel in ("docs/tutorial.md", "docs/how-to/own-corpus.md",
                "docs/how-to/postgresql-workers.md", "docs/how-to/resume-and-interrupts.md",
                "docs/how-to/tail-tradeoffs.md",
                "docs/how-to/own-features.md", "docs/how-to/grid-and-compare.md",
                "docs/reference/cli.md", "docs/reference/config.md",
                "docs/reference/artifacts.md", "docs/reference/exit-codes.md",
                "docs/explanation/method.md", "docs/decisions/README.md", "CHANGELOG.md"):
        assert (REPO / rel).is_file(), f"{rel} is missing"


# --------------------------------------------------------------------------- references vs code


def test_config_reference_tables_are_the_declarations() -> None:
    """Every field table of config.md is what the field declarations generate: a field added
    (or a help text changed) without regenerating the page fails here, naming the command."""
    from moqwk.config.reference import COMMAND, render

    text = (DOCS / "reference" / "config.md").read_text(encoding="utf-8")
    _, changed = render(text)
    assert not changed, (f"docs/reference/config.md: the field tables {', '.join(changed)} "
                         f"differ from the declarations; run `{COMMAND}`")


def test_config_reference_has_every_section_and_mapping_method() -> None:
    from moqwk.config.load import SECTIONS
    from moqwk.core.mapping import METHODS

    text = (DOCS / "reference" / "config.md").read_text(encoding="utf-8")
    missing = [s for s in SECTIONS if f"## `{s}`" not in text]
    for name, method in METHODS.items():
        if f"`{name}`" not in text:
            missing.append(f"mapping method {name}")
        missing += [f"mapping param {name}.{p}" for p in method.defaults
                    if f"`{p}`" not in text]
    assert not missing, f"docs/reference/config.md does not document: {missing}"


def test_the_reference_command_rewrites_a_stale_table(tmp_path: Path) -> None:
    from moqwk.config.reference import main

    page = tmp_path / "config.md"
    text = (DOCS / "reference" / "config.md").read_text(encoding="utf-8")
    stale = text.replace("| `cv.n_folds` | int >= 2 | `5` |", "| `cv.n_folds` | int | `4` |")
    assert stale != text
    page.write_text(stale, encoding="utf-8")
    assert main([str(page), "--check"]) == 1 and page.read_text(encoding="utf-8") == stale
    assert main([str(page)]) == 0
    assert page.read_text(encoding="utf-8") == text
    assert main([str(page), "--check"]) == 0


def test_exit_code_reference_lists_every_code() -> None:
    from moqwk import errors

    text = (DOCS / "reference" / "exit-codes.md").read_text(encoding="utf-8")
    codes = {int(c) for c in re.findall(r"^\s+(\d+)\s", EXIT_CODES_DOC, re.M)}
    codes |= {cls.exit_code for cls in vars(errors).values()
              if isinstance(cls, type) and issubclass(cls, errors.MoqwkError)}
    missing = sorted(c for c in codes if f"| `{c}` |" not in text)
    assert not missing, f"docs/reference/exit-codes.md lacks exit codes {missing}"
    names = [n for n, cls in vars(errors).items()
             if isinstance(cls, type) and issubclass(cls, errors.MoqwkError)
             and cls is not errors.MoqwkError]
    assert all(f"`{n}`" in text for n in names), \
        f"docs/reference/exit-codes.md should name every error class: {names}"


def test_own_corpus_counts_the_errors_it_lists():
    """The how-to said "Two run-directory errors" and listed four."""
    words = {"Two": 2, "Three": 3, "Four": 4, "Five": 5, "Six": 6}
    lines = (REPO / "docs/how-to/own-corpus.md").read_text(encoding="utf-8").splitlines()
    (i,) = [i for i, ln in enumerate(lines) if re.match(r"^\w+ errors appear when", ln)]
    items = 0
    for ln in lines[i + 2:]:
        if ln.startswith("- "):
            items += 1
        elif not ln.startswith("  "):
            break
    assert words[lines[i].split()[0]] == items
