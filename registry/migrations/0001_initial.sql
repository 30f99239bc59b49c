-- keel-registry schema 1. Portable SQL: the same text runs on SQLite and PostgreSQL.
CREATE TABLE documents (
    kind TEXT NOT NULL,            -- 'profile' or 'spec'
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE nodes (
    hostname TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    mac TEXT,
    dmi_serial TEXT,
    pxe BIGINT NOT NULL,           -- 1: /ipxe/{mac} may hand out a boot script with a fresh token
    token_hash TEXT,
    token_expires_at BIGINT,
    token_used_at BIGINT,
    secret_hash TEXT,
    state TEXT NOT NULL,
    step TEXT,
    created_at BIGINT NOT NULL,
    enrolled_at BIGINT,
    last_event_at BIGINT,
    finished_at BIGINT,
    report TEXT
);
CREATE INDEX nodes_token ON nodes (token_hash);
CREATE TABLE events (
    hostname TEXT NOT NULL,
    seq BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (hostname, seq)
);
