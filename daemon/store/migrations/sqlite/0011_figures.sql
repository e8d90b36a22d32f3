-- The report's and the dashboard's figures from the escalations alone, so their aggregates scan
-- one narrow range of one table instead of joining every escalation's timeline and decoding
-- JSON. Written with the escalation and with each timeline entry (daemon/store/units.py):
--   decided_weekend    the stored decision's weekend flag, 1 or 0 (NULL: never decided; the
--                      reads judge those by the policy's business calendar)
--   decision_criteria  JSON array of the criteria the stored decision held
--   ever_emergency     1 once any `classified` entry said emergency
--   recorded_criteria  JSON array, the union of the criteria `classified` entries recorded
--                      (NULL while none recorded any: then decision_criteria counts)
--   first_<event>      the earliest `at` of that timeline event (NULL: never happened), for
--                      the report's events and `reopened`
--   dead_letters       how many `job.dead_lettered` entries the escalation has
-- Existing rows are filled from their data and timelines below.
ALTER TABLE escalations ADD COLUMN decided_weekend INTEGER;
ALTER TABLE escalations ADD COLUMN decision_criteria TEXT NOT NULL DEFAULT '[]';
ALTER TABLE escalations ADD COLUMN ever_emergency INTEGER NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN recorded_criteria TEXT;
ALTER TABLE escalations ADD COLUMN first_received REAL;
ALTER TABLE escalations ADD COLUMN first_approval_requested REAL;
ALTER TABLE escalations ADD COLUMN first_approved REAL;
ALTER TABLE escalations ADD COLUMN first_declined REAL;
ALTER TABLE escalations ADD COLUMN first_approval_timed_out REAL;
ALTER TABLE escalations ADD COLUMN first_paged REAL;
ALTER TABLE escalations ADD COLUMN first_acknowledged REAL;
ALTER TABLE escalations ADD COLUMN first_resolved REAL;
ALTER TABLE escalations ADD COLUMN first_retro_opened REAL;
ALTER TABLE escalations ADD COLUMN first_would_have_paged REAL;
ALTER TABLE escalations ADD COLUMN first_reopened REAL;
ALTER TABLE escalations ADD COLUMN dead_letters INTEGER NOT NULL DEFAULT 0;
UPDATE escalations SET
    decided_weekend = json_extract(data, '$.gate.decision.facts.weekend'),
    decision_criteria = (SELECT json_group_array(j.key)
                         FROM json_each(data, '$.gate.decision.facts.criteria') AS j
                         WHERE j.value = 1),
    ever_emergency = EXISTS (SELECT 1 FROM timeline t WHERE t.escalation_id = escalations.id
                             AND t.event = 'classified'
                             AND json_extract(t.details, '$.outcome') = 'emergency'),
    recorded_criteria = CASE WHEN EXISTS (SELECT 1 FROM timeline t
                                          WHERE t.escalation_id = escalations.id
                                          AND t.event = 'classified'
                                          AND json_type(t.details, '$.criteria') = 'array')
        THEN (SELECT json_group_array(DISTINCT j.value) FROM timeline t,
              json_each(t.details, '$.criteria') AS j
              WHERE t.escalation_id = escalations.id AND t.event = 'classified') END,
    first_received = (SELECT min(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'received'),
    first_approval_requested = (SELECT min(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'approval_requested'),
    first_approved = (SELECT min(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'approved'),
    first_declined = (SELECT min(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'declined'),
    first_approval_timed_out = (SELECT min(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'approval_timed_out'),
    first_paged = (SELECT min(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'paged'),
    first_acknowledged = (SELECT min(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'acknowledged'),
    first_resolved = (SELECT min(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'resolved'),
    first_retro_opened = (SELECT min(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'retro_opened'),
    first_would_have_paged = (SELECT min(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'would_have_paged'),
    first_reopened = (SELECT min(t.at) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'reopened'),
    dead_letters = (SELECT count(*) FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'job.dead_lettered');
-- Every column the figures read, in the window's order: the aggregates (for every team or one)
-- are answered from this index alone, never from the rows and their 1-2 kB of JSON.
CREATE INDEX escalations_figures ON escalations (opened_at, drill, team, outcome, state, decided_weekend,
    ever_emergency, dead_letters, first_received, first_approval_requested, first_approved,
    first_declined, first_approval_timed_out, first_paged, first_acknowledged, first_resolved,
    first_retro_opened, first_would_have_paged, first_reopened, recorded_criteria,
    decision_criteria, id);

-- Intake writes one statement per delivery: the job that processes a stored delivery is
-- inserted by this trigger, in the same statement and transaction, from the kind the endpoint
-- names (`job_kind`; NULL for a delivery decided at the door, which gets no job). Same key and
-- payload as before: `delivery:<id>`, {"delivery": <id>}.
ALTER TABLE deliveries ADD COLUMN job_kind TEXT;
CREATE TRIGGER deliveries_job AFTER INSERT ON deliveries WHEN NEW.job_kind IS NOT NULL
BEGIN
    INSERT INTO jobs (kind, key, payload, escalation_id, state, run_at, attempts, last_error,
                      created_at, updated_at)
    VALUES (NEW.job_kind, 'delivery:' || NEW.id, '{"delivery":' || NEW.id || '}', NULL,
            'queued', NEW.received_at, 0, '', NEW.received_at, NEW.received_at)
    ON CONFLICT (key) DO NOTHING;
END;
