"""Reading headers: lead fields in seven languages, the shapes CRMs write, kinds of phone and
email, sensitive columns, and the phone and email columns of a mapping, best first."""

from __future__ import annotations

import pytest

from core.leads.headers import contact_columns, lead_field_columns, read_header
from core.leads.mapping import suggest_mapping
from core.leads.vocabulary import LANGUAGES, SALUTATION, SYNONYMS

# How a person writes each field in each language: accents, case and punctuation as typed.
WRITTEN: dict[str, dict[str, str]] = {
    "first_name": {
        "en": "First Name", "de": "Vorname", "fr": "Prénom", "es": "Primer nombre",
        "it": "Nome proprio", "pt": "Primeiro nome", "nl": "Voornaam",
    },
    "last_name": {
        "en": "Surname", "de": "Nachname", "fr": "Nom de famille", "es": "Apellidos",
        "it": "Cognome", "pt": "Sobrenome", "nl": "Achternaam",
    },
    "full_name": {
        "en": "Full name", "de": "Ansprechpartner", "fr": "Nom complet", "es": "Nombre completo",
        "it": "Nome e cognome", "pt": "Nome", "nl": "Volledige naam",
    },
    "phone": {
        "en": "Phone Number", "de": "Telefonnummer", "fr": "Numéro de téléphone", "es": "Teléfono",
        "it": "Numero di telefono", "pt": "Telefone", "nl": "Telefoonnummer",
    },
    "email": {
        "en": "E-mail Address", "de": "E-Mail-Adresse", "fr": "Courriel", "es": "Correo electrónico",
        "it": "Posta elettronica", "pt": "Endereço de e-mail", "nl": "E-mailadres",
    },
    "company": {
        "en": "Company Name", "de": "Firma", "fr": "Société", "es": "Empresa", "it": "Azienda",
        "pt": "Organização", "nl": "Bedrijfsnaam",
    },
    "title": {
        "en": "Job Title", "de": "Berufsbezeichnung", "fr": "Fonction", "es": "Cargo", "it": "Ruolo",
        "pt": "Função", "nl": "Functie",
    },
    "website": {
        "en": "Website", "de": "Webseite", "fr": "Site web", "es": "Sitio web", "it": "Sito web",
        "pt": "Site", "nl": "Webadres",
    },
    "industry": {
        "en": "Industry", "de": "Branche", "fr": "Secteur d'activité", "es": "Industria",
        "it": "Settore", "pt": "Setor", "nl": "Sector",
    },
    "city": {
        "en": "City", "de": "Stadt", "fr": "Ville", "es": "Ciudad", "it": "Città", "pt": "Cidade",
        "nl": "Woonplaats",
    },
    "country": {
        "en": "Country", "de": "Land", "fr": "Pays", "es": "País", "it": "Nazione", "pt": "País",
        "nl": "Landcode",
    },
    "time_zone": {
        "en": "Time zone", "de": "Zeitzone", "fr": "Fuseau horaire", "es": "Zona horaria",
        "it": "Fuso orario", "pt": "Fuso horário", "nl": "Tijdzone",
    },
    "notes": {
        "en": "Notes", "de": "Bemerkungen", "fr": "Commentaires", "es": "Observaciones",
        "it": "Note", "pt": "Observações", "nl": "Opmerkingen",
    },
    "tags": {
        "en": "Tags", "de": "Schlagwörter", "fr": "Étiquettes", "es": "Etiquetas", "it": "Etichette",
        "pt": "Marcadores", "nl": "Trefwoorden",
    },
    SALUTATION: {
        "en": "Salutation", "de": "Anrede", "fr": "Civilité", "es": "Tratamiento", "it": "Appellativo",
        "pt": "Saudação", "nl": "Aanhef",
    },
}


def test_every_field_has_synonyms_in_every_language() -> None:
    assert set(WRITTEN) == set(SYNONYMS)
    for field, languages in SYNONYMS.items():
        assert set(languages) == set(LANGUAGES), field
        assert set(WRITTEN[field]) == set(LANGUAGES), field


@pytest.mark.parametrize(
    ("field", "language", "header"),
    [(field, language, header) for field, written in WRITTEN.items() for language, header in written.items()],
)
def test_a_header_names_its_field_in_each_language(field: str, language: str, header: str) -> None:
    assert read_header(header).field == field
    # Case, accents and punctuation do not matter.
    assert read_header(f" {header.upper()}* ").field == field


