-- What the KPIs read from each escalation, kept beside it so they scan one range of the
-- escalations instead of parsing every escalation's `data` and joining its timeline. Written
-- with the escalation and with each timeline entry (daemon/store/units.py, `_kpi_columns`,
-- `_count_event`), as 0011's figure columns are:
--   customer           `escalation.customer` (NULL when the stored escalation has none)
--   custom_fields      `escalation.fields` as a JSON object (display name -> value); the
--                      service fields the KPIs read are chosen by configuration at read time
--   reference, title   the escalation's, '' when absent
--   severity           the policy's canonical severity of the stored decision, '' when none
--   last_resolved      the latest `resolved` entry's time (NULL: never resolved)
--   evidence_checked   1 once an `approval_requested` entry carried an evidence pack
--   evidence_complete  1 once such a pack said it was complete
--   retro_url          the greatest `url` of the `retro_opened` entries (NULL: none)
--   retro_closed       1 once a `retro_closed` entry was written; retro_complete: one said
--                      the retro was complete
--   spells             `update_overdue` entries; spells_ended: `update_resumed` entries
--   last_due_at        the greatest `due_at` of the `update_overdue` entries
--   overdue_s          the sum of the `overdue_s` of the `update_resumed` entries
-- Existing rows are filled from their data and timelines below.
ALTER TABLE escalations ADD COLUMN customer TEXT;
ALTER TABLE escalations ADD COLUMN custom_fields TEXT NOT NULL DEFAULT '{}';
ALTER TABLE escalations ADD COLUMN reference TEXT NOT NULL DEFAULT '';
ALTER TABLE escalations ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE escalations ADD COLUMN severity TEXT NOT NULL DEFAULT '';
ALTER TABLE escalations ADD COLUMN last_resolved REAL;
ALTER TABLE escalations ADD COLUMN evidence_checked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN evidence_complete INTEGER NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN retro_url TEXT;
ALTER TABLE escalations ADD COLUMN retro_closed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN retro_complete INTEGER NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN spells INTEGER NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN spells_ended INTEGER NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN last_due_at REAL;
ALTER TABLE escalations ADD COLUMN overdue_s REAL NOT NULL DEFAULT 0;
UPDATE escalations SET
    customer = json_extract(data, '$.escalation.customer'),
    custom_fields = COALESCE(json_extract(data, '$.escalation.fields'), '{}'),
    reference = COALESCE(json_extract(data, '$.escalation.reference'), ''),
    title = COALESCE(json_extract(data, '$.escalation.title'), ''),
    severity = COALESCE(json_extract(data, '$.gate.decision.facts.severity'), ''),
    last_resolved = (SELECT max(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'resolved'),
    evidence_checked = EXISTS (SELECT 1 FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'approval_requested' AND json_type(t.details, '$.evidence') IS NOT NULL),
    evidence_complete = EXISTS (SELECT 1 FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'approval_requested' AND json_extract(t.details, '$.evidence.complete') = 1),
    retro_url = (SELECT max(json_extract(t.details, '$.url')) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'retro_opened'),
    retro_closed = EXISTS (SELECT 1 FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'retro_closed'),
    retro_complete = EXISTS (SELECT 1 FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'retro_closed' AND json_extract(t.details, '$.complete') = 1),
    spells = (SELECT count(*) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'update_overdue'),
    spells_ended = (SELECT count(*) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'update_resumed'),
    last_due_at = (SELECT max(json_extract(t.details, '$.due_at')) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'update_overdue'),
    overdue_s = COALESCE((SELECT sum(json_extract(t.details, '$.overdue_s')) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'update_resumed'), 0);
-- The drivers' window, answered from this index alone.
CREATE INDEX escalations_drivers ON escalations (opened_at, drill, outcome, customer, custom_fields);
-- The emergencies' KPIs over a window, answered from this index alone: it holds only the
-- escalations the KPIs count (the condition is `kpi_reads.EMERGENCIES`'s, word for word).
CREATE INDEX escalations_emergencies ON escalations (opened_at, id, drill, team, reference, title,
    severity, first_approved, first_paged, first_received, first_acknowledged, last_resolved,
    evidence_checked, evidence_complete, first_retro_opened, retro_url, retro_closed,
    retro_complete, spells, spells_ended, last_due_at, overdue_s, outcome, first_approval_requested)
    WHERE outcome = 'emergency' OR first_approval_requested IS NOT NULL;
-- The Tier 2 load's window of entries (`load_reads.LOAD_ENTRIES`), answered from these two
-- indexes alone, in time order: the load's entries with what the figures read of them, and
-- each escalation's reference and team.
CREATE INDEX timeline_load ON timeline (at, id, event, escalation_id, actor, details)
    WHERE event IN ('paged', 'page_assigned', 'page_escalated', 'page_reassigned', 'acknowledged', 'approval_requested', 'approved', 'declined', 'approval_timed_out');
CREATE INDEX escalations_refs ON escalations (id, drill, reference, team);
