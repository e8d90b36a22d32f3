-- The Tier 1 team an escalation belongs to (`Gate.team`, see daemon/domain/teams.py): whose
-- manager on call approves it, and the key by which the report, the dashboard and the API
-- break figures down and narrow lists. Rows from before teams existed belong to the implicit
-- single team, 'default'.
ALTER TABLE escalations ADD COLUMN team TEXT NOT NULL DEFAULT 'default';
-- The dashboard and /api/escalations narrowed to one team page by the same keyset as the
-- other single-column filters.
CREATE INDEX escalations_team_page ON escalations (team, opened_at, id);
