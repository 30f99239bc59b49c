-- keel-registry schema 2: what the installed node reports from its first boot
-- (host keys, cluster step), kept apart from the install report.
ALTER TABLE nodes ADD COLUMN boot_report TEXT;
ALTER TABLE nodes ADD COLUMN booted_at BIGINT;
