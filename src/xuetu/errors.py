"""The one exception type users see: a short message and what to do next."""


class XuetuError(Exception):
    """An error with a one-line message and an optional hint for the user."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ModelNotFound(XuetuError):
    """A model name that neither the store, the alias table nor a hub knows."""


class ModelNotPulled(ModelNotFound):
    """A model xuetu knows by name (an alias) that is not in the store yet."""


class InvalidName(XuetuError):
    """A model name that could escape the store or is not name:tag shaped."""


class DownloadError(XuetuError):
    """A network or checksum failure while pulling a model."""


class ContextTooLong(XuetuError):
    """The prompt does not fit into the model's context window."""


class Conflict(XuetuError):
    """The request would replace or race with something that exists: a model, a running job."""


class NotAllowed(XuetuError):
    """The server's settings do not allow this over HTTP (a path, a URL, an overwrite)."""
