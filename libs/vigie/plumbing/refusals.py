"""A request refused for a reason the person can act on: one type for every domain (issue 37).

Each refusal carries a stable `code` the web UI and police systems read (the English message is
for logs and the API's `detail`, and may be reworded), the `params` that code's sentence needs,
and a `kind` that says what sort of refusal it is. The gateway turns a refusal into an HTTP
problem in one place (`KIND_STATUS`); the CLI prints it and exits 2."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

RefusalKind = Literal["invalid", "malformed", "conflict", "not_found", "forbidden", "gone",
                      "too_many", "unavailable"]
# The one place a refusal becomes an HTTP status.
# `malformed`: the body's shape, as FastAPI's own validation answers (a label too long, a layout
# with more cameras than panes).
KIND_STATUS: dict[str, int] = {"invalid": 400, "malformed": 422, "forbidden": 403,
                               "not_found": 404, "conflict": 409, "gone": 410, "too_many": 429,
                               "unavailable": 503}
Param = str | int | float | None


class Refusal(ValueError):
    """Raise a subclass (HoldError, CopyError…) with the reason in English; `code` names the
    reason for translations (`<domain>.<reason>`, stable once published), `kind` defaults to the
    class's (`invalid`: the request itself is wrong; `conflict`: the record's state does not allow
    it now; `not_found`: nothing of that name in the caller's communes)."""

    kind: ClassVar[RefusalKind] = "invalid"
    domain: ClassVar[str] = "request"

    def __init__(self, message: str, *, code: str | None = None,
                 kind: RefusalKind | None = None, **params: Param) -> None:
        super().__init__(message)
        self.code = code if code is not None else f"{self.domain}.refused"
        self.refusal_kind: RefusalKind = kind or self.kind
        self.params = params

    @classmethod
    def carrying(cls, other: Refusal) -> Self:
        """Another domain's refusal told as this one's (a hold refused inside an export): its
        code, kind and params are kept, so the person reads the same sentence."""
        refusal = cls(str(other), code=other.code, kind=other.refusal_kind)
        refusal.params = dict(other.params)
        return refusal

    @property
    def status(self) -> int:
        return KIND_STATUS[self.refusal_kind]

    def problem(self) -> dict[str, object]:
        """The body of the HTTP answer: `detail` as before (clients read it), plus the code."""
        return {"detail": str(self), "code": self.code, "params": self.params}


class NotFound(Refusal, LookupError):
    """Nothing of that name among what the caller may see (another commune's is not found either:
    saying it exists would tell what the caller may not know)."""

    kind: ClassVar[RefusalKind] = "not_found"
    domain: ClassVar[str] = "record"
