"""RFC 9457 problem details, the shape of every error answer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProblemErrorItem(BaseModel):
    """One invalid input: where it is, what is wrong, a stable machine-readable type."""

    loc: list[str | int] = Field(description="Path to the input, e.g. ['body', 'email'].")
    msg: str
    type: str


class Problem(BaseModel):
    """An error answer (`application/problem+json`).

    `code` is stable and snake_case (e.g. `email_taken`); clients branch on it, not on
    `detail`, which is for humans.
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field("about:blank", description="Problem type URI.")
    title: str = Field(description="The HTTP status phrase.")
    status: int
    detail: str
    code: str = Field(description="Stable, snake_case error code.")
    errors: list[ProblemErrorItem] | None = Field(
        None, description="Invalid inputs (validation problems only)."
    )
    limit: int | None = Field(None, description="The limit that was reached (quota problems).")
    remaining: int | None = Field(None, description="What is left of the limit (quota problems).")
    resets_at: str | None = Field(None, description="When the limit resets (quota problems).")
    upgrade_url: str | None = Field(None, description="Where to upgrade (quota problems).")
