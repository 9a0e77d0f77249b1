"""The lead import: read, map, normalise, deduplicate and save a spreadsheet in one transaction.

Two phases keep the database lock short and the memory bounded. First every row is read and
normalised outside any transaction (the slow part), duplicates inside the file are dropped (the
first row wins) and the accepted rows are kept as compact tuples. Then one transaction compares
them, a chunk at a time, with the tenant's existing leads (one query per chunk, set look-ups) and
bulk-inserts or updates them; a failure anywhere rolls the whole import back and is recorded as a
failed import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from core.audit import record_audit
from core.config import Settings
from core.db import Database, trusted_sql
from core.errors import Conflict, ValidationError
from core.leads.detect import sample_values
from core.leads.mapping import (
    ColumnSuggestion,
    MappingSuggestion,
    mapping_suggestion,
    save_mapping_in,
    validate_mapping,
)
from core.leads.normalise import (
    FieldLimits,
    LeadNormaliser,
    RowOutcome,
    normalise_tags,
)
from core.leads.readers import RawTable, ReadLimits, read_table
from core.leads.saving import (
    EMAIL_AT,
    PHONE_AT,
    Accepted,
    DuplicatePolicy,
    KnownLeads,
    LeadWriter,
    chunks,
    save_chunk,
)
from core.logs import bound, get_logger
from core.models import LeadImport, Tenant
from core.permissions import Actor, Permission
from core.text import plural, plural_noun, shown

log = get_logger(__name__)

NORMALISE_CHUNK = 10_000
SAVE_CHUNK = 10_000
PREVIEW_ROWS = 20
LEFT_OUT_NAMED = 5  # columns a warning names before "and N more"

ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class ImportSummary:
    """What an import did with every row; `rejects` lists each refused row and why, `warnings`
    what was changed in rows that were kept (a note cut, a NUL byte removed)."""

    import_id: int
    file_name: str
    rows: int
    imported: int
    updated: int
    duplicates: int
    rejected: int
    rejects: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    with_warnings: int = 0  # rows kept with something changed or left out (listed in `warnings`)

    def counts(self) -> dict[str, int]:
        """The figures the command line prints with --json."""
        return {
            "import_id": self.import_id,
            "rows": self.rows,
            "imported": self.imported,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "with_warnings": self.with_warnings,
        }


@dataclass(frozen=True)
class PreviewRow:
    row: int
    status: str  # "ok", "warning" or "rejected"
    message: str
    values: dict[str, Any]


@dataclass
class _Checked:
    """Phase one's result: accepted rows as tuples, and what happened to the others."""

    rows: int = 0
    accepted: list[Accepted] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    with_warnings: int = 0
    duplicates_in_file: int = 0


def reject_message(reject: dict[str, Any]) -> str:
    return f"row {reject['row']}: {reject['reason']}"


def _policy(value: str | DuplicatePolicy) -> DuplicatePolicy:
    try:
        return DuplicatePolicy(value)
    except ValueError:
        raise ValidationError(f"on-duplicate '{value}' is not known; use skip, fill or overwrite") from None


def tenant_country(db: Database, actor: Actor) -> str:
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return session.scalar(select(Tenant.default_country).where(Tenant.id == actor.tenant_id)) or "US"


def phone_country_for(db: Database, actor: Actor, phone_country: str | None) -> str:
    """The country national phone numbers of an import are read in: the chosen one, else the tenant's."""
    if not phone_country:
        return tenant_country(db, actor)
    code = phone_country.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(
            f"phone country '{shown(phone_country)}' is not a country code such as US, GB or BR"
        )
    return code


def _normaliser(
    db: Database, actor: Actor, table: RawTable, mapping: dict[str, str], phone_country: str | None
) -> LeadNormaliser:
    checked = validate_mapping(table.headers, mapping, db.settings.import_max_custom_fields)
    country = phone_country_for(db, actor, phone_country)
    return LeadNormaliser(country, checked, FieldLimits.from_settings(db.settings))


