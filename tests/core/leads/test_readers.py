"""Reading spreadsheets as text: encodings, delimiters, header rows, XLSX cells and safety limits."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import openpyxl.xml
import pytest
import xlsxwriter

from core.config import ConfigError
from core.errors import ValidationError
from core.leads import readers, tables, xlsx
from core.leads.readers import read_table
from core.leads.tables import ReadLimits
from core.leads.xlsx import list_sheets, verify_xml_protection

ROWS = [
    ["First Name", "Phone", "Email", "City"],
    ["Zoë", "0044 20 7946 0018", "zoe@example.com", "Köln"],
    ["René", "(415) 555-0100", "rene@example.com", "Montréal"],
]


def _csv(delimiter: str = ",", rows: list[list[str]] = ROWS) -> str:
    return "\r\n".join(delimiter.join(r) for r in rows) + "\r\n"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("utf-8", lambda t: t.encode("utf-8")),
        ("utf-8-sig", lambda t: t.encode("utf-8-sig")),
        ("utf-16", lambda t: t.encode("utf-16")),  # with BOM
        ("utf-16-le", lambda t: t.encode("utf-16-le")),  # without BOM
        ("utf-16-be", lambda t: t.encode("utf-16-be")),
        ("cp1252", lambda t: t.encode("cp1252")),
        ("latin-1", lambda t: (t + "\u00bf\n").encode("latin-1").replace(b"\xbf\n", b"\x81")),
    ],
)
def test_each_encoding_reads_the_same_text(encoding: str, encode: object) -> None:
    table = read_table(encode(_csv()), "leads.csv")  # type: ignore[operator]
    assert table.headers == ROWS[0]
    assert table.frame.iloc[0].tolist()[:3] == ROWS[1][:3]
    assert table.frame["City"].tolist()[:2] == ["Köln", "Montréal"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_sniffed(delimiter: str) -> None:
    table = read_table(_csv(delimiter).encode(), "leads.csv")
    assert table.delimiter == delimiter
    assert table.headers == ROWS[0]
    assert table.frame["Phone"].tolist() == ["0044 20 7946 0018", "(415) 555-0100"]


def test_commas_inside_quotes_do_not_fool_the_sniffer() -> None:
    data = 'Name;Phone;Notes\n"Smith, Ada";415 555 0100;"a, b, c"\n"Jones, Bob";415 555 0101;x\n'
    table = read_table(data.encode(), "leads.csv")
    assert table.delimiter == ";"
    assert table.frame["Name"].tolist() == ["Smith, Ada", "Jones, Bob"]


def test_the_header_is_found_below_title_rows_and_rows_keep_their_numbers() -> None:
    data = "Leads exported from the CRM\n\n" + _csv()
    table = read_table(data.encode(), "leads.csv")
    assert table.header_row == 3
    assert table.headers == ROWS[0]
    assert list(table.row_numbers()) == [4, 5]


def test_cells_stay_text_and_empty_headers_get_names() -> None:
    data = "Phone,Zip,,Phone\n00441234,02134,x,1\n"
    table = read_table(data.encode(), "leads.csv")
    assert table.headers == ["Phone", "Zip", "Column 3", "Phone (2)"]
    assert table.frame.iloc[0].tolist() == ["00441234", "02134", "x", "1"]


def test_a_trailing_delimiter_adds_no_column() -> None:
    table = read_table(b"Phone,Email,\n4155550100,a@example.com,\n", "leads.csv")
    assert table.headers == ["Phone", "Email"]


def test_neutralised_cells_from_our_own_export_come_back_unchanged() -> None:
    table = read_table(b"Phone,Notes\n'+14155550100,'=1+1\n'x,it's\n", "leads.csv")
    assert table.frame["Phone"].tolist() == ["+14155550100", "'x"]
    assert table.frame["Notes"].tolist() == ["=1+1", "it's"]


@pytest.mark.parametrize(
    "data",
    [
        # PrestaShop: every row one ';' more than the header.
        b"Email;Name;Phone\na@example.com;Ann;555\nb@example.com;Bob;556;\n",
        b"Email;Name;Phone\na@example.com;Ann;555;\nb@example.com;Bob;556;\n",
        # Thunderbird: a trailing comma on the header and on every row.
        b"Email,Name,Phone,\na@example.com,Ann,555,\nb@example.com,Bob,556,\n",
        # Outlook: rows shorter than the header.
        b"Email,Name,Phone,Notes\na@example.com,Ann,555\nb@example.com,Bob,556,\n",
    ],
    ids=["one-row-ragged", "every-row-ragged", "trailing-comma-everywhere", "short-rows"],
)
def test_ragged_rows_are_aligned_to_the_header_not_shifted(data: bytes) -> None:
    table = read_table(data, "leads.csv")
    assert table.headers[:3] == ["Email", "Name", "Phone"]
    assert table.frame["Email"].tolist() == ["a@example.com", "b@example.com"]
    assert table.frame["Name"].tolist() == ["Ann", "Bob"]
    assert table.frame["Phone"].tolist() == ["555", "556"]
    assert table.row_messages == {}


@pytest.mark.parametrize(
    ("data", "row", "message"),
    [
        (
            b"Phone,Email\n1,2\n1,2,3,4\n",
            3,
            "the row has 2 more values than the header has columns ('3', '4')",
        ),
        (b"Phone,Email\n1,2,x\n1,2\n", 2, "the row has 1 more value than the header has columns ('x')"),
        (
            b"Phone,Email\n1,2,,\n1,2,,,,,,y\n",
            3,
            "the row has 1 more value than the header has columns ('y')",
        ),
    ],
    ids=["later-row", "first-row", "far-past-the-header"],
)
def test_a_row_with_more_values_than_the_header_is_reported(data: bytes, row: int, message: str) -> None:
    table = read_table(data, "leads.csv")
    assert table.headers == ["Phone", "Email"]
    assert table.frame["Phone"].tolist() == ["1", "1"]
    assert table.frame["Email"].tolist() == ["2", "2"]
    [note] = table.row_messages[row]
    assert note.startswith(message)


def _xlsx(build: object) -> bytes:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"strings_to_formulas": False})
    build(workbook)  # type: ignore[operator]
    workbook.close()
    return buffer.getvalue()


def _leads_sheet(workbook: xlsxwriter.Workbook) -> None:
    workbook.add_worksheet("Notes").write_string(0, 0, "not this one")
    sheet = workbook.add_worksheet("Leads")
    sheet.write_string(0, 0, "Trade show leads")
    for col, header in enumerate(["Name", "Phone", "Mobile", "Email", "Score", "Joined"]):
        sheet.write_string(2, col, header)
    zeros = workbook.add_format({"num_format": "00000000000"})
    sheet.write_string(3, 0, "Ada")
    sheet.write_number(3, 1, 4155550100)  # a phone typed as a number
    sheet.write_number(3, 2, 7700900123, zeros)  # leading zero kept by the number format
    sheet.write_formula(3, 3, '="ada"&"@example.com"', None, "ada@example.com")
    sheet.write_number(3, 4, 4.5)
    from datetime import datetime

    sheet.write_datetime(3, 5, datetime(2026, 1, 2), workbook.add_format({"num_format": "yyyy-mm-dd"}))
    sheet.write_string(4, 0, "Bob")
    sheet.write_number(4, 1, 4155550101.0)


def test_xlsx_reads_the_chosen_sheet_with_the_header_below_a_title() -> None:
    data = _xlsx(_leads_sheet)
    assert list_sheets(data) == ["Notes", "Leads"]
    table = read_table(data, "leads.xlsx", sheet="Leads")
    assert table.sheets == ["Notes", "Leads"]
    assert table.header_row == 3
    assert table.headers == ["Name", "Phone", "Mobile", "Email", "Score", "Joined"]
    first = table.frame.iloc[0].tolist()
    # Numbers come back as their digits, a zero-padded format keeps its zeros, formulas as
    # their cached values (never the formula), dates as ISO dates.
    assert first == ["Ada", "4155550100", "07700900123", "ada@example.com", "4.5", "2026-01-02"]
    assert table.frame.iloc[1].tolist()[:2] == ["Bob", "4155550101"]
    assert list(table.row_numbers()) == [4, 5]


def test_xlsx_unknown_sheet_is_named() -> None:
    with pytest.raises(ValidationError, match="no sheet 'Nope'.*Notes, Leads"):
        read_table(_xlsx(_leads_sheet), "leads.xlsx", sheet="Nope")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("leads.xlsx", b"Phone,Email\n1,2\n", "not an XLSX workbook"),
        ("leads.csv", b"PK\x03\x04rest of a zip", "not a CSV file"),
        ("leads.csv", b"Phone\x00\x01\x02\x03\xff\xfe\x00\x00binary", "binary data"),
        ("leads.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old Excel"),
        ("leads.pdf", b"%PDF-1.7", "not a supported file type"),
        ("leads.csv", b"", "is empty"),
    ],
)
def test_a_file_that_is_not_what_it_says_is_refused(name: str, data: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        read_table(data, name)


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    with pytest.raises(ValidationError, match="zip but not an XLSX"):
        read_table(buffer.getvalue(), "leads.xlsx")


def test_size_and_row_limits_have_clear_messages() -> None:
    with pytest.raises(ValidationError, match="more than the 0 MB allowed"):
        read_table(_csv().encode(), "leads.csv", limits=ReadLimits(max_bytes=10))
    with pytest.raises(ValidationError, match="more than 1 rows"):
        read_table(_csv().encode(), "leads.csv", limits=ReadLimits(max_rows=1))
    with pytest.raises(ValidationError, match="more than 1 rows"):
        read_table(_xlsx(_leads_sheet), "leads.xlsx", sheet="Leads", limits=ReadLimits(max_rows=1))


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """A workbook whose sheet inflates 1,000 to 1 (64 MB of zeros from about 64 KB)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            block = b"0" * (1 << 20)
            for _ in range(64):
                sheet.write(block)
    return buffer.getvalue()


