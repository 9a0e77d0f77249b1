"""Send window: the columns that hold the hours when sending is allowed are named for them

`tenants.quiet_hours_start/end` and `campaigns.quiet_hours` stored the send window (the hours
when messages may go out), the opposite of what their names said; the editor and the admin
settings already called them the send window.

Revision ID: 0021_send_window
Revises: 0020_import_warnings
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021_send_window"
down_revision: str | Sequence[str] | None = "0020_import_warnings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMES = {
    "tenants": [("quiet_hours_start", "send_window_start"), ("quiet_hours_end", "send_window_end")],
    "campaigns": [("quiet_hours", "send_window")],
}


def _rename(*, forward: bool) -> None:
    for table, columns in RENAMES.items():
        # A rename needs no copy of the table: SQLite (3.25 and later) renames a column in place,
        # and its foreign keys, indexes and the rows that point at the table stay as they are.
        with op.batch_alter_table(table, recreate="never") as batch:
            for old, new in columns:
                before, after = (old, new) if forward else (new, old)
                batch.alter_column(before, new_column_name=after)


def upgrade() -> None:
    _rename(forward=True)


def downgrade() -> None:
    _rename(forward=False)
