"""The README is a front page (<= 300 lines) that links every page of docs/, and every relative
link or image in README.md and docs/*.md points to a file that exists (and an ``#anchor`` to a
heading of that page)."""

import re

import pytest
from repository import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target) and ![alt](target)
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)


def links(text):
    """Link and image targets of markdown ``text``, outside code blocks and inline code."""
    return LINK.findall(re.sub(r"`[^`\n]*`", "", FENCE.sub("", text)))


def slug(heading):
    """GitHub's anchor for a heading: lower case, backticks and punctuation dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    """The anchors of the headings of ``path`` (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen, out = {}, set()
    for m in re.finditer(r"^#{1,6} (.+)$", FENCE.sub("", path.read_text()), flags=re.M):
        s = slug(m.group(1))
        out.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return out


def test_slug_and_links_read_markdown_as_github_does():
    assert slug("The main job: `experiments/parity.py`") == "the-main-job-experimentsparitypy"
    assert slug("Set-up: two commands") == "set-up-two-commands"
    assert links("[a](x.md#y) ![b](p.png) `[c](no.md)`\n```\n[d](no.md)\n```\n") == ["x.md#y", "p.png"]


def test_readme_is_a_front_page_linking_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    n = len(readme.splitlines())
    assert n <= 300, f"README.md has {n} lines (at most 300): move detail into a page of docs/"
    assert len(PAGES) > 1
    linked = set(links(readme))
    missing = [p.name for p in PAGES[1:] if not any(t.partition("#")[0] == f"docs/{p.name}" for t in linked)]
    assert not missing, f"README.md links no docs/{missing[0]}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_images_exist(page):
    bad = []
    for target in links(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target} (no heading #{anchor} in {dest.relative_to(ROOT)})")
    assert not bad, f"{page.relative_to(ROOT)}: broken links: {', '.join(bad)}"
