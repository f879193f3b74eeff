"""`portico check-config [--json]`: the production security report; exit 1 on errors."""

from __future__ import annotations

import argparse
from typing import Any

from entrypoints.bootstrap.settings import Settings
from entrypoints.cli.common import EXIT_FAILED, EXIT_OK, add_json_flag


def _check_config(args: argparse.Namespace, settings: Settings) -> int:
    """The rules are evaluated as production whatever `PORTICO_ENV` says (they are the
    only rules there are, and the point is to check a configuration before deploying
    it); the report says whether this environment would enforce them. Nothing is
    started."""
    import json

    from entrypoints.bootstrap.security_check import check_settings

    findings = check_settings(settings)
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    code = EXIT_FAILED if errors else EXIT_OK
    if args.json:
        report = {
            "evaluated_as": "production",
            "env": settings.env,
            "enforced": settings.is_production,
            "ok": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "findings": [f.as_dict() for f in findings],
        }
        print(json.dumps(report, indent=2))
        return code
    if settings.is_production:
        print("Checking the configuration (PORTICO_ENV=production: enforced at every start).")
    else:
        print(
            f"Checking the configuration as production (PORTICO_ENV={settings.env}: the "
            "check is enforced only when PORTICO_ENV=production)."
        )
    for finding in findings:
        print(f"{finding.severity.upper():<8} {finding.rule}: {finding.message}")
    verdict = "a production start would be refused" if errors else "a production start may go on"
    print(f"{errors} error(s), {warnings} warning(s): {verdict}.")
    return code


def add_config_commands(commands: Any) -> None:
    check = commands.add_parser(
        "check-config",
        help="report the production security check's findings (exit 1 on any error)",
    )
    add_json_flag(check)
    check.set_defaults(handler=_check_config)
