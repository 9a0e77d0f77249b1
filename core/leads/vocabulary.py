"""The words a lead import reads headers and cells with: lead fields, header synonyms in seven
languages, phone and email kinds, honorifics and the names of sensitive columns.

Pure data, one place to read and extend. Every word is written as `header_key` folds a header:
accents dropped, lower case, letters and digits only ('Téléphone' -> 'telephone', 'E-Mail-Adresse'
-> 'emailadresse'). core/leads/mapping.py matches headers with these tables, core/leads/detect.py
uses the honorifics and the state codes.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def words(text: str) -> list[str]:
    """A header's words, folded: 'E-mail 2 - Value' -> ['e', 'mail', '2', 'value'], 'CCNumber' ->
    ['cc', 'number'], 'Téléphone' -> ['telephone'] (accents dropped, camel case split)."""
    decomposed = unicodedata.normalize("NFKD", str(text).replace("ß", "ss").replace("ẞ", "SS"))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return [w.lower() for w in _WORD.findall(plain)]


def fold(text: str) -> str:
    """The form every word of these tables is written in: 'Téléphone' -> 'telephone', 'Mr.' -> 'mr'."""
    return "".join(words(text))

CUSTOM = "custom"  # kept in the lead's custom fields under the header's name
IGNORE = "ignore"  # not imported at all
SALUTATION = "salutation"  # Mr./Ms./Herr/Mme: kept as the custom field `salutation`

# The lead fields a column can fill, with the label the mapping editor shows.
LEAD_FIELDS: dict[str, str] = {
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name (split into first and last)",
    "phone": "Phone",
    "email": "Email",
    "company": "Company",
    "title": "Job title",
    "website": "Website",
    "industry": "Industry",
    "city": "City",
    "country": "Country",
    "time_zone": "Time zone",
    "notes": "Notes",
    "tags": "Tags (comma-separated)",
}

# Phone and email may come from several columns: each column's kind says which is best for its
# channel (a mobile first for SMS, a work address first for email), the others become the lead's
# alternates. A target "phone:mobile" names field and kind; "phone" alone names no kind.
CHANNEL_FIELDS = ("phone", "email")
CHANNEL_KINDS: dict[str, tuple[str, ...]] = {
    "phone": ("mobile", "work", "home", "other"),
    "email": ("work", "home", "other"),
}
KIND_SEPARATOR = ":"
CHANNEL_TARGETS: dict[str, str] = {
    f"{name}{KIND_SEPARATOR}{kind}": f"{LEAD_FIELDS[name]} ({kind})"
    for name, kinds in CHANNEL_KINDS.items()
    for kind in kinds
}
# Best first for each channel; "" is a column that names no kind ('Phone', 'Primary Email').
KIND_RANK: dict[str, tuple[str, ...]] = {
    "phone": ("mobile", "", "work", "other", "home"),
    "email": ("work", "", "other", "home"),
}

LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
}

# Header synonyms per field and language. A word may stand in several languages ('telefono');
# a field's first entry per language is the word tests write with accents and spaces.
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "first_name": {
        "en": ("firstname", "givenname", "forename", "fname", "first", "christianname"),
        "de": ("vorname", "rufname"),
        "fr": ("prenom", "prenoms"),
        "es": ("primernombre", "nombrepila"),
        "it": ("nomeproprio", "primonome"),
        "pt": ("primeironome", "prenome"),
        "nl": ("voornaam", "roepnaam", "voornamen"),
    },
    "last_name": {
        "en": ("lastname", "surname", "familyname", "lname", "last"),
        "de": ("nachname", "familienname", "zuname"),
        "fr": ("nomdefamille", "nomfamille"),
        "es": ("apellido", "apellidos", "primerapellido"),
        "it": ("cognome",),
        "pt": ("sobrenome", "apelido", "ultimonome"),
        "nl": ("achternaam", "familienaam"),
    },
    # A name column beside a first-name column holds last names, beside a last-name column first
    # names ('Vorname' + 'Name', 'Nombre' + 'Apellidos'): mapping.py resolves that.
    "full_name": {
        "en": ("name", "fullname", "contactname", "contact", "leadname", "person", "displayname"),
        "de": ("name", "vollstandigername", "kontakt", "kontaktperson", "ansprechpartner"),
        "fr": ("nom", "nomcomplet", "contact"),
        "es": ("nombre", "nombrecompleto", "contacto"),
        "it": ("nome", "nomecompleto", "nomeecognome", "nominativo", "contatto"),
        "pt": ("nome", "nomecompleto", "contato", "contacto"),
        "nl": ("naam", "volledigenaam", "contactpersoon"),
    },
    "phone": {
        "en": (
            "phone", "phonenumber", "phoneno", "mobile", "mobilephone", "mobilenumber", "mobileno",
            "cell", "cellphone", "cellular", "cellnumber", "tel", "telephone", "telephonenumber",
            "telno", "contactnumber", "msisdn", "directdial", "directphone", "workphone",
            "businessphone", "homephone", "otherphone", "whatsapp",
        ),
        "de": (
            "telefon", "telefonnummer", "rufnummer", "handy", "handynummer", "mobil",
            "mobilnummer", "mobiltelefon", "mobilfunknummer", "festnetz", "telefonnr",
        ),
        "fr": (
            "telephone", "numerodetelephone", "portable", "telephoneportable",
            "numerodeportable", "tel", "mobile", "fixe",
        ),
        "es": (
            "telefono", "numerodetelefono", "movil", "telefonomovil", "celular",
            "telefonocelular", "numerodecelular",
        ),
        "it": ("telefono", "numeroditelefono", "cellulare", "numerodicellulare", "recapitotelefonico"),
        "pt": ("telefone", "numerodetelefone", "celular", "telemovel", "telefonecelular"),
        "nl": ("telefoon", "telefoonnummer", "mobiel", "mobielnummer", "mobieletelefoon", "gsm"),
    },
    "email": {
        "en": (
            "email", "emailaddress", "mail", "emailid", "workemail", "businessemail",
            "contactemail", "emailaddr", "primaryemail", "secondaryemail", "emails",
        ),
        "de": ("email", "emailadresse", "mailadresse", "mail"),
        "fr": ("courriel", "adresseemail", "adressemail", "adressecourriel", "adresseelectronique"),
        "es": ("correo", "correoelectronico", "direcciondecorreo", "direcciondecorreoelectronico"),
        "it": ("email", "postaelettronica", "indirizzoemail", "indirizzodipostaelettronica"),
        "pt": ("email", "correioeletronico", "enderecodeemail", "enderecoemail"),
        "nl": ("email", "emailadres", "mailadres"),
    },
    "company": {
        "en": (
            "company", "companyname", "organisation", "organization", "organisationname",
            "organizationname", "org", "account", "accountname", "employer", "business", "firm",
        ),
        "de": ("firma", "unternehmen", "firmenname", "organisation", "arbeitgeber"),
        "fr": ("entreprise", "societe", "raisonsociale", "employeur", "nomdelentreprise"),
        "es": ("empresa", "compania", "organizacion", "razonsocial", "nombredelaempresa"),
        "it": ("azienda", "societa", "ditta", "ragionesociale", "impresa"),
        "pt": ("empresa", "companhia", "organizacao", "nomedaempresa"),
        "nl": ("bedrijf", "bedrijfsnaam", "organisatie", "onderneming", "firma"),
    },
    # A title column whose values are honorifics is a salutation (mapping.py checks the content).
    "title": {
        "en": ("title", "jobtitle", "role", "position", "designation", "jobrole", "job", "occupation"),
        "de": ("position", "berufsbezeichnung", "jobtitel", "funktion", "beruf", "titel", "stellung"),
        "fr": ("poste", "fonction", "titre", "intituledeposte", "profession", "metier"),
        "es": ("cargo", "puesto", "titulo", "profesion", "ocupacion"),
        "it": ("ruolo", "posizione", "mansione", "qualifica", "professione", "titolo"),
        "pt": ("cargo", "funcao", "profissao", "ocupacao", "titulo"),
        "nl": ("functie", "functietitel", "beroep", "titel"),
    },
    "website": {
        "en": (
            "website", "web", "domain", "url", "site", "homepage", "companywebsite", "websiteurl",
            "companydomain", "webpage", "webaddress",
        ),
        "de": ("webseite", "internetseite", "homepage", "webadresse", "internetadresse"),
        "fr": ("siteweb", "siteinternet", "site"),
        "es": ("sitioweb", "paginaweb", "web"),
        "it": ("sitoweb", "sitointernet"),
        "pt": ("site", "sitio", "sitioweb", "paginaweb"),
        "nl": ("website", "webpagina", "webadres", "internetadres"),
    },
    "industry": {
        "en": ("industry", "sector", "vertical", "industrytype"),
        "de": ("branche", "industrie", "sektor"),
        "fr": ("secteur", "secteurdactivite", "industrie"),
        "es": ("sector", "industria"),
        "it": ("settore", "industria"),
        "pt": ("setor", "sector", "industria", "ramo"),
        "nl": ("branche", "sector", "industrie"),
    },
    "city": {
        "en": ("city", "town", "locality"),
        "de": ("stadt", "ort", "wohnort"),
        "fr": ("ville", "localite", "commune"),
        "es": ("ciudad", "localidad", "municipio", "poblacion"),
        "it": ("citta", "comune", "localita"),
        "pt": ("cidade", "localidade", "municipio"),
        "nl": ("stad", "plaats", "woonplaats", "gemeente"),
    },
    "country": {
        "en": ("country", "countrycode", "nation", "countryregion"),
        "de": ("land", "landercode", "landeskennung"),
        "fr": ("pays", "codepays"),
        "es": ("pais", "codigodepais"),
        "it": ("paese", "nazione"),
        "pt": ("pais", "nacao"),
        "nl": ("land", "landcode"),
    },
    "time_zone": {
        "en": ("timezone", "tz", "zone"),
        "de": ("zeitzone",),
        "fr": ("fuseauhoraire", "fuseau"),
        "es": ("zonahoraria", "husohorario"),
        "it": ("fusoorario",),
        "pt": ("fusohorario",),
        "nl": ("tijdzone",),
    },
    "notes": {
        "en": ("notes", "note", "comments", "comment", "remarks", "description"),
        "de": ("notizen", "notiz", "bemerkung", "bemerkungen", "kommentar", "anmerkungen", "beschreibung"),
        "fr": ("remarques", "commentaire", "commentaires", "notes"),
        "es": ("notas", "nota", "comentarios", "observaciones", "descripcion"),
        "it": ("note", "commenti", "osservazioni", "descrizione"),
        "pt": ("observacoes", "obs", "notas", "comentarios", "descricao"),
        "nl": ("notities", "opmerkingen", "notitie", "opmerking", "omschrijving", "beschrijving"),
    },
    "tags": {
        "en": ("tags", "tag", "labels", "label"),
        "de": ("schlagworter", "schlagwort", "stichworter", "etiketten"),
        "fr": ("etiquettes", "etiquette", "motscles"),
        "es": ("etiquetas", "etiqueta"),
        "it": ("etichette", "etichetta"),
        "pt": ("marcadores", "etiquetas"),
        "nl": ("trefwoorden", "labels"),
    },
    SALUTATION: {
        "en": ("salutation", "honorific", "prefix", "nameprefix", "courtesytitle"),
        "de": ("anrede", "briefanrede"),
        "fr": ("civilite",),
        "es": ("tratamiento", "saludo"),
        "it": ("appellativo", "titolodicortesia"),
        "pt": ("tratamento", "saudacao", "pronomedetratamento"),
        "nl": ("aanhef", "aanspreektitel", "aanspreekvorm"),
    },
}

# Words in a header that say which kind of phone or email it holds ('Mobile Phone',
# 'email_work', 'Telefon geschäftlich'); also found inside one-word headers ('Handynummer').
KIND_WORDS: dict[str, tuple[str, ...]] = {
    "mobile": (
        "mobile", "mobil", "cell", "handy", "portable", "movil", "celular", "cellulare",
        "telemovel", "mobiel", "gsm", "whatsapp", "sms",
    ),
    "work": (
        "work", "business", "office", "direct", "company", "corporate", "geschaftlich",
        "dienstlich", "buro", "arbeit", "travail", "professionnel", "bureau", "trabajo",
        "oficina", "lavoro", "ufficio", "trabalho", "comercial", "werk", "zakelijk", "kantoor",
        "empresa", "geschaft", "dienst",
    ),
    "home": (
        "home", "private", "personal", "privat", "domicile", "personnel", "casa", "particular",
        "domicilio", "residencia", "residencial", "thuis", "prive", "maison", "persoonlijk",
    ),
    "other": (
        "other", "secondary", "alternate", "alternative", "autre", "otro", "altro", "outro", "ander",
    ),
}
# Words that make a number column something no one can text (kept as a custom field).
NOT_A_PHONE = ("fax", "pager", "telefax", "telex")
# A word that says the column holds the kind of its neighbour ('Phone 1 - Type' beside
# 'Phone 1 - Value'), and a word that says it holds the value itself.
TYPE_WORDS = ("type", "typ", "tipo", "label", "art", "soort")
VALUE_WORDS = ("value", "wert", "valeur", "valor", "valore", "waarde")
# Prefixes CRMs put before a field's name ('Person - Email - Work', 'Organization 1 - Name',
# 'Address 1 - City', 'Customer e-mail'); dropped when the rest names a field.
ENTITY_WORDS = (
    "person", "contact", "lead", "customer", "client", "organization", "organisation",
    "company", "account", "address", "primary", "main",
)

# Honorifics, as a salutation column holds them (folded, dots dropped).
HONORIFICS = frozenset(
    {
        "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "dame", "lord", "lady",
        "rev", "herr", "frau", "fraulein", "drmed", "profdr", "m", "mme", "mlle", "monsieur",
        "madame", "mademoiselle", "me", "sr", "sra", "srta", "senor", "senora", "senorita", "don",
        "dona", "sig", "sigra", "signa", "signor", "signore", "signora", "signorina", "dott",
        "dottssa", "ing", "avv", "dom", "exmo", "exma", "dhr", "mevr", "mw", "heer", "mevrouw",
        "meneer", "juffrouw",
    }
)

# Sensitive columns, by what they hold: left out of a suggestion unless a person maps them.
SENSITIVE_KINDS: dict[str, str] = {
    "card": "payment card numbers",
    "cvv": "card security codes (CVV)",
    "password": "passwords",
    "national_id": "national identity or social security numbers",
    "mothers_maiden_name": "mothers' maiden names",
}
SENSITIVE_HEADERS: dict[str, dict[str, tuple[str, ...]]] = {
    "card": {
        "en": (
            "creditcard", "creditcardnumber", "cardnumber", "ccnumber", "ccnum", "ccno", "cardno",
            "ccexpires", "ccexpiry", "ccexp", "cardexpiry", "cardexpires", "debitcard",
        ),
        "de": ("kreditkarte", "kreditkartennummer", "kartennummer", "ablaufdatumkarte"),
        "fr": ("cartebancaire", "numerodecarte", "numerodecartebancaire", "cartedecredit"),
        "es": ("tarjetadecredito", "numerodetarjeta", "numerodetarjetadecredito"),
        "it": ("cartadicredito", "numerocarta", "numerodicarta", "numerocartadicredito"),
        "pt": ("cartaodecredito", "numerodocartao", "numerocartao"),
        "nl": ("creditcardnummer", "kaartnummer", "creditcard"),
    },
    "cvv": {
        "en": (
            "cvv", "cvv2", "cvc", "cvc2", "csc", "securitycode", "cardsecuritycode",
            "cardverificationvalue",
        ),
        "de": ("kartenprufnummer", "prufnummer", "sicherheitscode"),
        "fr": ("cryptogramme", "cryptogrammevisuel", "codedesecurite"),
        "es": ("codigodeseguridad",),
        "it": ("codicedisicurezza",),
        "pt": ("codigodeseguranca",),
        "nl": ("beveiligingscode", "kaartverificatiecode"),
    },
    "password": {
        "en": ("password", "passwd", "pwd", "passcode", "passphrase"),
        "de": ("passwort", "kennwort"),
        "fr": ("motdepasse", "mdp"),
        "es": ("contrasena", "clave", "clavedeacceso"),
        "it": ("password", "paroladordine", "parolachiave"),
        "pt": ("senha", "palavrapasse"),
        "nl": ("wachtwoord",),
    },
    "national_id": {
        "en": (
            "ssn", "socialsecuritynumber", "socialsecurity", "socialsecurityno", "nationalid",
            "nationalidnumber", "nationalidentitynumber", "nationalinsurancenumber", "nino",
            "passportnumber", "passportno", "idcardnumber", "driverslicense", "driverslicensenumber",
        ),
        "de": (
            "sozialversicherungsnummer", "personalausweisnummer", "ausweisnummer",
            "steueridentifikationsnummer", "steuerid", "reisepassnummer",
        ),
        "fr": (
            "numerodesecuritesociale", "securitesociale", "nir", "numerosecu",
            "numerodecartedidentite", "numerodepasseport", "numeroinsee",
        ),
        "es": (
            "dni", "nie", "documentodeidentidad", "numerodeidentificacion",
            "numerodeseguridadsocial", "seguridadsocial", "numerodepasaporte", "cedula",
        ),
        "it": ("codicefiscale", "cartadidentita", "numerocartadidentita", "numerodipassaporto"),
        "pt": (
            "cpf", "rg", "cartaodecidadao", "numerodeidentificacaocivil",
            "numerodasegurancasocial", "numerodopassaporte", "niss",
        ),
        "nl": ("bsn", "burgerservicenummer", "sofinummer", "paspoortnummer"),
    },
    "mothers_maiden_name": {
        "en": ("mothersmaidenname", "mothersmaiden", "mothermaidenname", "mothermaiden"),
        "de": ("madchennamedermutter", "geburtsnamedermutter"),
        "fr": ("nomdejeunefilledelamere", "nomdejeunefillemere"),
        "es": ("apellidodesolteradelamadre", "apellidodesolteramadre"),
        "it": ("cognomedanubiledellamadre", "cognomedellamadre"),
        "pt": ("nomedesolteiradamae", "nomedamae"),
        "nl": ("meisjesnaammoeder", "meisjesnaamvandemoeder"),
    },
}

# US state and territory codes: two letters that are so often also ISO country codes (CA, GA,
# MD, ...) that a column of them must not be proposed as countries.
US_STATE_CODES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI UM".split()
)