def test_a_zip_bomb_is_refused_before_any_parsing(zip_bomb: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: pytest.fail("the workbook was parsed"))
    with pytest.raises(ValidationError, match="possible zip bomb"):
        read_table(zip_bomb, "leads.xlsx")


def test_a_workbook_too_big_unpacked_is_refused(zip_bomb: bytes) -> None:
    limits = ReadLimits(max_uncompressed_bytes=10 * 1024 * 1024, max_compression_ratio=10_000)
    with pytest.raises(ValidationError, match="unpacks to 67 MB"):
        read_table(zip_bomb, "leads.xlsx", limits=limits)


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
)


@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/workbook.xml"])
def test_an_entity_expansion_workbook_is_refused(part: str) -> None:
    original = zipfile.ZipFile(io.BytesIO(_xlsx(lambda wb: wb.add_worksheet().write_string(0, 0, "x"))))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in original.infolist():
            content = original.read(item.filename)
            if item.filename == part:
                body = content.decode().split("?>", 1)[1]
                content = (LAUGHS + body.replace("<sheetData>", "<sheetData>&lol3;", 1)).encode()
            archive.writestr(item.filename, content)
    with pytest.raises(ValidationError, match="entity declarations"):
        read_table(buffer.getvalue(), "leads.xlsx")