def _outcomes(normaliser: LeadNormaliser, table: RawTable, start: int, stop: int) -> list[RowOutcome]:
    """Rows start..stop normalised, with what reading the file changed in them first."""
    chunk = table.frame.iloc[start:stop]
    outcomes = normaliser.rows(chunk, table.row_numbers(start, stop))
    if table.row_messages:
        for outcome in outcomes:
            read = table.row_messages.get(outcome.row)
            if read:
                outcome.warnings[:0] = read
    return outcomes


def require_lead_rows(table: RawTable, file_name: str) -> RawTable:
    """The table, unless its header row has no lead below it (blank rows are no leads): such a
    file is refused before anything is offered or recorded."""
    if not table.frame.ne("").to_numpy().any():
        where = f"the sheet '{table.sheet}' of '{file_name}'" if table.sheet else f"'{file_name}'"
        raise ValidationError(
            f"{where} has a header row (row {table.header_row}) but no leads below it: nothing to "
            "import; add the leads under the header row and upload it again"
        )
    return table


def load_table(db: Database, actor: Actor, data: bytes, file_name: str, sheet: str | None = None) -> RawTable:
    """Read an upload with the configured limits (for the wizard's first step)."""
    actor.require(Permission.manage_leads)
    return read_table(data, file_name, limits=ReadLimits.from_settings(db.settings), sheet=sheet)


def suggest_for_table(
    db: Database, actor: Actor, table: RawTable, phone_country: str | None = None
) -> MappingSuggestion:
    """The mapping to offer for a read table, per column with its confidence and evidence: the
    tenant's saved mapping for these headers, else one from the headers and a sample of values
    (read once per file, never per row; phones in `phone_country`, the tenant's by default)."""
    actor.require(Permission.manage_leads)
    samples = sample_values(table.frame, table.headers)
    country = phone_country_for(db, actor, phone_country)
    return mapping_suggestion(db, actor, table.headers, samples, country)


def preview_rows(
    db: Database,
    actor: Actor,
    table: RawTable,
    mapping: dict[str, str],
    limit: int = PREVIEW_ROWS,
    phone_country: str | None = None,
) -> list[PreviewRow]:
    """The first rows as they would be imported, each with its validation result."""
    actor.require(Permission.manage_leads)
    normaliser = _normaliser(db, actor, table, mapping, phone_country)
    outcomes = _outcomes(normaliser, table, 0, limit * 2)[:limit]
    preview = []
    for outcome in outcomes:
        if outcome.problems:
            status, message = "rejected", "; ".join(outcome.problems)
        elif outcome.warnings:
            status, message = "warning", "; ".join(outcome.warnings)
        else:
            status, message = "ok", ""
        values = {k: v for k, v in outcome.as_dict().items() if k not in ("custom_fields", "alternates")}
        values["alternates"] = alternates_text(outcome.as_dict()["alternates"])
        values["tags"] = ", ".join(outcome.tags)
        preview.append(PreviewRow(outcome.row, status, message, values))
    return preview


def alternates_text(alternates: list[dict[str, str]] | None) -> str:
    """A lead's other phones and emails on one line: '+14155550100 (Home Phone), a@b.com (E-mail 2)'."""
    return ", ".join(f"{a['value']} ({a['label']})" for a in alternates or [])