@pytest.mark.parametrize(
    ("header", "target"),
    [
        # Google Contacts
        ("E-mail 1 - Value", "email"),
        ("Phone 3 - Value", "phone"),
        ("Organization 1 - Name", "company"),
        ("Organization 1 - Title", "title"),
        ("Address 1 - City", "city"),
        ("Website 1 - Value", "website"),
        ("Name Prefix", SALUTATION),
        # Atomic CRM
        ("email_work", "email:work"),
        ("email_home", "email:home"),
        ("phone_other", "phone:other"),
        ("linkedin_url", "custom"),
        ("first_seen", "custom"),
        # Pipedrive, Outlook, Thunderbird, HubSpot, ZoomInfo, Salesforce
        ("Person - Email - Work", "email:work"),
        ("Person - Name", "full_name"),
        ("Mobile Phone", "phone:mobile"),
        ("Mobile Phone Number", "phone:mobile"),
        ("Work Direct Phone", "phone:work"),
        ("Business Phone 2", "phone:work"),
        ("Home Phone", "phone:home"),
        ("Primary Email", "email"),
        ("Secondary Email", "email:other"),
        ("E-mail 2 Address", "email"),
        ("Company / Account", "company"),
        ("Contact Owner", "custom"),
        ("Home Fax", "custom"),
        ("Pager Number", "custom"),
        # Zoho, Fake Name Generator, PrestaShop
        ("Full_Name", "full_name"),
        ("Lead_Source", "custom"),
        ("GivenName", "first_name"),
        ("TelephoneNumber", "phone"),
        ("Customer e-mail*", "email"),
        # Kinds in other languages, inside one word or as a word of their own
        ("Handynummer", "phone:mobile"),
        ("Telefon geschäftlich", "phone:work"),
        ("Téléphone portable", "phone:mobile"),
        ("Teléfono móvil", "phone:mobile"),
        ("Cellulare", "phone:mobile"),
        ("Telefone residencial", "phone:home"),
        ("Mobiel nummer", "phone:mobile"),
        ("E-Mail privat", "email:home"),
    ],
)
def test_crm_shapes_name_fields_and_kinds(header: str, target: str) -> None:
    assert read_header(header).target == target


def test_type_columns_are_linked_to_their_value_column() -> None:
    headers = ["Phone 1 - Type", "Phone 1 - Value", "E-mail 1 - Type", "E-mail 1 - Value"]
    mapping = suggest_mapping(headers)
    assert mapping == {
        "Phone 1 - Type": "ignore",
        "Phone 1 - Value": "phone",
        "E-mail 1 - Type": "ignore",
        "E-mail 1 - Value": "email",
    }
    columns = contact_columns(mapping)
    assert [(c.header, c.type_header) for c in columns["phone"]] == [("Phone 1 - Value", "Phone 1 - Type")]
    assert [(c.header, c.type_header) for c in columns["email"]] == [("E-mail 1 - Value", "E-mail 1 - Type")]


def test_contact_columns_are_ranked_mobile_first_for_phones_and_work_first_for_emails() -> None:
    mapping = {
        "Home Phone": "phone:home",
        "Phone": "phone",
        "Business Phone": "phone:work",
        "Mobile": "phone:mobile",
        "Private Email": "email:home",
        "Email": "email",
        "Work Email": "email:work",
        "Colour": "custom",
    }
    columns = contact_columns(mapping)
    assert [(c.header, c.kind, c.rank) for c in columns["phone"]] == [
        ("Mobile", "mobile", 0),
        ("Phone", "", 1),
        ("Business Phone", "work", 2),
        ("Home Phone", "home", 3),
    ]
    assert [c.header for c in columns["email"]] == ["Work Email", "Email", "Private Email"]
    assert lead_field_columns(mapping) == {"phone": "Mobile", "email": "Work Email"}


@pytest.mark.parametrize(
    ("header", "sensitive"),
    [
        ("CCNumber", "card"),
        ("Credit Card Number", "card"),
        ("Kreditkartennummer", "card"),
        ("Numéro de carte bancaire", "card"),
        ("Tarjeta de crédito", "card"),
        ("Carta di credito", "card"),
        ("Cartão de crédito", "card"),
        ("Creditcardnummer", "card"),
        ("CVV2", "cvv"),
        ("Kartenprüfnummer", "cvv"),
        ("Cryptogramme", "cvv"),
        ("Código de seguridad", "cvv"),
        ("Codice di sicurezza", "cvv"),
        ("Código de segurança", "cvv"),
        ("Beveiligingscode", "cvv"),
        ("Password", "password"),
        ("Passwort", "password"),
        ("Mot de passe", "password"),
        ("Contraseña", "password"),
        ("Parola chiave", "password"),
        ("Senha", "password"),
        ("Wachtwoord", "password"),
        ("NationalID", "national_id"),
        ("SSN", "national_id"),
        ("Sozialversicherungsnummer", "national_id"),
        ("Numéro de sécurité sociale", "national_id"),
        ("DNI", "national_id"),
        ("Codice fiscale", "national_id"),
        ("CPF", "national_id"),
        ("Burgerservicenummer", "national_id"),
        ("MothersMaiden", "mothers_maiden_name"),
        ("Mother's maiden name", "mothers_maiden_name"),
        ("Mädchenname der Mutter", "mothers_maiden_name"),
        ("Nom de jeune fille de la mère", "mothers_maiden_name"),
        ("Apellido de soltera de la madre", "mothers_maiden_name"),
        ("Cognome da nubile della madre", "mothers_maiden_name"),
        ("Nome de solteira da mãe", "mothers_maiden_name"),
        ("Meisjesnaam moeder", "mothers_maiden_name"),
    ],
)
def test_sensitive_headers_are_recognised_in_each_language(header: str, sensitive: str) -> None:
    assert read_header(header).sensitive == sensitive
    assert suggest_mapping(["Email", header])[header] == "ignore"