def test_verify_xml_protection(monkeypatch: pytest.MonkeyPatch) -> None:
    verify_xml_protection()
    monkeypatch.setattr(openpyxl.xml, "DEFUSEDXML", False)
    with pytest.raises(ConfigError, match="not using defusedxml"):
        verify_xml_protection()


@pytest.mark.parametrize(
    ("value", "number_format", "expected"),
    [
        (None, None, ""),
        (True, None, "TRUE"),
        (44, None, "44"),
        (4155550100.0, None, "4155550100"),
        (4.5, None, "4.5"),
        (7700900123, "00000000000", "07700900123"),
        (12, "0.00", "12"),
        ("text", None, "text"),
    ],
)
def test_xlsx_cell_text(value: object, number_format: str | None, expected: str) -> None:
    assert xlsx.xlsx_cell_text(value, number_format) == expected


# --- bounded inputs: wide files, long cells, control characters ---------------------------


def _wide_csv(columns: int, rows: int = 2) -> bytes:
    header = ["Phone", "Email", *(f"Field {i}" for i in range(3, columns + 1))]
    lines = [",".join(header)]
    for row in range(rows):
        lines.append(",".join([f"415555{row:04d}", f"lead{row}@example.com", *("x" * (columns - 2))]))
    return ("\n".join(lines) + "\n").encode()


