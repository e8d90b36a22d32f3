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
ALTER TABLE escalations ADD COLUMN decided_weekend SMALLINT;
ALTER TABLE escalations ADD COLUMN decision_criteria TEXT NOT NULL DEFAULT '[]';
ALTER TABLE escalations ADD COLUMN ever_emergency SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN recorded_criteria TEXT;
ALTER TABLE escalations ADD COLUMN first_received DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN first_approval_requested DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN first_approved DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN first_declined DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN first_approval_timed_out DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN first_paged DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN first_acknowledged DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN first_resolved DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN first_retro_opened DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN first_would_have_paged DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN first_reopened DOUBLE PRECISION;
ALTER TABLE escalations ADD COLUMN dead_letters INTEGER NOT NULL DEFAULT 0;
UPDATE escalations SET
    decided_weekend = ((data::jsonb #>> '{gate,decision,facts,weekend}')::boolean)::int,
    decision_criteria = COALESCE((SELECT json_agg(j.key ORDER BY j.key)::text
                                  FROM jsonb_each(CASE WHEN jsonb_typeof(data::jsonb #> '{gate,decision,facts,criteria}') = 'object'
                                                  THEN data::jsonb #> '{gate,decision,facts,criteria}' END) AS j
                                  WHERE j.value = 'true'::jsonb), '[]'),
    ever_emergency = CASE WHEN EXISTS (SELECT 1 FROM timeline t
                                       WHERE t.escalation_id = escalations.id
                                       AND t.event = 'classified'
                                       AND (t.details::jsonb ->> 'outcome') = 'emergency')
                     THEN 1 ELSE 0 END,
    recorded_criteria = CASE WHEN EXISTS (SELECT 1 FROM timeline t
                                          WHERE t.escalation_id = escalations.id
                                          AND t.event = 'classified'
                                          AND jsonb_typeof(t.details::jsonb -> 'criteria') = 'array')
        THEN (SELECT COALESCE(json_agg(DISTINCT j.c)::text, '[]') FROM timeline t,
              jsonb_array_elements_text(CASE WHEN jsonb_typeof(t.details::jsonb -> 'criteria') = 'array'
                                        THEN t.details::jsonb -> 'criteria' END) AS j (c)
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

-- The kind of job that processes a stored delivery (NULL: decided at the door, no job). On
-- PostgreSQL intake inserts the delivery and its job in one statement (daemon/store/units.py).
ALTER TABLE deliveries ADD COLUMN job_kind TEXT;
