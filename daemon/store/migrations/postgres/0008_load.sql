-- The Tier 2 load figures read the page, acknowledgement and decision entries of a window by
-- their own time: one range per event name instead of a scan of the whole timeline.
CREATE INDEX timeline_event_at ON timeline (event, at);