def import_leads(
    db: Database,
    actor: Actor,
    *,
    file_name: str,
    data: bytes,
    mapping: dict[str, str] | None = None,
    on_duplicate: str | DuplicatePolicy = DuplicatePolicy.skip,
    tags: Sequence[str] = (),
    sheet: str | None = None,
    save_mapping: bool = True,
    progress: ProgressCallback | None = None,
    phone_country: str | None = None,
) -> ImportSummary:
    """Import a CSV or XLSX upload for the actor's tenant; all accepted rows or none are saved."""
    actor.require(Permission.manage_leads)
    policy = _policy(on_duplicate)
    table = load_table(db, actor, data, file_name, sheet)
    suggestion = suggest_for_table(db, actor, table, phone_country)
    # A mapping file corrects the columns it names; the others keep the saved or suggested target.
    corrections = mapping or {}
    summary = import_table(
        db,
        actor,
        table,
        file_name=file_name,
        sha256=hashlib.sha256(data).hexdigest(),
        mapping=suggestion.corrected(corrections),
        on_duplicate=policy,
        tags=tags,
        save_mapping=save_mapping,
        progress=progress,
        phone_country=phone_country,
    )
    left_out = [] if suggestion.saved else [c for c in suggestion.left_out if c.header not in corrections]
    notes = [
        {"row": table.header_row, "warning": message}
        for message in _left_out_messages(left_out, db.settings)
    ]
    return replace(summary, warnings=[*notes, *summary.warnings]) if notes else summary


def _named(headers: list[str]) -> str:
    named = ", ".join(f"'{shown(h)}'" for h in headers[:LEFT_OUT_NAMED])
    if len(headers) > LEFT_OUT_NAMED:
        named += f" and {len(headers) - LEFT_OUT_NAMED:,} more"
    return named


def _left_out_messages(columns: list[ColumnSuggestion], settings: Settings) -> list[str]:
    """What the import says about the columns the suggestion left out: sensitive ones, and the
    ones the custom field cap has no room for (columns that say the kind of their neighbour are
    read with it and need no word)."""
    sensitive = [c.header for c in columns if c.sensitive]
    capped = [c.header for c in columns if c.capped]
    reasons = [
        (sensitive, "sensitive data (payment cards, passwords, identity numbers) is kept only when "
         "you map it yourself: {named}"),
        (capped, f"a lead keeps at most {settings.import_max_custom_fields:,} custom fields: {{named}}; "
         "give a mapping to choose which columns to keep"),
    ]
    return [
        f"{plural(len(headers), 'column')} {plural_noun(len(headers), 'was', 'were')} not imported, "
        f"since {because.format(named=_named(headers))}"
        for headers, because in reasons
        if headers
    ]


def import_table(
    db: Database,
    actor: Actor,
    table: RawTable,
    *,
    file_name: str,
    sha256: str,
    mapping: dict[str, str],
    on_duplicate: str | DuplicatePolicy = DuplicatePolicy.skip,
    tags: Sequence[str] = (),
    save_mapping: bool = True,
    progress: ProgressCallback | None = None,
    phone_country: str | None = None,
) -> ImportSummary:
    """Import an already read table (the wizard reads the file once for the preview).

    `phone_country` is the country national phone numbers are read in (the tenant's by default).
    """
    actor.require(Permission.manage_leads)
    require_lead_rows(table, file_name)
    policy = _policy(on_duplicate)
    normaliser = _normaliser(db, actor, table, mapping, phone_country)
    checked_mapping = normaliser.mapping
    import_tags = tuple(normalise_tags(",".join(tags)))
    report = progress or (lambda _fraction, _text: None)
    with bound(tenant_id=actor.tenant_id):
        checked = _check_rows(table, normaliser, report)
        try:
            summary = _save(
                db,
                actor,
                table,
                checked,
                file_name=file_name,
                sha256=sha256,
                mapping=checked_mapping,
                policy=policy,
                import_tags=import_tags,
                save_mapping=save_mapping,
                report=report,
                max_custom_fields=db.settings.import_max_custom_fields,
                phone_country=normaliser.default_country,
            )
        except Exception as exc:
            _record_failure(db, actor, table, checked, file_name, sha256, checked_mapping, policy, exc)
            if isinstance(exc, IntegrityError):
                raise Conflict(
                    "the import clashed with leads saved at the same time (another import?); "
                    "nothing was imported, run it again"
                ) from exc
            raise
        log.info("leads imported", **summary.counts())
    report(1.0, f"Done: {summary.imported:,} imported, {summary.updated:,} updated")
    return summary