def _wide_xlsx(path: object, columns: int, rows: int = 2) -> bytes:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Leads")
    sheet.append(["Phone", "Email", *(f"Field {i}" for i in range(3, columns + 1))])
    for row in range(rows):
        sheet.append([f"415555{row:04d}", f"lead{row}@example.com", *(["x"] * (columns - 2))])
    workbook.save(path)  # type: ignore[arg-type]
    return path.read_bytes()  # type: ignore[attr-defined]


def test_a_csv_wider_than_the_column_cap_is_refused_before_it_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _wide_csv(20_000)
    monkeypatch.setattr(readers.pd, "read_csv", lambda *a, **k: pytest.fail("the CSV was parsed"))
    with pytest.raises(ValidationError, match=r"20,000 columns, more than the 200 one import takes"):
        read_table(data, "wide.csv", limits=ReadLimits(max_columns=200))


def test_a_csv_header_longer_than_the_sniffed_sample_is_counted_whole() -> None:
    # 300 columns whose names fill more than the 64 KB the delimiter is sniffed from.
    header = ",".join(f"{'Column number ' * 20}{i}" for i in range(300))
    data = (header + "\n" + ",".join("x" * 300) + "\n").encode()
    assert len(header) > readers.SNIFF_BYTES
    with pytest.raises(ValidationError, match=r"300 columns, more than the 200"):
        read_table(data, "wide.csv", limits=ReadLimits(max_columns=200))


