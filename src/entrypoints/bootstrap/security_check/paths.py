"""Setting paths ("oauth.github.token_url") checked against the `Settings` model."""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel

from entrypoints.bootstrap.security_check.model import Rule
from entrypoints.bootstrap.settings import Settings


def _models(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models a field holds: its type, or the members of `Model | None`."""
    candidates = (annotation, *get_args(annotation))
    return [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]


def setting_path_exists(path: str, model: type[BaseModel] = Settings) -> bool:
    """True when `path` names a field of `model`, descending into nested models."""
    head, _, rest = path.partition(".")
    field = model.model_fields.get(head)
    if field is None:
        return False
    if not rest:
        return True
    return any(setting_path_exists(rest, nested) for nested in _models(field.annotation))


def unknown_setting_paths(rule: Rule, model: type[BaseModel] = Settings) -> list[str]:
    """The paths `rule` declares that `model` does not have (a rename, a typo, a guess)."""
    return [path for path in rule.reads if not setting_path_exists(path, model)]


def undeclared_variables(rule: Rule, settings: Settings) -> list[str]:
    """The variables `rule`'s findings on `settings` name outside the paths it declares.

    Pass settings as the check sees them (`as_production`).
    """
    declared = rule.variables()
    return [finding.setting for finding in rule(settings) if finding.setting not in declared]
