-- The Tier 2 load's facts, kept as they are written so the load reads one row per page
-- reached instead of decoding every page entry of the window (daemon/reporting/load.py):
--   tier2_reaches    one row per responder a page of an escalation reached (a reopened
--                    emergency paged again reaches them again: `page` counts the pages),
--                    with their name and time zone as PagerDuty gave them, when they were
--                    reached and when they acknowledged; rewritten for the escalation by
--                    `units._count_event` whenever one of its page entries is written
--   approval_held    1 once an `approval_timed_out` entry held the page (fallback "hold"):
--                    with 0011's first times it marks an avoided page
--   reaches_due      1 while the escalation's `tier2_reaches` rows are still to be computed:
--                    set below for every escalation with a page entry, cleared by the store
--                    when it opens (`units.refresh_due_reaches`, the same Python rule as the
--                    writes: who a page reached is not a query over the entries)
CREATE TABLE tier2_reaches (
    escalation_id TEXT NOT NULL REFERENCES escalations (id),
    page INTEGER NOT NULL,
    responder_id TEXT NOT NULL,
    responder TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    acknowledged_at DOUBLE PRECISION,
    PRIMARY KEY (escalation_id, page, responder_id)
);
CREATE INDEX tier2_reaches_at ON tier2_reaches (at);
ALTER TABLE escalations ADD COLUMN approval_held SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN reaches_due SMALLINT NOT NULL DEFAULT 0;
UPDATE escalations SET
    approval_held = CASE WHEN EXISTS (SELECT 1 FROM timeline t WHERE t.escalation_id = escalations.id AND t.event = 'approval_timed_out' AND (t.details::jsonb ->> 'fallback') = 'hold') THEN 1 ELSE 0 END,
    reaches_due = CASE WHEN EXISTS (SELECT 1 FROM timeline t WHERE t.escalation_id = escalations.id AND t.event IN ('paged', 'page_assigned', 'page_escalated', 'page_reassigned', 'acknowledged')) THEN 1 ELSE 0 END;
-- The avoided pages of a window: asked, declined or held, never paged.
CREATE INDEX escalations_avoided ON escalations (first_approval_requested)
    WHERE first_paged IS NULL AND (first_declined IS NOT NULL OR approval_held = 1);
CREATE INDEX escalations_reaches_due ON escalations (id) WHERE reaches_due = 1;
