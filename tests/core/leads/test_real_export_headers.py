"""The suggestion for the header row of every real export in ../shared/real_exports (Google,
Thunderbird, Outlook, HubSpot, Zoho, Atomic CRM, PrestaShop, Bitrix24, Chatwoot, Keila, Fake Name
Generator, Brazilian and Portuguese lists): every key column goes where a careful person puts it,
sensitive columns stay out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config import ROOT
from core.leads.detect import sample_values
from core.leads.headers import channel_columns
from core.leads.mapping import CUSTOM, IGNORE, SALUTATION, suggest_columns
from core.leads.readers import read_table

# LEADFLOW_REAL_EXPORTS points elsewhere when the checkout is a worktree beside no shared folder.
REAL_EXPORTS = Path(os.environ.get("LEADFLOW_REAL_EXPORTS", Path(ROOT).parent / "shared" / "real_exports"))

# file -> the columns that matter and where the suggestion must put them.
EXPECTED: dict[str, dict[str, str]] = {
    "google_contacts_utf16.csv": {
        "Name": "full_name", "Given Name": "first_name", "Family Name": "last_name",
        "Name Prefix": SALUTATION, "Name Suffix": CUSTOM, "Notes": "notes",
        "E-mail 1 - Type": IGNORE, "E-mail 1 - Value": "email", "E-mail 4 - Value": "email",
        "Phone 1 - Type": IGNORE, "Phone 1 - Value": "phone", "Phone 7 - Value": "phone",
        "Address 1 - City": "city", "Address 1 - Country": "country",
        "Organization 1 - Name": "company", "Organization 1 - Title": "title",
        "Website 1 - Value": "website", "Occupation": CUSTOM,
    },
    "thunderbird_export.csv": {
        "First Name": "first_name", "Last Name": "last_name", "Display Name": "full_name",
        "Primary Email": "email", "Secondary Email": "email:other", "Work Phone": "phone:work",
        "Home Phone": "phone:home", "Mobile Number": "phone:mobile", "Fax Number": CUSTOM,
        "Pager Number": CUSTOM, "Job Title": "title", "Organization": "company", "Web Page 1": "website",
        "Notes": "notes",
    },
    "outlook_style_contacts.csv": {
        "Name": "full_name", "E-mail Address": "email", "E-mail 2 Address": "email",
        "E-mail 3 Address": "email", "Mobile Phone": "phone:mobile", "Pager": CUSTOM,
        "Home Phone": "phone:home", "Home Phone 2": "phone:home", "Home Fax": CUSTOM,
        "Business Phone": "phone:work", "Business Fax": CUSTOM, "Other Phone": "phone:other",
        "Company": "company", "Job Title": "title", "Notes": "notes",
    },
    "keila_excel_semicolon.csv": {"Email": "email", "First name": "first_name", "Last name": "last_name"},
    "chatwoot_contacts.csv": {
        "first_name": "first_name", "last_name": "last_name", "email": "email", "phone_number": "phone",
        "ip_address": CUSTOM, "identifier": CUSTOM,
    },
    "atomic_crm_contacts.csv": {
        "first_name": "first_name", "last_name": "last_name", "title": "title", "tags": "tags",
        "company_name": "company", "company": CUSTOM, "linkedin_url": CUSTOM, "email_work": "email:work",
        "email_home": "email:home", "email_other": "email:other", "phone_work": "phone:work",
        "phone_home": "phone:home", "phone_other": "phone:other", "first_seen": CUSTOM,
    },
    "atomic_crm_export.csv": {
        "first_name": "first_name", "last_name": "last_name", "title": "title", "company": "company",
        "linkedin_url": CUSTOM, "email_work": "email:work", "phone_home": "phone:home",
    },
    "fakenamegenerator_leads.csv": {
        "Title": SALUTATION, "GivenName": "first_name", "Surname": "last_name", "City": "city",
        "Country": "country", "CountryFull": CUSTOM, "State": CUSTOM, "EmailAddress": "email",
        "TelephoneNumber": "phone", "Occupation": "title", "Company": "company", "Domain": "website",
        "Password": IGNORE, "MothersMaiden": IGNORE, "CCType": CUSTOM, "CCNumber": IGNORE,
        "CVV2": IGNORE, "CCExpires": IGNORE, "NationalID": IGNORE, "Number": CUSTOM,
    },
    "prestashop_addresses.csv": {
        "Customer e-mail*": "email", "Company": "company", "Lastname*": "last_name",
        "Firstname*": "first_name", "City*": "city", "Country*": "country", "Phone": "phone",
        "Mobile Phone": "phone:mobile", "DNI": IGNORE, "VAT number": CUSTOM,
    },
    "hubspot_contacts.csv": {
        "First Name": "first_name", "Last Name": "last_name", "Email": "email", "Phone Number": "phone",
        "Mobile Phone Number": "phone:mobile", "Job Title": "title", "Contact Owner": CUSTOM,
        "Website URL": "website", "City": "city", "Country": "country", "State/Region": CUSTOM,
        "Associated Company Domain": CUSTOM,
    },
    "zoho_leads.csv": {
        "Full_Name": "full_name", "Email": "email", "Company": "company", "Phone": "phone",
        "Lead_Source": CUSTOM, "Industry": "industry", "City": "city", "Country": "country",
        "Description": "notes",
    },
    "br_contatos_mixed.csv": {"Nome": "full_name", "Telefone": "phone"},
    "br_contatos_55.csv": {"nome": "full_name", "telefone": "phone"},
    "bitrix24_contacts.xlsx": {
        "name": "first_name", "last_name": "last_name", "phone": "phone", "email": "email",
        "comments": "notes", "address": CUSTOM,
    },
    "pt_autodialer_contacts.xlsx": {"Nome": "full_name", "Telefone": "phone"},
}
# The best phone and email column of each file, as the rows half reads them.
BEST: dict[str, tuple[str | None, str | None]] = {
    "thunderbird_export.csv": ("Mobile Number", "Primary Email"),
    "outlook_style_contacts.csv": ("Mobile Phone", "E-mail Address"),
    "atomic_crm_contacts.csv": ("phone_work", "email_work"),
    "hubspot_contacts.csv": ("Mobile Phone Number", "Email"),
    "google_contacts_utf16.csv": ("Phone 1 - Value", "E-mail 1 - Value"),
    "keila_excel_semicolon.csv": (None, "Email"),
}


def _suggested(name: str) -> dict[str, str]:
    path = REAL_EXPORTS / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the real exports live in ../shared/real_exports")
    table = read_table(path.read_bytes(), name)
    columns = suggest_columns(table.headers, sample_values(table.frame, table.headers))
    return {c.header: c.target for c in columns}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_suggestion_for_each_real_export(name: str) -> None:
    suggested = _suggested(name)
    assert {header: suggested.get(header) for header in EXPECTED[name]} == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(BEST))
def test_the_best_phone_and_email_column_of_each_real_export(name: str) -> None:
    mapping = _suggested(name)
    phones, emails = channel_columns(mapping, "phone"), channel_columns(mapping, "email")
    assert (phones[0] if phones else None, emails[0] if emails else None) == BEST[name]


def test_every_real_export_is_covered() -> None:
    if not REAL_EXPORTS.exists():
        pytest.skip(f"{REAL_EXPORTS} is absent: the real exports live in ../shared/real_exports")
    files = {p.name for p in REAL_EXPORTS.iterdir() if p.suffix in (".csv", ".xlsx")}
    assert files == set(EXPECTED)
