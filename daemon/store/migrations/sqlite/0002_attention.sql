-- An escalation that needs a person: an effect failed for good or keeps failing (a page that
-- did not go out, an approval channel that refuses the bot). 1 or 0, kept with the gate's
-- `problems` so the dashboard and the gauge find them without reading every escalation.
ALTER TABLE escalations ADD COLUMN attention INTEGER NOT NULL DEFAULT 0;
CREATE INDEX escalations_attention ON escalations (opened_at) WHERE attention = 1;
