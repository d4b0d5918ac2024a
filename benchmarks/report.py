"""Writing benchmark results into docs/benchmarks.md: one '## ' section per benchmark, replaced in place."""
from __future__ import annotations

import os
import re


def write_section(doc_path: str, section: str) -> None:
    """Replaces the section whose heading is `section`'s first line (up to the next '## ' heading), or appends
    it; other sections are left alone. Creates the file if missing."""
    heading = section.splitlines()[0].rstrip()
    if not heading.startswith("## "):
        raise ValueError(f"a section starts with a '## ' heading, got {heading!r}")
    text = open(doc_path).read() if os.path.exists(doc_path) else "# Benchmarks\n"
    pattern = re.compile(r"^" + re.escape(heading) + r"[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    section = section.rstrip("\n") + "\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    os.makedirs(os.path.dirname(os.path.abspath(doc_path)), exist_ok=True)
    with open(doc_path, "w") as f:
        f.write(text)
