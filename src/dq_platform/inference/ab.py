"""Sustained A/B assignment for `"model": "auto"` (docs/api.md, "A/B operations").

Weights live in an SSM parameter read through Powertools Parameters with `max_age`, so operators change
the split without a redeploy and each warm container picks the change up within the TTL. Assignment is
a hash of a stable key, so the same document always lands on the same model for the same weights.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.parameters import SSMProvider

BASELINE = "baseline"
TRANSFORMER = "transformer"


class ABWeights(BaseModel):
    """Relative traffic shares for `auto` plus the share of requests also run on the other model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline: float = Field(ge=0.0)
    transformer: float = Field(ge=0.0)
    shadow_rate: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _some_traffic(self) -> ABWeights:
        if self.baseline + self.transformer <= 0:
            raise ValueError("baseline + transformer must be > 0")
        return self

    @property
    def baseline_share(self) -> float:
        return self.baseline / (self.baseline + self.transformer)


DEFAULT_WEIGHTS = ABWeights(baseline=0.9, transformer=0.1, shadow_rate=0.0)


def unit_hash(key: str, salt: str) -> float:
    """A uniform number in [0, 1) from a key; `salt` keeps the A/B and shadow draws independent."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(key: str, weights: ABWeights) -> str:
    return BASELINE if unit_hash(key, "ab") < weights.baseline_share else TRANSFORMER


def wants_shadow(key: str, weights: ABWeights) -> bool:
    return weights.shadow_rate > 0 and unit_hash(key, "shadow") < weights.shadow_rate


def other_model(name: str) -> str:
    return TRANSFORMER if name == BASELINE else BASELINE


T = TypeVar("T", bound=BaseModel)


class SSMJsonConfig(Generic[T]):
    """A JSON SSM parameter validated into `model`, with a safe default when absent or invalid.

    Powertools caches good values for `ttl_s`; after a failed read the last good value (or the default)
    is served and SSM is not asked again before `ttl_s`, so an SSM outage neither fails requests nor
    turns every request into an SSM call.
    """

    def __init__(
        self,
        name: str | None,
        model: type[T],
        default: T,
        ttl_s: int,
        logger: Logger,
        provider: SSMProvider | None = None,
    ) -> None:
        self.name = name
        self._model = model
        self._default = default
        self._ttl_s = ttl_s
        self._logger = logger
        self._provider = provider
        self._last_good: T | None = None
        self._retry_at = 0.0

    @property
    def provider(self) -> SSMProvider:
        # Created on first use: building a boto3 client costs cold-start time the health check does not need.
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SSMProvider

            self._provider = SSMProvider()
        return self._provider

    def current(self) -> tuple[T, str]:
        """The value and where it came from (the parameter name, `last-good` or `default`)."""
        if self.name is None:
            return self._default, "default"
        fallback = (self._last_good, "last-good") if self._last_good is not None else (self._default, "default")
        if time.monotonic() < self._retry_at:
            return fallback
        from aws_lambda_powertools.utilities.parameters.exceptions import (
            GetParameterError,
            TransformParameterError,
        )

        try:
            raw: Any = self.provider.get(self.name, max_age=self._ttl_s, transform="json")
            value = self._model.model_validate(raw)
        except (GetParameterError, TransformParameterError, ValidationError) as exc:
            self._logger.warning(
                "configuration parameter unusable; serving fallback",
                extra={"parameter": self.name, "error": type(exc).__name__, "fallback": fallback[1]},
            )
            self._retry_at = time.monotonic() + self._ttl_s
            return fallback
        self._last_good = value
        return value, self.name


class ModelVersions(BaseModel):
    """Versions the deployment expects (`/{prefix}/{env}/model-versions`); `LATEST` or `*` accepts any."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    def expected(self) -> dict[str, str]:
        extra = self.model_extra or {}
        return {k: str(v) for k, v in extra.items() if str(v) not in ("", "*", "LATEST")}
