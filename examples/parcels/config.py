"""The ``plugins.parcels`` config section."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from bot import PluginConfig


class ParcelsConfig(PluginConfig):
    """Where ParcelTrack is and the API key (``enabled`` and ``simulate`` are inherited)."""

    url: str = "ws://127.0.0.1:8780"
    key: SecretStr = SecretStr("")
    #: seconds a request may take before the user hears that ParcelTrack did not answer
    timeout: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _key_unless_simulated(self) -> ParcelsConfig:
        # With `simulate: true` the bundled simulator's own key is used.
        if not self.simulate and not self.key.get_secret_value():
            raise ValueError("key is required (or set simulate: true)")
        return self
