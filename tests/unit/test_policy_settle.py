"""Only a complete, settled policy file is put in force: a file read while an editor writes it
in place (valid YAML, most rules missing) never classifies anything."""

from __future__ import annotations

import os
from pathlib import Path

from daemon.clock import ManualClock
from daemon.domain.policy import Outcome
from daemon.domain.policy_file import parse_policy
from daemon.policy_source import PolicySource
from tests.support import START

SHIPPED = (Path(__file__).resolve().parents[2] / "config" / "policy.yaml").read_text()
HALF = SHIPPED[:SHIPPED.index("  # Support asserts one of")]  # only the test-incident rule


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))  # a distinct mtime even within one clock tick


def test_the_half_written_file_is_valid_yaml_that_would_make_an_s1_an_rfh() -> None:
    half = parse_policy(HALF)
    assert half.default_outcome is Outcome.RFH
    assert [rule.name for rule in half.rules] == ["test incidents are ignored"]


def test_a_changed_file_is_put_in_force_only_once_it_stayed_the_same(tmp_path: Path) -> None:
    path, clock = tmp_path / "policy.yaml", ManualClock(START)
    write(path, SHIPPED, 1_000_000_000)
    source = PolicySource(path, settle_s=2.0, monotonic=clock.monotonic)
    shipped = source.fingerprint

    write(path, HALF, 2_000_000_000)  # the editor truncated and wrote the first half
    assert source.current().fingerprint == shipped
    clock.advance(1.5)
    write(path, SHIPPED, 3_000_000_000)  # ... and the rest: the wait starts again
    clock.advance(1.5)
    assert source.current().fingerprint == shipped
    assert len(source.current().rules) == 4

    edited = SHIPPED.replace("on_timeout: page", "on_timeout: hold")
    write(path, edited, 4_000_000_000)
    source.refresh()
    clock.advance(1.9)
    assert source.current().fingerprint == shipped
    clock.advance(0.1)
    assert source.current().fingerprint != shipped
    approval = source.current().rules[1].approval
    assert approval is not None
    assert approval.on_timeout.value == "hold"


def test_content_that_changes_under_the_same_metadata_is_not_put_in_force(tmp_path: Path
                                                                          ) -> None:
    """A coarse mtime (1-2 s on some file systems) can hide a write: the content is compared."""
    path, clock = tmp_path / "policy.yaml", ManualClock(START)
    write(path, SHIPPED, 1_000_000_000)
    source = PolicySource(path, settle_s=2.0, monotonic=clock.monotonic)
    write(path, SHIPPED.replace("default_outcome: rfh", "default_outcome: ignore"),
          2_000_000_000)
    source.refresh()
    clock.advance(2)
    write(path, SHIPPED.replace("default_outcome: rfh", "default_outcome: emergency"),
          2_000_000_000)
    assert source.current().default_outcome is Outcome.RFH  # different reads: wait again
    clock.advance(2)
    assert source.current().default_outcome is Outcome.EMERGENCY


def test_an_atomic_rename_is_put_in_force_after_the_settle_interval(tmp_path: Path) -> None:
    path, clock = tmp_path / "policy.yaml", ManualClock(START)
    write(path, SHIPPED, 1_000_000_000)
    source = PolicySource(path, settle_s=2.0, monotonic=clock.monotonic)
    new = tmp_path / "policy.yaml.new"
    write(new, SHIPPED.replace("default_outcome: rfh", "default_outcome: ignore"),
          1_000_000_000)  # the same mtime as the old file: the inode tells them apart
    new.replace(path)
    source.refresh()
    clock.advance(2)
    assert source.current().default_outcome is Outcome.IGNORE


def test_comments_and_layout_do_not_change_the_policy_in_force() -> None:
    assert parse_policy("# a note\n" + SHIPPED).fingerprint == parse_policy(SHIPPED).fingerprint
    assert parse_policy(HALF).fingerprint != parse_policy(SHIPPED).fingerprint
