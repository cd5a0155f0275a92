"""An OpenFeature provider backed by a ControlPlane: `api.set_provider(AgentApiProvider(control_plane))`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import (
    ErrorCode,
    FlagNotFoundError,
    ProviderFatalError,
    ProviderNotReadyError,
    TypeMismatchError,
)
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from agentapi_client.client import NOT_READY, READY, REVOKED, STALE, SUSPENDED, ControlPlane, ControlPlaneError

# The control plane's reasons, in OpenFeature's vocabulary.
_REASONS = {
    "default": Reason.DEFAULT,
    "plan": Reason.STATIC,
    "admin_override": Reason.TARGETING_MATCH,
    "owner_toggle": Reason.TARGETING_MATCH,
    "rule": Reason.TARGETING_MATCH,
    "rollout": Reason.SPLIT,
    "split": Reason.SPLIT,
    "archived": Reason.DISABLED,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# What each resolution accepts: the flag kind it reads, and a check of the value.
_KINDS = {
    "a boolean": ("boolean", lambda v: isinstance(v, bool)),
    "a string": ("string", lambda v: isinstance(v, str)),
    "an integer": ("number", lambda v: _is_number(v) and float(v).is_integer()),
    "a number": ("number", _is_number),
    "an object": ("json", lambda v: isinstance(v, dict | list)),
}


def _context(evaluation_context: EvaluationContext | None) -> tuple[str | None, dict]:
    """Return (subject, context): the targeting key, and the attributes the control plane's rules can test."""
    if evaluation_context is None:
        return None, {}
    context: dict[str, Any] = {}
    for name, value in (evaluation_context.attributes or {}).items():
        if isinstance(value, str | int | float | bool):
            context[name] = value
        elif isinstance(value, Sequence) and all(isinstance(v, str | int | float) for v in value):
            context[name] = list(value)
    return evaluation_context.targeting_key or None, context


class AgentApiProvider(AbstractProvider):
    """Resolve flags from the tenant's bootstrap document, locally.

    The targeting key is the subject (rollouts and splits); the other attributes are the
    evaluation context (`context.<name>` in the control plane's rules). Boolean flags
    resolve as booleans; string, number and JSON flags as strings, integers or floats,
    and objects. A typed flag that is off resolves to the caller's default (reason DISABLED).
    """

    def __init__(self, control_plane: ControlPlane) -> None:
        super().__init__()
        self.control_plane = control_plane
        control_plane.on_change(self._changed)
        control_plane.on_status(self._status)

    def get_metadata(self) -> Metadata:
        return Metadata(name="agentapi-admin")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        try:
            self.control_plane.start()
        except ControlPlaneError as exc:
            if exc.status in (REVOKED, SUSPENDED):
                raise ProviderFatalError(str(exc)) from exc
            raise ProviderNotReadyError(str(exc)) from exc

    def shutdown(self) -> None:
        self.control_plane.stop()

    # ------------------------------------------------------------------ resolution
    def _resolve(
        self, flag_key: str, default_value: Any, evaluation_context: EvaluationContext | None, expected: str
    ) -> FlagResolutionDetails[Any]:
        status = self.control_plane.status
        if status in (REVOKED, SUSPENDED):
            raise ProviderFatalError(self.control_plane.last_error)
        document = self.control_plane.document
        if document is None:
            raise ProviderNotReadyError(self.control_plane.last_error or "the bootstrap document is not loaded yet")
        subject, context = _context(evaluation_context)
        result = self.control_plane.flag(flag_key, subject, context)
        if result is None:
            raise FlagNotFoundError(f"no flag {flag_key!r} for this tenant")
        kind, fits = _KINDS[expected]
        actual = (document["flags"][flag_key].get("eval") or {}).get("kind", "boolean")
        if actual != kind:
            raise TypeMismatchError(f"flag {flag_key!r} is a {actual} flag, not {expected}")
        metadata: dict[str, bool | int | float | str] = {"reason": result.reason, "version": result.version}
        if result.rule is not None:
            metadata["rule"] = result.rule
        reason = Reason.STALE if status == STALE else _REASONS.get(result.reason, Reason.UNKNOWN)
        if kind == "boolean":
            return FlagResolutionDetails(
                value=result.enabled, reason=reason, variant="on" if result.enabled else "off", flag_metadata=metadata
            )
        if not result.enabled:
            return FlagResolutionDetails(
                value=default_value,
                reason=Reason.STALE if status == STALE else Reason.DISABLED,
                variant="off",
                flag_metadata=metadata,
            )
        if not fits(result.value):
            raise TypeMismatchError(f"flag {flag_key!r} serves {result.value!r}, not {expected}")
        value = result.value
        if expected == "an integer":
            value = int(value)
        elif expected == "a number":
            value = float(value)
        return FlagResolutionDetails(value=value, reason=reason, variant=result.variant, flag_metadata=metadata)

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, "a boolean")

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, "a string")

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, "an integer")

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, "a number")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        return self._resolve(flag_key, default_value, evaluation_context, "an object")

    # ------------------------------------------------------------------ events
    def _changed(self, keys: list[str]) -> None:
        self.emit_provider_configuration_changed(ProviderEventDetails(flags_changed=keys))

    def _status(self, status: str) -> None:
        if status == STALE:
            self.emit_provider_stale(ProviderEventDetails(message=self.control_plane.last_error))
        elif status in (REVOKED, SUSPENDED):
            self.emit_provider_error(
                ProviderEventDetails(message=self.control_plane.last_error, error_code=ErrorCode.PROVIDER_FATAL)
            )
        elif status == READY:
            self.emit_provider_ready(ProviderEventDetails())
        elif status == NOT_READY:
            self.emit_provider_error(ProviderEventDetails(message=self.control_plane.last_error))


__all__ = ["AgentApiProvider"]
