"""The team of a `/tier2` command (`daemon.domain.teams.team_of_channel`): the team whose
channels hold the channel it was used in."""

from __future__ import annotations

from daemon.domain.policy import Team
from daemon.domain.teams import Recognition, team_of_channel


def test_a_tier2_command_belongs_to_the_team_of_its_channel() -> None:
    teams = (Team(name="emea", recognised_by=Recognition(slack_channels=("C0EMEA",))),
             Team(name="amer", recognised_by=Recognition(slack_channels=("C0AMER", "C0US"))))
    assert team_of_channel(teams, "C0US", "default") == "amer"
    assert team_of_channel(teams, "C0EMEA", "default") == "emea"
    assert team_of_channel(teams, "C0ELSE", "default") == "default"
    assert team_of_channel((), "C0US", "default") == "default"