def _check_rows(table: RawTable, normaliser: LeadNormaliser, report: ProgressCallback) -> _Checked:
    checked = _Checked()
    # Phone or email -> the row that first had it: a later row with the same one is a duplicate.
    seen_phones: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    total = max(table.row_count, 1)
    for start in range(0, table.row_count, NORMALISE_CHUNK):
        outcomes = _outcomes(normaliser, table, start, start + NORMALISE_CHUNK)
        refused: list[RowOutcome] = []
        for outcome in outcomes:
            checked.rows += 1
            if outcome.problems:
                refused.append(outcome)
                continue
            values = outcome.values
            phone, email = values[PHONE_AT], values[EMAIL_AT]
            phone_row = seen_phones.get(phone) if phone else None
            email_row = seen_emails.get(email) if email else None
            if phone_row is not None or email_row is not None:
                shared = _shared_channel(values, phone_row, email_row)
                if shared is None:
                    checked.duplicates_in_file += 1
                    _note_warnings(checked, outcome.row, outcome.warnings)
                    continue
                values, note = shared
                outcome.warnings.append(note)
                phone, email = values[PHONE_AT], values[EMAIL_AT]
            _note_warnings(checked, outcome.row, outcome.warnings)
            if phone:
                seen_phones[phone] = outcome.row
            if email:
                seen_emails[email] = outcome.row
            checked.accepted.append((outcome.row, values, tuple(outcome.tags)))
        checked.rejects.extend(_rejects(refused, table))
        done = min(start + NORMALISE_CHUNK, table.row_count)
        # Checking is about two thirds of the work, saving the rest.
        report(0.65 * done / total, f"Checked {done:,} of {plural(table.row_count, 'row')}")
    return checked


def _note_warnings(checked: _Checked, row: int, warnings: list[str]) -> None:
    if warnings:
        checked.with_warnings += 1
        checked.warnings.extend({"row": row, "warning": w} for w in warnings)


def _shared_channel(
    values: tuple[Any, ...], phone_row: int | None, email_row: int | None
) -> tuple[tuple[Any, ...], str] | None:
    """A row that shares only its phone (or only its email) with an earlier row of the file and
    has a channel of its own is another person (a switchboard number, a shared inbox): kept
    without the shared one. None when the row is the earlier lead again."""
    phone, email = values[PHONE_AT], values[EMAIL_AT]
    if phone_row is not None and email_row is None and email:
        note = f"phone {phone} is already the phone of row {phone_row}; left out, the lead keeps its email"
        return (*values[:PHONE_AT], None, *values[PHONE_AT + 1 :]), note
    if email_row is not None and phone_row is None and phone:
        note = f"email {email} is already the email of row {email_row}; left out, the lead keeps its phone"
        return (*values[:EMAIL_AT], None, *values[EMAIL_AT + 1 :]), note
    return None


def _rejects(outcomes: list[RowOutcome], table: RawTable) -> list[dict[str, Any]]:
    """The refused rows with their reasons and non-empty cells (one frame look-up for all)."""
    if not outcomes:
        return []
    cells = table.frame.iloc[[o.row - table.first_row for o in outcomes]][table.headers]
    return [
        {
            "row": outcome.row,
            "reason": "; ".join(outcome.problems),
            "values": {h: v for h, v in zip(table.headers, row, strict=True) if v},
        }
        for outcome, row in zip(outcomes, cells.itertuples(index=False, name=None), strict=True)
    ]


