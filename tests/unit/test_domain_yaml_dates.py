"""A YAML date that is no date is found on the parsed node tree with its line and key."""

from __future__ import annotations

import yaml

from daemon.domain.yaml_dates import bad_timestamp


def test_an_impossible_date_in_a_list_is_found_with_its_line_and_path() -> None:
    root = yaml.compose("fine: 2026-02-28\nholidays:\n  - 2026-12-25\n  - 2026-02-30\n")
    assert bad_timestamp(root) == (4, ("holidays", 1), "2026-02-30")


def test_real_dates_aliases_and_an_empty_document_are_fine() -> None:
    assert bad_timestamp(yaml.compose("a: &d 2026-02-28\nb: *d\nc: [x, {y: 1}]\n")) is None
    assert bad_timestamp(yaml.compose("")) is None
