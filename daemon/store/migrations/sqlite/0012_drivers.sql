-- What the KPIs' drivers (top customers and services) read from each escalation, so they scan
-- one narrow index range instead of parsing every escalation's `data`. Written with the
-- escalation (daemon/store/units.py, `_driver_columns`), as the source described it:
--   customer       `escalation.customer` (NULL when the stored escalation has none)
--   custom_fields  `escalation.fields` as a JSON object (display name -> value); the service
--                  fields the KPIs read are chosen by configuration at read time
-- Existing rows are filled from their data below.
ALTER TABLE escalations ADD COLUMN customer TEXT;
ALTER TABLE escalations ADD COLUMN custom_fields TEXT NOT NULL DEFAULT '{}';
UPDATE escalations SET
    customer = json_extract(data, '$.escalation.customer'),
    custom_fields = COALESCE(json_extract(data, '$.escalation.fields'), '{}');
-- The drivers' window, answered from the index alone.
CREATE INDEX escalations_drivers ON escalations (opened_at, drill, outcome, customer, custom_fields);
