"""Every secret the tests make, use or are handed, kept per process.

Filled by hooks the plugin installs (see `sources`), never by the tests themselves, so a
new test is covered without doing anything: settings' `SecretStr` values (API keys,
webhook secrets, the secret key), passwords the hashers see, the tokens the app's
`TokenGenerator` makes (session ids, CSRF, refresh and one-time tokens, which the mails
carry), and what crosses HTTP (credentials sent, cookies and tokens handed out).
"""

from __future__ import annotations

import threading

# Shorter values ("abc", "1234") occur in any log by chance; every real secret is longer.
MIN_LENGTH = 8
LONG = 2 * MIN_LENGTH - 1


class SecretRegistry:
    """Secrets and where each came from. Thread-safe; a value keeps its first source."""

    def __init__(self) -> None:
        self._sources: dict[str, str] = {}
        # A text is searched in one pass however many secrets there are: its windows of
        # MIN_LENGTH characters at every MIN_LENGTH-th position are looked up among the
        # windows of each long secret's first MIN_LENGTH offsets (any occurrence of a
        # secret of LONG characters or more covers one such window); the few shorter
        # secrets are searched for one by one.
        self._by_window: dict[str, list[str]] = {}
        self._short: list[str] = []
        self._lock = threading.Lock()

    def add(self, value: object, source: str) -> None:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str) or len(value) < MIN_LENGTH:
            return
        with self._lock:
            if value in self._sources:
                return
            self._sources[value] = source
            if len(value) < LONG:
                self._short.append(value)
                return
            for offset in range(MIN_LENGTH):
                window = value[offset : offset + MIN_LENGTH]
                self._by_window.setdefault(window, []).append(value)

    def clear(self) -> None:
        with self._lock:
            self._sources.clear()
            self._by_window.clear()
            self._short.clear()

    def __contains__(self, value: str) -> bool:
        return value in self._sources

    def __len__(self) -> int:
        return len(self._sources)

    def source(self, value: str) -> str:
        return self._sources[value]

    def found_in(self, text: str) -> list[str]:
        """The registered secrets that occur in `text`."""
        if len(text) < MIN_LENGTH:
            return []
        windows = {
            text[i : i + MIN_LENGTH] for i in range(0, len(text) - MIN_LENGTH + 1, MIN_LENGTH)
        }
        with self._lock:
            candidates = {
                secret
                for window in windows & self._by_window.keys()
                for secret in self._by_window[window]
            }
            candidates.update(self._short)
        return [secret for secret in candidates if secret in text]


# One per process: pytest-xdist workers each keep (and check) their own.
REGISTRY = SecretRegistry()
