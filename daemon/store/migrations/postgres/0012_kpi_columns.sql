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
ALTER TABLE escalations ADD COLUMN last_resolved DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN evidence_checked SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN evidence_complete SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN retro_url TEXT;
ALTER TABLE escalations ADD COLUMN retro_closed SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN retro_complete SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN spells INTEGER NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN spells_ended INTEGER NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN last_due_at DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN overdue_s DOUBLE PRECISION NOT NULL DEFAULT 0;
UPDATE escalations SET
    customer = data::jsonb #>> '{escalation,customer}',
    custom_fields = COALESCE((data::jsonb #> '{escalation,fields}')::text, '{}'),
    reference = COALESCE(data::jsonb #>> '{escalation,reference}', ''),
    title = COALESCE(data::jsonb #>> '{escalation,title}', ''),
    severity = COALESCE(data::jsonb #>> '{gate,decision,facts,severity}', ''),
    last_resolved = (SELECT max(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'resolved'),
    evidence_checked = CASE WHEN EXISTS (SELECT 1 FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'approval_requested' AND (t.details::jsonb -> 'evidence') IS NOT NULL) THEN 1 ELSE 0 END,
    evidence_complete = CASE WHEN EXISTS (SELECT 1 FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'approval_requested' AND (t.details::jsonb #>> '{evidence,complete}') = 'true') THEN 1 ELSE 0 END,
    retro_url = (SELECT max((t.details::jsonb ->> 'url')) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'retro_opened'),
    retro_closed = CASE WHEN EXISTS (SELECT 1 FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'retro_closed') THEN 1 ELSE 0 END,
    retro_complete = CASE WHEN EXISTS (SELECT 1 FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'retro_closed' AND (t.details::jsonb #>> '{complete}') = 'true') THEN 1 ELSE 0 END,
    spells = (SELECT count(*) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'update_overdue'),
    spells_ended = (SELECT count(*) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'update_resumed'),
    last_due_at = (SELECT max((t.details::jsonb ->> 'due_at')::float8) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'update_overdue'),
    overdue_s = COALESCE((SELECT sum((t.details::jsonb ->> 'overdue_s')::float8) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'update_resumed'), 0);
-- The windows of the KPIs and the Tier 2 load. Unlike SQLite's, these indexes hold no text
-- of unbounded length (a title, a customer, custom fields, a timeline entry's details): a
-- B-tree entry over PostgreSQL's size limit would make writing the escalation fail. The rows
-- found are read from the table.
CREATE INDEX escalations_drivers ON escalations (opened_at, drill, outcome);
CREATE INDEX escalations_emergencies ON escalations (opened_at, id)
    WHERE outcome = 'emergency' OR first_approval_requested IS NOT NULL;
CREATE INDEX timeline_load ON timeline (at, id)
    WHERE event IN ('paged', 'page_assigned', 'page_escalated', 'page_reassigned', 'acknowledged', 'approval_requested', 'approved', 'declined', 'approval_timed_out');
