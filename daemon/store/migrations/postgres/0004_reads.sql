-- Reads that stay flat as the store grows: the dashboard and /api/escalations page newest
-- first by the keyset (opened_at, id), optionally narrowed to one source, phase or outcome,
-- and the report joins a window of escalations to the first time of each event.
-- (opened_at, id) replaces the plain opened_at index: it serves the same range scans.
DROP INDEX escalations_opened;
CREATE INDEX escalations_page ON escalations (opened_at, id);
CREATE INDEX escalations_source_page ON escalations (source, opened_at, id);
CREATE INDEX escalations_state_page ON escalations (state, opened_at, id);
CREATE INDEX escalations_outcome_page ON escalations (outcome, opened_at, id);
-- The report asks "when did event X first happen to escalation Y": answered from the index
-- alone, without reading the entries' details.
CREATE INDEX timeline_first ON timeline (escalation_id, event, at);
