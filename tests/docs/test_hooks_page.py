"""docs/hooks.md's examples do what the page says (its signatures are checked elsewhere:
tests/core/test_hookspecs.py)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, SecretStr, ValidationError, model_validator

from bot import PluginConfig, hookimpl

DOC = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"


def config_model() -> Any:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- config-example -->\n```python\n(.*?)```\n", text, re.S)
    assert block is not None
    # A real module: pydantic resolves the postponed annotations in the class's module.
    module = types.ModuleType("hooks_page_example")
    module.__dict__.update(
        Field=Field,
        PluginConfig=PluginConfig,
        SecretStr=SecretStr,
        hookimpl=hookimpl,
        model_validator=model_validator,
    )
    sys.modules[module.__name__] = module
    try:
        source = "from __future__ import annotations\n" + block[1]
        exec(compile(source, str(DOC), "exec"), module.__dict__)
        return module.bot_config_model()
    finally:
        del sys.modules[module.__name__]


def test_the_config_example_needs_no_token_with_simulate() -> None:
    model = config_model()
    assert model.model_validate({"simulate": True}).simulate is True
    assert model.model_validate({"token": "t0k"}).token.get_secret_value() == "t0k"
    with pytest.raises(ValidationError, match=r"token is required \(or set simulate: true\)"):
        model.model_validate({})
