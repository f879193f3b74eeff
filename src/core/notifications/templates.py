"""Email templates: a subject, a plain-text and an HTML part, rendered with the stdlib.

Templates are `string.Template` files shipped as package data in
`core/notifications/templates/` (a plain directory: `pyproject.toml` lists its files as
package data). Template `<name>` is three files: `<name>.subject.txt` (one line),
`<name>.txt` (plain text) and `<name>.html`. Placeholders are `$key` or `${key}`; `$$`
is a literal dollar sign. Rendering rules:
- every placeholder must be given a value: a missing key is `MissingContextError`,
  never an email with a hole in it;
- values go into the text part as they are, and into the HTML part HTML-escaped
  (quotes too, so a value is safe inside an attribute such as `href="$link"`);
- the subject is folded onto one line, so a value with a line break cannot add a header.

The files are read once per process (`packaged_templates()` caches the library), so
rendering never touches the disk.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from string import Template

from core.notifications.errors import MissingContextError, UnknownTemplateError

# The templates other contexts use, with the context keys each one needs.
WELCOME = "welcome"  # username
VERIFY_EMAIL = "verify_email"  # username, link, expires_minutes
PASSWORD_RESET = "password_reset"  # username, link, expires_minutes
PASSWORD_CHANGED = "password_changed"  # username
PAYMENT_RECEIPT = "payment_receipt"  # username, amount, description, link
PAYMENT_FAILED = "payment_failed"  # username, amount, description, link

_SUBJECT_SUFFIX = ".subject.txt"
_TEXT_SUFFIX = ".txt"
_HTML_SUFFIX = ".html"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _values(context: Mapping[str, object], keys: Iterable[str]) -> dict[str, str]:
    # Job payloads come back from JSON, so numbers may arrive as int: render them as text.
    return {key: str(context[key]) for key in keys}


@dataclass(frozen=True, slots=True)
class EmailTemplate:
    """One template: three `string.Template`s sharing one set of context keys."""

    name: str
    subject: Template
    text: Template
    html: Template

    def __post_init__(self) -> None:
        for part, template in (("subject", self.subject), ("text", self.text), ("html", self.html)):
            if not template.is_valid():
                raise ValueError(f"email template {self.name!r}: the {part} has a bad placeholder")

    @property
    def keys(self) -> frozenset[str]:
        """Every context key some part of the template uses."""
        return frozenset(
            key
            for template in (self.subject, self.text, self.html)
            for key in template.get_identifiers()
        )

    def check(self, context: Mapping[str, object]) -> None:
        """Raise `MissingContextError` unless `context` has a value (not None) for every key."""
        missing = [key for key in self.keys if context.get(key) is None]
        if missing:
            raise MissingContextError(self.name, missing)

    def render(self, context: Mapping[str, object]) -> RenderedEmail:
        """Render all three parts; extra context keys are ignored."""
        self.check(context)
        values = _values(context, self.keys)
        escaped = {key: html.escape(value, quote=True) for key, value in values.items()}
        return RenderedEmail(
            subject=" ".join(self.subject.substitute(values).split()),
            text=self.text.substitute(values),
            html=self.html.substitute(escaped),
        )


class TemplateLibrary:
    """The templates of a process, by name."""

    def __init__(self, templates: Iterable[EmailTemplate]) -> None:
        self._templates = {template.name: template for template in templates}

    @classmethod
    def from_directory(cls, directory: Traversable) -> TemplateLibrary:
        """Every `<name>.subject.txt` in `directory`, with its `.txt` and `.html` parts."""
        templates = []
        for entry in directory.iterdir():
            if not entry.name.endswith(_SUBJECT_SUFFIX):
                continue
            name = entry.name.removesuffix(_SUBJECT_SUFFIX)
            parts = [directory / f"{name}{suffix}" for suffix in (_TEXT_SUFFIX, _HTML_SUFFIX)]
            if not all(part.is_file() for part in parts):
                raise ValueError(f"email template {name!r} needs {name}.txt and {name}.html")
            text, markup = (Template(part.read_text(encoding="utf-8")) for part in parts)
            subject = Template(entry.read_text(encoding="utf-8").strip())
            templates.append(EmailTemplate(name, subject, text, markup))
        return cls(templates)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._templates)

    def get(self, name: str) -> EmailTemplate:
        try:
            return self._templates[name]
        except KeyError:
            raise UnknownTemplateError(name) from None

    def check(self, name: str, context: Mapping[str, object]) -> None:
        """Raise unless `name` exists and `context` fills every placeholder."""
        self.get(name).check(context)

    def render(self, name: str, context: Mapping[str, object]) -> RenderedEmail:
        return self.get(name).render(context)


@functools.cache
def packaged_templates() -> TemplateLibrary:
    """The templates shipped with Portico, read once per process."""
    return TemplateLibrary.from_directory(files("core.notifications") / "templates")
