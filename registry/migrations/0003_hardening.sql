-- keel-registry schema 3: enrollment refusals, per-node event quotas, what the status page
-- shows kept beside the node (so that a page view reads no event body), one node per MAC.
ALTER TABLE nodes ADD COLUMN refusals BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN event_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN event_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN last_event TEXT;     -- the newest stored event, as one line
ALTER TABLE nodes ADD COLUMN progress TEXT;       -- "n/total" of the newest step that started
ALTER TABLE nodes ADD COLUMN install_result TEXT; -- the report's "result"
ALTER TABLE nodes ADD COLUMN boot_phase TEXT;     -- the first-boot report's "phase"
ALTER TABLE nodes ADD COLUMN max_seq BIGINT NOT NULL DEFAULT -1; -- the newest stored event's seq
ALTER TABLE nodes ADD COLUMN disk_serials TEXT;   -- the drive serials the profile pinned when armed (comma-separated)
ALTER TABLE events ADD COLUMN summary TEXT;       -- the event as one line (at most 240 characters)
UPDATE nodes SET event_count = (SELECT COUNT(*) FROM events e WHERE e.hostname = nodes.hostname),
    event_bytes = (SELECT COALESCE(SUM(LENGTH(e.body)), 0) FROM events e WHERE e.hostname = nodes.hostname),
    max_seq = COALESCE((SELECT MAX(e.seq) FROM events e WHERE e.hostname = nodes.hostname), -1);
-- two nodes armed with one MAC (a race schema 2 let through): the first host name keeps it
UPDATE nodes SET mac = NULL WHERE mac IS NOT NULL
    AND hostname <> (SELECT MIN(n2.hostname) FROM nodes n2 WHERE n2.mac = nodes.mac);
CREATE UNIQUE INDEX nodes_mac ON nodes (mac);
