"""The knowledge base as a spreadsheet (XLSX or CSV): how agencies keep their typical answers.

One row per entry, one column per field, with a header row (docs/knowledge-base.md,
"Spreadsheets"). Lists (other phrasings, synonym groups) are one item per line inside the
cell. Headers are read in Russian (as exported) or as the YAML field names, in any order.

Reading validates every row and reports every problem at once, each with its row number and
column letter as the spreadsheet program shows them («строка 7, столбец D (Вопрос): ...»);
nothing is written unless the whole sheet is valid. Writing the sheet back to the knowledge
base (``apply_entries``) keeps each existing entry in the file it was in (so an exported,
unchanged sheet comes back identical: spreadsheet → KB → spreadsheet), puts new entries in
``zz-imported.yaml`` and removes entries missing from the sheet: the sheet is the whole base.

A cell that a spreadsheet program would run as a formula (``= + - @`` first) is exported to
CSV with a leading apostrophe (OWASP CSV injection) and XLSX cells are always text; on
reading, that one apostrophe is dropped again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from knowledge_base.datafile import DataFileError
from knowledge_base.entries import ENTRY_ID, MAX_ID, KBEntry, KBLoadError, load_entries
from knowledge_base.store import KnowledgeBaseProvider, heading_comment, write_atomically

#: (field, Russian header) in the exported order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "Код"),
    ("topic", "Тема"),
    ("life_situation", "Жизненная ситуация"),
    ("question", "Вопрос"),
    ("phrasings", "Другие формулировки"),
    ("synonyms", "Синонимы"),
    ("short_answer", "Краткий ответ"),
    ("full_answer", "Полный ответ"),
    ("department", "Отдел"),
    ("cannot_because", "Почему нельзя"),
    ("available_when", "Когда будет"),
)
LIST_FIELDS = frozenset({"phrasings", "synonyms"})
REQUIRED = frozenset({"id", "topic", "life_situation", "question", "short_answer",
                      "full_answer", "department"})  # fmt: skip
_BY_HEADER = {h.casefold(): f for f, h in COLUMNS} | {f.casefold(): f for f, _ in COLUMNS}
_FORMULA_START = ("=", "+", "-", "@")
#: New entries go here; the name sorts after the shipped files, so that rows added at the end of a
#: sheet stay at its end in the next export.
NEW_ENTRIES_FILE = "zz-imported.yaml"
MAX_ROWS = 20_000


@dataclass(frozen=True)
class CellError:
    row: int  # as the spreadsheet program numbers it (the header is row 1)
    column: str | None  # "D", or None for a whole row
    header: str | None
    message: str

    def __str__(self) -> str:
        where = f"строка {self.row}"
        if self.column:
            where += f", столбец {self.column}"
            if self.header:
                where += f" ({self.header})"
        return f"{where}: {self.message}"


class SpreadsheetError(ValueError):
    """The sheet cannot be read as a knowledge base; ``errors`` says where and why."""

    def __init__(self, errors: Sequence[CellError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


# -- writing ---------------------------------------------------------------------------------


def entry_row(entry: KBEntry) -> list[str]:
    row = []
    for name, _header in COLUMNS:
        value = getattr(entry, name)
        if name in LIST_FIELDS:
            row.append("\n".join(value))
        else:
            row.append(value or "")
    return row


def _csv_safe(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_csv(entries: Iterable[KBEntry]) -> bytes:
    """UTF-8 with a byte-order mark (so that Excel opens Cyrillic right), comma-separated."""
    return write_csv_rows([[h for _, h in COLUMNS], *(entry_row(e) for e in entries)])


def write_csv_rows(rows: Iterable[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_csv_safe(cell) for cell in row])
    return out.getvalue().encode("utf-8-sig")


def write_xlsx(entries: Iterable[KBEntry]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "База знаний"
    sheet.append([h for _, h in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for entry in entries:
        sheet.append(entry_row(entry))
        for cell in sheet[sheet.max_row]:
            cell.data_type = "s"  # text, never a formula
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "B2"
    for index, (_name, header) in enumerate(COLUMNS):
        wide = 60 if "ответ" in header else 28
        sheet.column_dimensions[column_letter(index)].width = wide
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- reading ---------------------------------------------------------------------------------


def _rows_of_csv(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpreadsheetError(
            [CellError(1, None, None, "файл не в кодировке UTF-8: сохраните его как «CSV UTF-8»")]
        ) from None
    try:
        sample = text[:4096]
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ";,\t")
    except csv.Error:
        dialect = csv.excel
    try:
        return [list(row) for row in csv.reader(io.StringIO(text, newline=""), dialect)]
    except csv.Error as exc:
        raise SpreadsheetError([CellError(1, None, None, f"не читается как CSV: {exc}")]) from None


def _rows_of_xlsx(data: bytes) -> list[list[str]]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (BadZipFile, OSError, KeyError, ValueError) as exc:
        raise SpreadsheetError(
            [CellError(1, None, None, f"не читается как XLSX: {type(exc).__name__}")]
        ) from None
    sheet = book.worksheets[0]
    rows = []
    for values in sheet.iter_rows(values_only=True):
        rows.append(["" if v is None else str(v) for v in values])
        if len(rows) > MAX_ROWS + 1:
            break
    book.close()
    return rows


def _cell(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    if text.startswith("'") and text[1:].startswith(_FORMULA_START):
        return text[1:]
    return text


def read_sheet(data: bytes, kind: str) -> list[KBEntry]:
    """Entries of an XLSX (``kind="xlsx"``) or CSV sheet; ``SpreadsheetError`` lists every
    problem with its row and column."""
    rows = _rows_of_xlsx(data) if kind == "xlsx" else _rows_of_csv(data)
    if not rows:
        raise SpreadsheetError([CellError(1, None, None, "пустой файл: нет строки заголовков")])
    if len(rows) > MAX_ROWS + 1:
        raise SpreadsheetError([CellError(MAX_ROWS + 2, None, None,
                                          f"больше {MAX_ROWS} строк")])  # fmt: skip
    errors: list[CellError] = []
    fields: dict[int, str] = {}
    for index, header in enumerate(rows[0]):
        name = _BY_HEADER.get(header.strip().casefold())
        if name is None:
            if header.strip():
                errors.append(CellError(1, column_letter(index), header.strip(),
                                        "неизвестный столбец"))  # fmt: skip
            continue
        if name in fields.values():
            errors.append(CellError(1, column_letter(index), header.strip(), "столбец повторяется"))
            continue
        fields[index] = name
    missing = [h for f, h in COLUMNS if f in REQUIRED and f not in fields.values()]
    if missing:
        errors.append(CellError(1, None, None, "нет столбцов: " + ", ".join(missing)))
    if errors:
        raise SpreadsheetError(errors)
    headers = {index: dict(COLUMNS)[name] for index, name in fields.items()}
    where = {name: index for index, name in fields.items()}
    entries: list[KBEntry] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # an empty row
        item: dict[str, object] = {}
        for index, name in fields.items():
            text = _cell(row[index]) if index < len(row) else ""
            if name in LIST_FIELDS:
                item[name] = [line.strip() for line in text.split("\n") if line.strip()]
            else:
                item[name] = text or None
        try:
            entry = KBEntry.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                name = str(err["loc"][0]) if err["loc"] else ""
                column = where.get(name)
                message = "не заполнено" if item.get(name) is None else err["msg"]
                errors.append(
                    CellError(
                        number,
                        column_letter(column) if column is not None else None,
                        headers.get(column) if column is not None else None,
                        message,
                    )
                )
            continue
        if entry.available_when and not entry.cannot_because:
            index = where["available_when"]
            errors.append(CellError(number, column_letter(index), headers[index],
                                    "«Когда будет» без «Почему нельзя»"))  # fmt: skip
        if len(entry.id) > MAX_ID or not ENTRY_ID.fullmatch(entry.id):
            index = where["id"]
            errors.append(CellError(number, column_letter(index), headers[index],
                                    f"код «{entry.id}»: только строчные латинские буквы, цифры "
                                    f"и дефис, до {MAX_ID} знаков"))  # fmt: skip
            continue
        if entry.id in seen:
            index = where["id"]
            again = f"код «{entry.id}» уже есть в строке {seen[entry.id]}"
            errors.append(CellError(number, column_letter(index), headers[index], again))
            continue
        seen[entry.id] = number
        entries.append(entry)
    if errors:
        raise SpreadsheetError(errors)
    return entries


def sheet_kind(name: str) -> str:
    """ "xlsx" or "csv" by the file name; ValueError for anything else."""
    suffix = Path(name).suffix.lower()
    if suffix in (".xlsx", ".csv"):
        return suffix[1:]
    raise ValueError(f"{name}: a spreadsheet must be .xlsx or .csv")


# -- applying a sheet to the agency's entries --------------------------------------------------


@dataclass(frozen=True)
class Changes:
    added: list[str]
    changed: list[str]
    removed: list[str]

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def _as_item(entry: KBEntry) -> dict[str, object]:
    data = entry.model_dump(exclude_none=True)
    return {k: v for k, v in data.items() if not (k in LIST_FIELDS and not v)}


def plan(current: list[KBEntry], wanted: list[KBEntry]) -> Changes:
    before = {e.id: e for e in current}
    after = {e.id: e for e in wanted}
    return Changes(
        added=[i for i in after if i not in before],
        changed=[i for i in after if i in before and _as_item(after[i]) != _as_item(before[i])],
        removed=[i for i in before if i not in after],
    )


def apply_entries(directory: Path, wanted: list[KBEntry]) -> Changes:
    """Make the YAML files of ``directory`` (the agency's writable copy) hold exactly
    ``wanted``: each entry in the file it is in now (its position there kept for an existing
    entry), new ones appended to ``zz-imported.yaml``. Each file is replaced atomically; the
    caller reloads the knowledge base."""
    current = load_entries(directory)
    changes = plan(current, wanted)
    home = {e.id: e.source.name for e in current if e.source is not None}
    files: dict[str, list[dict[str, object]]] = {name: [] for name in set(home.values())}
    files.setdefault(NEW_ENTRIES_FILE, [])
    by_id = {e.id: e for e in wanted}
    for entry in current:  # existing entries, in their files' order
        if entry.id in by_id:
            files[home[entry.id]].append(_as_item(by_id[entry.id]))
    for entry in wanted:
        if entry.id not in home:
            files[NEW_ENTRIES_FILE].append(_as_item(entry))
    for name, items in files.items():
        path = directory / name
        if not items:
            if path.exists():
                path.unlink()
            continue
        heading = heading_comment(path.read_text(encoding="utf-8")) if path.exists() else ""
        text = heading + yaml.safe_dump(items, allow_unicode=True, sort_keys=False, width=100)
        write_atomically(path, text)
    return changes


def import_entries(provider: KnowledgeBaseProvider, wanted: list[KBEntry]) -> Changes:
    """``apply_entries`` to the provider's writable directory (the shipped entries are copied
    there first), then rebuild its index; if the result does not load, every file is put back
    as it was and the error raised (the previous knowledge base stays in use)."""
    with provider.editing() as directory:
        backup = {p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.yaml")}
        changes = apply_entries(directory, wanted)
        try:
            provider.reload()
        except (KBLoadError, DataFileError):
            for path in directory.glob("*.yaml"):
                if path.name not in backup:
                    path.unlink()
            for name, text in backup.items():
                write_atomically(directory / name, text)
            provider.reload()
            raise
        return changes
