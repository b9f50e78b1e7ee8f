"""The documentation's relative links resolve, and no page cites material users do not have."""

import os
import re

import pytest

from tests.conftest import ROOT

# [text](target) outside code spans; images too. Absolute URLs and pure anchors are not files.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _pages():
    pages = [os.path.join(ROOT, "README.md")]
    for folder, _, names in os.walk(os.path.join(ROOT, "docs")):
        pages += [os.path.join(folder, name) for name in sorted(names) if name.endswith(".md")]
    for folder, _, names in os.walk(os.path.join(ROOT, "experiments")):
        pages += [os.path.join(folder, name) for name in sorted(names) if name.endswith(".md")]
    return pages


def _relative_links(text):
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        yield target.split("#")[0]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_resolve(page):
    with open(page, encoding="utf-8") as handle:
        text = handle.read()
    broken = [t for t in _relative_links(text) if not os.path.exists(os.path.join(os.path.dirname(page), t))]
    assert not broken, f"{os.path.relpath(page, ROOT)} links to missing files: {broken}"


def test_the_link_check_sees_a_broken_link():
    assert list(_relative_links("see [a](docs/x.md#part), `[b](no.md)`, [c](https://e.org), [d](#top)")) == [
        "docs/x.md"
    ]


def test_no_file_cites_the_internal_spec_or_an_issue_number():
    """Users have neither the internal spec nor the issue tracker: decisions are explained in docs/design.md."""
    citation = re.compile(r"SPEC(\.md| §)|\.\./shared/docs|\bissue [0-9]+")
    found = []
    for top in ("hfgd_tf", "scripts", "docs", "experiments", "tools", "README.md"):
        path = os.path.join(ROOT, top)
        files = (
            [path]
            if os.path.isfile(path)
            else [os.path.join(folder, name) for folder, _, names in os.walk(path) for name in names]
        )
        for file in files:
            if not file.endswith((".py", ".md", ".cfg", ".txt", ".json")):
                continue
            with open(file, encoding="utf-8", errors="replace") as handle:
                for number, line in enumerate(handle, 1):
                    if citation.search(line):
                        found.append(f"{os.path.relpath(file, ROOT)}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found)
