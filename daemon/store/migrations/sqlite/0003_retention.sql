-- Retention (`tier2gate prune` and the periodic `prune` job) deletes by age: these keep each
-- pass to the rows it removes instead of a scan of the whole table.
CREATE INDEX deliveries_received ON deliveries (received_at);
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state IN ('done', 'dead');
CREATE INDEX escalations_updated ON escalations (updated_at);