def _save(
    db: Database,
    actor: Actor,
    table: RawTable,
    checked: _Checked,
    *,
    file_name: str,
    sha256: str,
    mapping: dict[str, str],
    policy: DuplicatePolicy,
    import_tags: tuple[str, ...],
    save_mapping: bool,
    report: ProgressCallback,
    max_custom_fields: int,
    phone_country: str,
) -> ImportSummary:
    now = datetime.now(UTC)
    imported = updated = duplicates = 0
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        if not db.is_sqlite:
            # psycopg prepares a statement after a few runs and PostgreSQL may then keep a generic
            # plan chosen while the table was small (a sequential scan), which turns the
            # key look-ups quadratic on a large import: plan each look-up afresh.
            session.execute(trusted_sql("SET LOCAL plan_cache_mode = force_custom_plan"))
        lead_import = LeadImport(
            tenant_id=actor.tenant_id,
            file_name=file_name[:255],
            sha256=sha256,
            sheet=table.sheet,
            mapping=mapping,
            on_duplicate=policy.value,
            status="running",
            created_by=actor.user_id,
        )
        session.add(lead_import)
        session.flush()
        known = KnownLeads.load(session, checked.accepted)
        writer = LeadWriter(session, actor.tenant_id, lead_import.id, now)
        total = max(len(checked.accepted), 1)
        saved = 0
        for chunk in chunks(checked.accepted, SAVE_CHUNK):
            counts = save_chunk(writer, known, chunk, policy, import_tags, max_custom_fields)
            imported += counts[0]
            updated += counts[1]
            duplicates += counts[2]
            saved += len(chunk)
            report(0.65 + 0.35 * saved / total, f"Saved {saved:,} of {plural(len(checked.accepted), 'lead')}")
        duplicates += checked.duplicates_in_file
        lead_import.status = "completed"
        lead_import.rows_total = checked.rows
        lead_import.rows_imported = imported
        lead_import.rows_updated = updated
        lead_import.rows_duplicate = duplicates
        lead_import.rows_rejected = len(checked.rejects)
        lead_import.rejects = checked.rejects
        lead_import.warnings = checked.warnings
        if save_mapping:
            save_mapping_in(session, actor.tenant_id, table.headers, mapping)
        record_audit(
            session,
            tenant_id=actor.tenant_id,
            user_id=actor.user_id,
            action="leads.import",
            entity="lead_import",
            entity_id=lead_import.id,
            details={
                "file_name": file_name,
                "rows": checked.rows,
                "imported": imported,
                "updated": updated,
                "duplicates": duplicates,
                "rejected": len(checked.rejects),
                "with_warnings": checked.with_warnings,
                "on_duplicate": policy.value,
                "phone_country": phone_country,
            },
        )
        import_id = lead_import.id
    return ImportSummary(
        import_id=import_id,
        file_name=file_name,
        rows=checked.rows,
        imported=imported,
        updated=updated,
        duplicates=duplicates,
        rejected=len(checked.rejects),
        rejects=checked.rejects,
        warnings=checked.warnings,
        with_warnings=checked.with_warnings,
    )


def _record_failure(
    db: Database,
    actor: Actor,
    table: RawTable,
    checked: _Checked,
    file_name: str,
    sha256: str,
    mapping: dict[str, str],
    policy: DuplicatePolicy,
    exc: Exception,
) -> None:
    """Keep a trace of a failed import; the import itself was rolled back."""
    log.error("lead import failed", error=str(exc), file_name=file_name)
    try:
        with db.session(tenant_id=actor.tenant_id) as session, session.begin():
            session.add(
                LeadImport(
                    tenant_id=actor.tenant_id,
                    file_name=file_name[:255],
                    sha256=sha256,
                    sheet=table.sheet,
                    mapping=mapping,
                    on_duplicate=policy.value,
                    status="failed",
                    rows_total=checked.rows,
                    error=str(exc)[:2000],
                    created_by=actor.user_id,
                )
            )
    except SQLAlchemyError as record_exc:  # the original error matters more than its record
        log.error("could not record the failed import", error=str(record_exc))
