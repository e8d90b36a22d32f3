-- The Escalation Engineer step of each escalation offered to the EE rotation, one row each,
-- kept in step with the escalation's gate by every write (`Changes.ee`): what `report`, the
-- metrics, the dashboard and the rotation handoff read, without parsing each escalation.
CREATE TABLE ee_work (
    escalation_id TEXT PRIMARY KEY REFERENCES escalations (id),
    rotation TEXT NOT NULL,
    opened_at DOUBLE PRECISION NOT NULL,
    offered_at DOUBLE PRECISION NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    assigned_at DOUBLE PRECISION,
    outcome TEXT NOT NULL DEFAULT '',
    engineering SMALLINT NOT NULL DEFAULT 0,
    is_open SMALLINT NOT NULL DEFAULT 0,
    drill SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX ee_work_opened ON ee_work (opened_at);
CREATE INDEX ee_work_open_owner ON ee_work (owner) WHERE is_open = 1;
