"""Configuration: YAML in, validated settings out.

Placeholder until the core lands: plugins subclass :class:`PluginConfig` for their section.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a config file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class PluginConfig(StrictModel):
    """Keys every plugin section accepts; a plugin's own model subclasses this.

    Mark secrets with ``pydantic.SecretStr`` so they are never printed, also not in errors.
    """

    enabled: bool = True
    simulate: bool = False
