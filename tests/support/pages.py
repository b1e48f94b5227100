"""Reading an HTML answer as a person sees it: which ids, inputs, forms, messages and lines it has."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.IGNORECASE)


class Page(HTMLParser):
    """What a person sees in an HTML answer: ids, inputs, forms, problems, the lines table."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__()
        self.status = response.status_code
        self.html = response.text
        self.ids: set[str] = set()
        self.inputs: dict[str, dict[str, str]] = {}
        self.forms: dict[str, dict[str, str]] = {}
        self.problems: dict[str, str] = {}
        self.lines: list[list[str]] = []
        self.current_steps: list[str] = []
        self._form: dict[str, str] | None = None
        self._problem: str | None = None
        self._text: list[str] = []
        self._in_lines = self._in_body = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(self.html)
        self.close()

    @property
    def is_full_page(self) -> bool:
        return "<html" in self.html and 'id="main"' in self.html

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if a.get("aria-current") == "step":
            self.current_steps.append(a.get("id", ""))
        if tag == "form" and a.get("method") == "post":
            self._form = self.forms.setdefault(a["action"], {})
        elif tag == "input":
            if "id" in a:
                self.inputs[a["id"]] = a
            if self._form is not None and "name" in a:
                self._form[a["name"]] = a.get("value", "")
        elif tag == "p" and "problem" in a.get("class", "").split():
            self._problem, self._text = a["id"].removesuffix("-problem"), []
        elif tag == "table" and "lines" in a.get("class", "").split():
            self._in_lines = True
        elif tag == "tbody" and self._in_lines:
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "p" and self._problem is not None:
            self.problems[self._problem] = " ".join("".join(self._text).split())
            self._problem = None
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.lines.append(self._row[:5])
            self._row = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._in_lines = False

    def handle_data(self, data: str) -> None:
        if self._problem is not None:
            self._text.append(data)
        if self._cell is not None and self._row is not None and len(self._row) < 5:
            self._cell.append(data)

    def value(self, input_id: str) -> str:
        return self.inputs[input_id].get("value", "")
