"""What ``hone ui`` was asked to do, checked before anything starts."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from hone.errors import ValidationError
from hone.serve.settings import check_listening

__all__ = ["DEFAULT_PORT", "TOKEN_ENV", "UiSettings"]

TOKEN_ENV = "HONE_UI_TOKEN"
DEFAULT_PORT = 8701


@dataclass(frozen=True)
class UiSettings:
    workspace: str  # the workspace's home folder
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    public_url: str | None = None  # behind a reverse proxy: the URL browsers open

    def __post_init__(self) -> None:
        port: object = self.port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValidationError(f"port {port!r}: give a whole number from 0 to 65,535")
        check_listening(self.host, self.token, what="UI", env=TOKEN_ENV)
        if self.public_url is not None:
            public = urlsplit(self.public_url)
            if (
                public.scheme not in ("http", "https")
                or not public.hostname
                or public.path not in ("", "/")
                or public.query
                or public.fragment
            ):
                raise ValidationError(
                    f"public URL {self.public_url!r}: give the origin browsers open, such as "
                    "https://hone.example.com (no path)"
                )
