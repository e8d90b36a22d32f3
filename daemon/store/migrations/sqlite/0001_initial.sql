-- All *_at columns are UNIX epoch seconds (UTC) as REAL: portable between SQLite and PostgreSQL
-- and cheap to compare in the job claim query.
CREATE TABLE escalations (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    state TEXT NOT NULL,
    outcome TEXT,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    opened_at REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (source, external_id)
);
CREATE INDEX escalations_opened ON escalations (opened_at);

CREATE TABLE timeline (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    escalation_id TEXT NOT NULL REFERENCES escalations (id),
    at REAL NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    details TEXT NOT NULL,
    once_key TEXT,
    UNIQUE (escalation_id, once_key)
);
CREATE INDEX timeline_escalation ON timeline (escalation_id, id);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    received_at REAL NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,
    escalation_id TEXT,
    note TEXT NOT NULL DEFAULT '',
    UNIQUE (source, delivery_id)
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    escalation_id TEXT,
    state TEXT NOT NULL,
    run_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    lease_owner TEXT,
    lease_until REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_state ON jobs (state);
