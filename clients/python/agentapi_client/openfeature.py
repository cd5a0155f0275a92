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
    "rollout": Reason.SPLIT,
    "archived": Reason.DISABLED,
}


class AgentApiProvider(AbstractProvider):
    """Resolve boolean flags from the tenant's bootstrap document; the targeting key is the rollout subject."""

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
    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        status = self.control_plane.status
        if status in (REVOKED, SUSPENDED):
            raise ProviderFatalError(self.control_plane.last_error)
        if self.control_plane.document is None:
            raise ProviderNotReadyError(self.control_plane.last_error or "the bootstrap document is not loaded yet")
        subject = evaluation_context.targeting_key if evaluation_context is not None else None
        result = self.control_plane.flag(flag_key, subject or None)
        if result is None:
            raise FlagNotFoundError(f"no flag {flag_key!r} for this tenant")
        return FlagResolutionDetails(
            value=result.enabled,
            reason=Reason.STALE if status == STALE else _REASONS.get(result.reason, Reason.UNKNOWN),
            variant="on" if result.enabled else "off",
            flag_metadata={"reason": result.reason, "version": result.version},
        )

    def _not_boolean(self, flag_key: str, kind: str) -> FlagResolutionDetails[Any]:
        self.resolve_boolean_details(flag_key, False)  # raises the same not-ready / not-found errors
        raise TypeMismatchError(f"flag {flag_key!r} is a boolean flag, not {kind}")

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._not_boolean(flag_key, "a string")

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._not_boolean(flag_key, "an integer")

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return self._not_boolean(flag_key, "a number")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        return self._not_boolean(flag_key, "an object")

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
