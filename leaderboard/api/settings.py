"""The API function's configuration: environment variables as one validated model."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from leaderboard.api.cursor import MIN_SECRET_BYTES


class ConfigurationError(RuntimeError):
    """The function's environment is missing or has invalid settings (a deployment error)."""


class ApiSettings(BaseModel):
    """Settings of the leaderboard API, read from the function's environment."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    # The Secrets Manager secret whose AWSCURRENT / AWSPREVIOUS versions sign and verify cursors
    # (what the stack sets): read at run time, so the key is in no configuration and can rotate.
    cursor_secret_id: str | None = Field(default=None, alias="CURSOR_SECRET_ID", min_length=1)
    # How long a read of the secret is trusted before Secrets Manager is asked again.
    cursor_secret_max_age_s: int = Field(default=300, alias="CURSOR_SECRET_MAX_AGE_S", ge=1, le=3600)
    # Or one fixed key, for embedding the API without Secrets Manager (tests, a single process).
    # Every instance of the API must share it, or a cursor issued by one is rejected by another.
    cursor_secret: SecretStr | None = Field(default=None, alias="CURSOR_SECRET", min_length=MIN_SECRET_BYTES)
    cors_allow_origin: str = Field(default="*", alias="CORS_ALLOW_ORIGIN", min_length=1)
    # Ranked races kept warm; a 10,000-racer ranking is a few MB.
    ranking_cache_races: int = Field(default=8, alias="RANKING_CACHE_RACES", ge=1, le=256)
    # How long a cached ranking is served before its race version is read again (0: every request).
    ranking_revalidate_ms: int = Field(default=1000, alias="RANKING_REVALIDATE_MS", ge=0, le=60_000)

    @model_validator(mode="after")
    def _one_cursor_key_source(self) -> ApiSettings:
        if (self.cursor_secret_id is None) == (self.cursor_secret is None):
            raise ValueError("set exactly one of CURSOR_SECRET_ID and CURSOR_SECRET")
        return self

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ApiSettings:
        """Validate the settings found in ``environ``; raise ConfigurationError naming what is wrong."""
        try:
            return cls.model_validate(dict(environ))
        except ValidationError as exc:
            # Never echo the input: it may be the secret.
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"invalid API settings: {problems}") from exc
