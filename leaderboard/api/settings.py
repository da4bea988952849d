"""The API function's configuration: environment variables as one validated model."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from leaderboard.api.cursor import MIN_SECRET_BYTES


class ConfigurationError(RuntimeError):
    """The function's environment is missing or has invalid settings (a deployment error)."""


class ApiSettings(BaseModel):
    """Settings of the leaderboard API, read from the function's environment."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    # Every instance of the API must share it, or a cursor issued by one is rejected by another.
    cursor_secret: SecretStr = Field(alias="CURSOR_SECRET", min_length=MIN_SECRET_BYTES)
    cors_allow_origin: str = Field(default="*", alias="CORS_ALLOW_ORIGIN", min_length=1)
    # Ranked races kept warm; a 10,000-racer ranking is a few MB.
    ranking_cache_races: int = Field(default=8, alias="RANKING_CACHE_RACES", ge=1, le=256)
    # How long a cached ranking is served before its race version is read again (0: every request).
    ranking_revalidate_ms: int = Field(default=1000, alias="RANKING_REVALIDATE_MS", ge=0, le=60_000)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ApiSettings:
        """Validate the settings found in ``environ``; raise ConfigurationError naming what is wrong."""
        try:
            return cls.model_validate(dict(environ))
        except ValidationError as exc:
            # Never echo the input: it may be the secret.
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"invalid API settings: {problems}") from exc
