-- The Escalation Engineer step of each escalation offered to the EE rotation, one row each,
-- kept in step with the escalation's gate by every write (`Changes.ee`): what `report`, the
-- metrics, the dashboard and the rotation handoff read, without parsing each escalation.
CREATE TABLE ee_work (
    escalation_id TEXT PRIMARY KEY REFERENCES escalations (id),
    rotation TEXT NOT NULL,
    opened_at REAL NOT NULL,
    offered_at REAL NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    assigned_at REAL,
    outcome TEXT NOT NULL DEFAULT '',
    engineering INTEGER NOT NULL DEFAULT 0,
    is_open INTEGER NOT NULL DEFAULT 0,
    drill INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ee_work_opened ON ee_work (opened_at);
CREATE INDEX ee_work_open_owner ON ee_work (owner) WHERE is_open = 1;
