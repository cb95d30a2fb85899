"""Packaging glue that pyproject.toml alone cannot express.

The source tree keeps bundled plugins in ``plugins/`` and migration sets in ``migrations/``
(the layout in DESIGN.md), but installing them as top-level packages with those generic names
would collide with other distributions. They are installed as ``bot_plugins`` and
``bot_migrations`` instead, so a plain ``pip install .`` ships them inside the distribution
and ``bot run`` works from any directory.
"""

from setuptools import find_packages, setup


def _mapped(src: str, dest: str) -> list[str]:
    return [dest + name[len(src) :] for name in find_packages(include=[src, f"{src}.*"])]


setup(
    packages=find_packages(include=["bot", "bot.*"])
    + _mapped("plugins", "bot_plugins")
    + _mapped("migrations", "bot_migrations"),
    package_dir={"bot": "bot", "bot_plugins": "plugins", "bot_migrations": "migrations"},
)
