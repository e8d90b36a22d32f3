-- Follow-through reads every few minutes: the open retros (a `retro_opened` entry without a
-- `retro_closed` one) and the open quiet spells of active emergencies (`update_overdue` without
-- its `update_resumed`). Both start from the few entries of one event name, not from every
-- escalation, so they stay flat as the store grows; the KPIs read the same entries.
CREATE INDEX timeline_event ON timeline (event, escalation_id);
