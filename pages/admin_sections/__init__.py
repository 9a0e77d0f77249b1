"""The sections of the Admin page, each a `show(db, actor)` that owns its widget keys."""
