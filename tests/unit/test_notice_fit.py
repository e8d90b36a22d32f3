"""`jobs.views.fitted`: a line of a long notice kept under its size as the chat measures it."""

from __future__ import annotations

import pytest

from daemon.domain.messages import Link, mention, message, strong
from daemon.integrations.shorten import ELLIPSIS
from daemon.integrations.slack import notice_size
from daemon.jobs.views import fitted
from daemon.markup import slack_mrkdwn
from tests.hostile import HOSTILE


def test_a_line_that_fits_is_kept_whole() -> None:
    line = message("• ", strong("INC-1"), " owner ", mention("U1"))
    assert fitted(line, 100, notice_size) == line


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_long_line_is_cut_as_slack_counts_it_never_inside_markup(hostile: str) -> None:
    """Slack counts the escapes: `<` is four characters there, one in plain text."""
    line = message("• ", (hostile + "<&>") * 200, " · owner ", mention("U1"), " · ",
                   Link(url="https://x.example/a", label="issue"))
    cut = fitted(line, 300, notice_size)
    rendered = slack_mrkdwn(cut)
    assert len(rendered) <= 300 and rendered.endswith(ELLIPSIS)
    assert cut.mentioned == () and not any(isinstance(p, Link) for p in cut.parts)
    assert len(rendered) > 300 - 10  # as much as fits, bar one escape and the ellipsis


def test_a_part_that_cannot_be_cut_is_left_out_whole() -> None:
    line = message("x" * 20, Link(url="https://x.example/" + "a" * 100, label="issue"))
    cut = fitted(line, 40, notice_size)
    assert cut == message("x" * 20, ELLIPSIS)
    assert fitted(line, 40, lambda m: len(m.plain)) == cut
    assert slack_mrkdwn(fitted(message(strong("y" * 50)), 10, notice_size)) == "*yyyyyyy…*"
