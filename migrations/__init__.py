"""sqlite-utils migration sets: ``core`` here, and one module per plugin that owns tables.

Installed as the package ``bot_migrations``. A plugin returns its set from the
``bot_migrations`` hook; the core applies every set at start-up and on ``bot migrate``.
"""