def test_an_xlsx_wider_than_the_column_cap_is_refused_at_its_first_row(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _wide_xlsx(tmp_path / "wide.xlsx", 16_384, rows=3)  # type: ignore[operator]
    monkeypatch.setattr(xlsx, "xlsx_cell_text", lambda *a, **k: pytest.fail("a cell was read"))
    with pytest.raises(ValidationError, match=r"16,384 columns, more than the 200 one import takes"):
        read_table(data, "wide.xlsx")


def test_an_xlsx_row_with_cells_past_the_cap_is_refused_with_its_row_number(tmp_path: object) -> None:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Leads")
    sheet.append(["Phone", "Email"])
    sheet.append(["4155550100", "a@example.com"])
    sheet.append(["4155550101", "b@example.com", *([None] * 400), "stray"])
    path = tmp_path / "stray.xlsx"  # type: ignore[operator]
    workbook.save(path)
    with pytest.raises(ValidationError, match=r"row 3 .*403 columns, more than the 200"):
        read_table(path.read_bytes(), "stray.xlsx")


def test_files_of_exactly_the_column_cap_are_read(tmp_path: object) -> None:
    limits = ReadLimits(max_columns=200)
    table = read_table(_wide_csv(200), "wide.csv", limits=limits)
    assert len(table.headers) == 200 and table.row_count == 2
    xlsx = read_table(_wide_xlsx(tmp_path / "wide.xlsx", 200), "wide.xlsx", limits=limits)  # type: ignore[operator]
    assert len(xlsx.headers) == 200 and xlsx.row_count == 2
    assert xlsx.frame.iloc[1].tolist()[:3] == ["4155550001", "lead1@example.com", "x"]


def test_an_xlsx_whose_declared_dimension_is_huge_reads_only_its_cells(tmp_path: object) -> None:
    # A sheet whose <dimension> claims A1:XFD3 (as formatting a whole row can leave it) but whose
    # cells fill three columns is an ordinary narrow sheet.
    path = tmp_path / "declared.xlsx"  # type: ignore[operator]
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in (["Phone", "Email", "City"], ["4155550100", "a@example.com", "Oslo"]):
        sheet.append(row)
    workbook.save(path)
    original = zipfile.ZipFile(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in original.infolist():
            content = original.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b'<dimension ref="A1:C2"', b'<dimension ref="A1:XFD3"')
                assert b"XFD3" in content
            archive.writestr(item.filename, content)
    table = read_table(buffer.getvalue(), "declared.xlsx")
    assert table.headers == ["Phone", "Email", "City"]
    assert table.frame.iloc[0].tolist() == ["4155550100", "a@example.com", "Oslo"]


def test_a_cell_longer_than_the_cap_is_cut_with_a_row_message() -> None:
    data = ("Phone,Notes\n4155550100," + "n" * 25_000 + "\n4155550101,short\n").encode()
    table = read_table(data, "long.csv", limits=ReadLimits(max_cell_chars=10_000))
    assert table.frame["Notes"].tolist() == ["n" * 10_000, "short"]
    assert table.row_messages == {
        2: ["column 'Notes' held 25,000 characters: only the first 10,000 were read"]
    }


NUL_AT = 100_000


def _csv_with_control_characters() -> bytes:
    lines = ["First Name,Phone,Email,Notes"]
    row = 0
    while sum(len(line) + 1 for line in lines) < NUL_AT:
        lines.append(f"Lead{row},+1415555{row:04d},lead{row}@example.com,fine")
        row += 1
    lines.append("Nul\x00ly,+14155559998,nul@example.com,bell\x07 and tab\tkept")
    lines.append("Plain,+14155559999,plain@example.com,line one")
    data = ("\n".join(lines) + "\n").encode()
    assert data.index(b"\x00") > NUL_AT - 100
    return data


def test_nul_and_other_control_characters_are_stripped_with_a_row_message() -> None:
    table = read_table(_csv_with_control_characters(), "nul.csv")
    nul_row = table.frame.iloc[-2].tolist()
    assert nul_row == ["Nully", "+14155559998", "nul@example.com", "bell and tab\tkept"]
    number = table.first_row + table.row_count - 2
    assert table.row_messages == {
        number: [
            "column 'First Name': removed 1 control character (such as a NUL byte)",
            "column 'Notes': removed 1 control character (such as a NUL byte)",
        ]
    }
    assert not any("\x00" in str(v) for v in table.frame.to_numpy().ravel())


def test_a_stray_nul_near_the_start_is_stripped_not_taken_for_binary() -> None:
    table = read_table(b"Phone,Email\n4155550100,a@exa\x00mple.com\n", "leads.csv")
    assert table.frame["Email"].tolist() == ["a@example.com"]
    assert table.row_messages == {2: ["column 'Email': removed 1 control character (such as a NUL byte)"]}


def test_control_characters_in_headers_are_dropped() -> None:
    data = b"Pho\x01ne,Em\x00ail\n4155550100,a@example.com\n4155550101,b@example.com\n"
    table = read_table(data, "leads.csv")
    assert table.headers == ["Phone", "Email"]


def test_an_absurdly_long_header_is_cut_and_still_unique() -> None:
    long_name = "Comment " * 1_000
    data = f"Phone,{long_name}A,{long_name}B\n4155550100,x,y\n".encode()
    table = read_table(data, "leads.csv")
    assert [len(h) for h in table.headers[1:]] == [tables.MAX_HEADER_CHARS, tables.MAX_HEADER_CHARS + 4]
    assert table.headers[1].startswith("Comment Comment") and table.headers[1].endswith("…")
    assert table.headers[2] == table.headers[1] + " (2)"
