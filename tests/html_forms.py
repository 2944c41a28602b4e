"""What a browser would submit for a form of a rendered page (HTML living standard, "form
submission"): enabled named inputs with their values, checked checkboxes and radios only,
the selected options of a select (the first one when none is selected), textareas with
their first newline dropped and line breaks sent as CRLF. Submit buttons are left out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

SKIPPED_INPUTS = {"submit", "button", "reset", "image", "file"}


@dataclass
class _Select:
    name: str
    multiple: bool
    options: list[tuple[str, bool]] = field(default_factory=list)


@dataclass
class HtmlForm:
    action: str | None
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)

    def names(self) -> set[str]:
        return {name for name, _ in self.fields}

    def data(self, **changes: str) -> dict[str, list[str]]:
        """The submission as ``{name: [values]}`` (for the test client), with changes."""
        out: dict[str, list[str]] = {}
        for name, value in self.fields:
            out.setdefault(name, []).append(value)
        for name, value in changes.items():
            out[name] = [value]
        return out


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[HtmlForm] = []
        self._form: HtmlForm | None = None
        self._select: _Select | None = None
        self._option: list | None = None
        self._textarea: list | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = HtmlForm(a.get("action"), a.get("method", "get").lower())
            self.forms.append(self._form)
            return
        if self._form is None or "disabled" in a and tag != "option":
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in SKIPPED_INPUTS:
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form.fields.append((name, a.get("value", "on")))
                return
            self._form.fields.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select = _Select(name, "multiple" in a)
        elif tag == "option" and self._select is not None:
            self._option = [a.get("value"), "selected" in a, "disabled" in a, ""]
        elif tag == "textarea" and name:
            self._textarea = [name, ""]

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option[3] += data
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "option" and self._option is not None and self._select is not None:
            value, selected, disabled, text = self._option
            if not disabled:
                self._select.options.append((value if value is not None else text.strip(),
                                             selected))
            self._option = None
        elif tag == "select" and self._select is not None and self._form is not None:
            chosen = [v for v, selected in self._select.options if selected]
            if not chosen and not self._select.multiple and self._select.options:
                chosen = [self._select.options[0][0]]
            if not self._select.multiple:
                chosen = chosen[-1:]
            self._form.fields.extend((self._select.name, v) for v in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            name, text = self._textarea
            if text.startswith("\r\n"):
                text = text[2:]
            elif text.startswith("\n"):
                text = text[1:]
            text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
            self._form.fields.append((name, text))
            self._textarea = None
        elif tag == "form":
            self._form = None


def forms_of(html: str) -> list[HtmlForm]:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.forms


def form_of(html: str, which: Callable[[HtmlForm], bool]) -> HtmlForm:
    """The one form of the page ``which`` picks (e.g. ``lambda f: "title" in f.names()``)."""
    found = [f for f in forms_of(html) if which(f)]
    assert len(found) == 1, f"expected one matching form, found {len(found)}"
    return found[0]


def submit_untouched(client, url: str, which: Callable[[HtmlForm], bool], **changes: str):
    """Load ``url``, then post its form as a browser would (``changes`` typed in first)."""
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    form = form_of(page.get_data(as_text=True), which)
    assert form.method == "post"
    return client.post(form.action or url, data=form.data(**changes))
