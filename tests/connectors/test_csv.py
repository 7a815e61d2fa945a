"""CSV exports: dotted column names, typed cells, malformed rows reported with their number."""

from __future__ import annotations

from connectors.csv_rows import csv_rows
from schemas import parse_partner
from tests.support.partner_payloads import TODAY, payloads, to_csv

BY_KIND = payloads(seed=11)


def test_every_kind_survives_the_csv_layout() -> None:
    for kind, items in BY_KIND.items():
        rows = list(csv_rows(to_csv(items), kind))
        assert [r.row for r in rows] == list(range(1, len(items) + 1))
        for row, original in zip(rows, items, strict=True):
            assert row.error is None, (kind, row.error)
            assert isinstance(row.payload, dict)
            assert parse_partner(kind, row.payload, today=TODAY) == parse_partner(
                kind, original, today=TODAY
            )


def test_semicolons_decimal_commas_booleans_and_a_bom_are_understood() -> None:
    text = (
        "\ufeffoccurred_at;subject.cpr;subject.residence_kommunekode;institution_number;"
        "school_name;grade;period_start;period_end;unlawful_absence_percent;"
        "threshold_crossed_percent\n"
        "2026-10-01T09:00:00+02:00;010110-4901;161;916110;Glostrup Vestskole;9;2026-06-01;"
        "2026-09-01;16,5;15\n"
    )
    (row,) = csv_rows(text, "school_absence_signal")
    assert isinstance(row.payload, dict)
    assert row.payload["unlawful_absence_percent"] == 16.5
    assert row.payload["grade"] == 9 and row.payload["subject"]["cpr"] == "010110-4901"
    prison = "planning_started_on,needs,sensitive.substance_use\n2026-10-01,housing|job,ja\n"
    (row,) = csv_rows(prison, "release_planning_prison")
    assert row.payload == {
        "planning_started_on": "2026-10-01",
        "needs": ["housing", "job"],
        "sensitive": {"substance_use": True},
    }


def test_a_row_with_the_wrong_number_of_cells_is_reported_with_its_row_and_line() -> None:
    text = 'a,b\n1,2\n\n1,2,3\n"multi\nline",x\n4\n'
    rows = list(csv_rows(text, "dropout_notice"))
    assert [(r.row, r.line, r.error and r.error["code"]) for r in rows] == [
        (1, 2, None),
        (2, 4, "csv_cell_count"),
        (3, 5, None),
        (4, 7, "csv_cell_count"),
    ]
    assert rows[1].error and rows[1].error["reason"] == "has 3 cells; the header has 2 columns"


def test_a_broken_header_or_quote_is_reported_not_guessed() -> None:
    (row,) = csv_rows("a,,b\n1,2,3\n", "dropout_notice")
    assert row.error and row.error["field"] == "(header)"
    (row,) = csv_rows("a,a\n1,2\n", "dropout_notice")
    assert row.error and "a more than once" in row.error["reason"]
    rows = list(csv_rows('a,b\n1,2\n"3,4\n', "dropout_notice"))
    assert rows[-1].error and rows[-1].error["code"] == "csv_syntax"
    assert next(csv_rows("", "dropout_notice")).error is not None
