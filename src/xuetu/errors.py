"""Domain errors: what library code raises. Each says what went wrong and, in `hint`, what to do next.

The kinds are few on purpose, and each app maps them once (the CLI prints message and hint; each HTTP API
family turns them into its status codes and bodies in `serve/<family>/errors.py`):

    XuetuError            bad input, unless a subclass says otherwise (the request or the file is wrong)
      BadInput            the same, named: a value the caller can fix
        InvalidName       a model name that could escape the store or is not name:tag shaped
        ContextTooLong    the prompt does not fit the model's context window
      NotFound            a thing the caller named does not exist
        ModelNotFound     a model neither the store, the alias table nor a hub knows
          ModelNotPulled  a model known by name (an alias) that is not in the store yet
      Conflict            it would replace or race with something that exists
      NotAllowed          the settings forbid it here (a path, a URL, an overwrite over HTTP)
      TooLarge            more than a limit allows (a text, an upload)
      Busy                at capacity now; retry after `retry_after` seconds
        RateLimited       this caller asks for more than it may now (a full model queue, a spent quota)
      Unavailable         the work cannot be done at all now (not enough memory, a load failed)
        DownloadError     a network or checksum failure while pulling a model
        UpstreamError     a remote model's provider failed: unreachable, a refused key, a broken stream

`code` is a stable machine-readable name, `param` the request field at fault when one is known.
"""

from __future__ import annotations


class XuetuError(Exception):
    """An error with a one-line message and an optional hint for the user."""

    code: str = "invalid_request"

    def __init__(self, message: str, hint: str | None = None, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code
        self.param = param

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"

    def full(self) -> str:
        """Message and hint as one sentence pair, for a one-line reply (an HTTP error body)."""
        if not self.hint:
            return self.message
        return self.message + ("" if self.message.endswith((".", "?", "!", ":")) else ".") + " " + self.hint


class BadInput(XuetuError):
    """A value the caller can fix."""


class InvalidName(BadInput):
    """A model name that could escape the store or is not name:tag shaped."""


class ContextTooLong(BadInput):
    """The prompt does not fit into the model's context window."""

    code = "context_length_exceeded"


class NotFound(XuetuError):
    """A thing the caller named (a run, a knowledge base, a document, a model) does not exist."""

    code = "not_found"


class ModelNotFound(NotFound):
    """A model name that neither the store, the alias table nor a hub knows."""

    code = "model_not_found"

    def __init__(self, message: str, hint: str | None = None, *, name: str | None = None,
                 suggestions: list[str] | tuple[str, ...] = (), code: str | None = None, param: str | None = None):
        super().__init__(message, hint, code=code, param=param)
        self.name = name
        """The name asked for."""
        self.suggestions = list(suggestions)
        """Known names close to it."""


class ModelNotPulled(ModelNotFound):
    """A model xuetu knows by name (an alias) that is not in the store yet."""


class Conflict(XuetuError):
    """The request would replace or race with something that exists: a model, a running job."""

    code = "conflict"


class NotAllowed(XuetuError):
    """The settings do not allow this here (over HTTP: a path, a URL, an overwrite)."""

    code = "not_allowed"


class TooLarge(XuetuError):
    """More than a limit allows: a text, an upload, a batch."""

    code = "request_too_large"


class Busy(XuetuError):
    """At capacity right now; the same request will likely succeed after `retry_after` seconds."""

    code = "server_busy"

    def __init__(self, message: str, hint: str | None = "Retry in a moment.", *, retry_after: float = 1,
                 code: str | None = None, param: str | None = None):
        super().__init__(message, hint, code=code, param=param)
        self.retry_after = retry_after


class RateLimited(Busy):
    """This caller asks for more than it may right now: a full queue for one model, a spent daily quota."""

    code = "rate_limited"


class Unavailable(XuetuError):
    """The work cannot be done now, whatever the request: not enough memory, a model that failed to load."""

    code = "unavailable"


class DownloadError(Unavailable):
    """A network or checksum failure while pulling a model."""

    code = "upstream_error"


class UpstreamError(Unavailable):
    """A remote model's provider failed us: unreachable, a refused key, an unknown model, a broken stream."""

    code = "upstream_error"
