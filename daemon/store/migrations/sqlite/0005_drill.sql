-- A rehearsal from `tier2gate drill` (1) is no escalation: every read the report and the
-- dashboard make leaves it out, so the flag is a column the queries can test.
ALTER TABLE escalations ADD COLUMN drill INTEGER NOT NULL DEFAULT 0;
