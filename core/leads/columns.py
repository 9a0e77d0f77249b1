"""The lead's columns in one list, and the two views of it: what an import writes, what a run reads."""

from __future__ import annotations

# What is known about the person: filled by an import, edited on the lead's page, read by a run.
LEAD_DATA_COLUMNS = (
    "first_name",
    "last_name",
    "phone",
    "email",
    "company",
    "title",
    "website",
    "industry",
    "city",
    "country",
    "time_zone",
    "notes",
    "custom_fields",
)
# What an import writes, in the order of a normalised row's values (`RowOutcome.values`).
IMPORTED_COLUMNS = (*LEAD_DATA_COLUMNS, "alternates")
# What a pipeline run reads of its lead: the data, and whether the person opted out or replied.
RUN_COLUMNS = ("id", *LEAD_DATA_COLUMNS, "opted_out_at", "replied_at")
