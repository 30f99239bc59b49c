//! The registry's database: one portable schema on SQLite (the default, a single file in WAL
//! mode) or PostgreSQL, reached through sqlx's `Any` driver so that every query is written once.
//! Queries use `$1, $2, ...` placeholders in order of first use, which both databases accept.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// Schema migrations, applied in order on start; each runs once (recorded in `schema_migrations`).
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_first_boot.sql")),
    (3, include_str!("../migrations/0003_hardening.sql")),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database {url}: {why}")]
    Open { url: String, why: String },
    /// Another node holds the MAC (the unique index on `nodes.mac` refused it).
    #[error("the MAC belongs to another node")]
    MacTaken,
    /// The node's stored events would pass its quota.
    #[error("the node's events would pass its quota of {events} events or {bytes} bytes")]
    Quota { events: i64, bytes: i64 },
}

/// A database URL as it may be printed: the password of `postgres://user:PASSWORD@host` is
/// replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(x) => x,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A node as the registry keeps it (secrets only as hashes).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Node {
    pub hostname: String,
    pub profile: String,
    pub mac: Option<String>,
    pub dmi_serial: Option<String>,
    /// The drive serials its profile pinned when it was armed: part of what it is bound to.
    pub disk_serials: Vec<String>,
    pub pxe: bool,
    #[serde(skip)]
    pub token_hash: Option<String>,
    pub token_expires_at: Option<i64>,
    pub token_used_at: Option<i64>,
    #[serde(skip)]
    pub secret_hash: Option<String>,
    pub state: String,
    pub step: Option<String>,
    pub created_at: i64,
    pub enrolled_at: Option<i64>,
    pub last_event_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub booted_at: Option<i64>,
    /// Events stored for the current install, and their bytes (the quota counts these).
    pub events: i64,
    pub event_bytes: i64,
    /// Enrollments refused for a hardware mismatch since the node was armed.
    pub refusals: i64,
    /// The newest stored event as one line, the progress "n/total", the install's result and
    /// the first boot's phase: what the status page shows, without reading an event body.
    pub last_event: Option<String>,
    pub progress: Option<String>,
    pub install_result: Option<String>,
    pub boot_phase: Option<String>,
}

const NODE_COLUMNS: &str = "hostname, profile, mac, dmi_serial, disk_serials, pxe, token_hash, token_expires_at, token_used_at, \
    secret_hash, state, step, created_at, enrolled_at, last_event_at, finished_at, booted_at, event_count, event_bytes, \
    refusals, last_event, progress, install_result, boot_phase";

impl Node {
    /// Armed as a PXE node (no token) and inside its enrollment window at `now`.
    pub fn pxe_window_open(&self, now: i64) -> bool {
        self.pxe && self.state == "waiting" && self.token_hash.is_none() && self.token_expires_at.is_some_and(|t| t >= now)
    }
}

fn node_from(r: &AnyRow) -> Result<Node, sqlx::Error> {
    Ok(Node {
        hostname: r.try_get("hostname")?,
        profile: r.try_get("profile")?,
        mac: r.try_get("mac")?,
        dmi_serial: r.try_get("dmi_serial")?,
        disk_serials: r.try_get::<Option<String>, _>("disk_serials")?.map(|s| s.split(',').filter(|x| !x.is_empty()).map(String::from).collect()).unwrap_or_default(),
        pxe: r.try_get::<i64, _>("pxe")? != 0,
        token_hash: r.try_get("token_hash")?,
        token_expires_at: r.try_get("token_expires_at")?,
        token_used_at: r.try_get("token_used_at")?,
        secret_hash: r.try_get("secret_hash")?,
        state: r.try_get("state")?,
        step: r.try_get("step")?,
        created_at: r.try_get("created_at")?,
        enrolled_at: r.try_get("enrolled_at")?,
        last_event_at: r.try_get("last_event_at")?,
        finished_at: r.try_get("finished_at")?,
        booted_at: r.try_get("booted_at")?,
        events: r.try_get("event_count")?,
        event_bytes: r.try_get("event_bytes")?,
        refusals: r.try_get("refusals")?,
        last_event: r.try_get("last_event")?,
        progress: r.try_get("progress")?,
        install_result: r.try_get("install_result")?,
        boot_phase: r.try_get("boot_phase")?,
    })
}

/// A stored profile or hardware spec.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Document {
    pub kind: String,
    pub name: String,
    #[serde(skip)]
    pub body: String,
    pub sha256: String,
    pub uploaded_at: i64,
}

/// An event as `add_events` stores it: its body, its one-line summary, and what it moves the
/// node to when it is the newest stored ("installing" with its step, "failed", ...).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub seq: i64,
    pub body: String,
    pub summary: String,
    pub state: &'static str,
    pub step: Option<String>,
    /// "n/total" when the event carries them.
    pub progress: Option<String>,
}

/// How many events, and bytes of event bodies, one install may store.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub events: i64,
    pub bytes: i64,
}

/// The SQLite database and its WAL and shared-memory files readable by their owner only: they
/// hold every cluster's root key. SQLite creates `-wal` and `-shm` with the database file's
/// permissions, so the file is created 0600 before SQLite opens it; files an older registry
/// left wider are narrowed.
fn private_sqlite_files(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.as_os_str().is_empty() || path.to_str() == Some(":memory:") {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(m) = std::fs::metadata(&f) {
            if m.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).map_err(|e| format!("making {} private (0600): {e}", f.display()))?;
            }
        }
    }
    Ok(())
}

/// What a new node is bound to when its enrollment token is issued.
#[derive(Debug, Clone)]
pub struct NewNode {
    pub hostname: String,
    pub profile: String,
    pub mac: Option<String>,
    pub dmi_serial: Option<String>,
    /// The drive serials the profile pins (`disks.serials`), kept with the node when it is
    /// armed, so that an enrollment checks them without reading the profile.
    pub disk_serials: Vec<String>,
    pub pxe: bool,
}

/// Reads go through `pool`; writes through `writer`. On SQLite, which takes one writer at a
/// time, `writer` is one connection: writers queue for it in order (an async wait) instead of
/// colliding on the database lock and sleeping in SQLite's busy handler. (The load bench shows
/// no throughput change either way on 2 cores, where HTTP and JSON bound it; what it buys is
/// the order, and no writer waiting out a busy timeout.) On PostgreSQL both are the same pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    writer: AnyPool,
    pub backend: &'static str,
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates. `url`: `sqlite:PATH` or
    /// `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            private_sqlite_files(std::path::Path::new(path)).map_err(|why| StoreError::Open { url: url.into(), why })?;
            (format!("sqlite://{path}?mode=rwc"), "sqlite")
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (url.to_string(), "postgres")
        } else {
            return Err(StoreError::Open { url: redact_url(url), why: "expected sqlite:PATH or postgres://...".into() });
        };
        let connect = |max: u32| {
            let url = url.clone();
            async move {
                AnyPoolOptions::new()
                    .max_connections(max)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            if backend == "sqlite" {
                                // a reader meeting a checkpoint waits instead of failing
                                sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                                sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await
                    .map_err(|e| StoreError::Open { url: redact_url(&url), why: e.to_string().replace(url.as_str(), &redact_url(&url)) })
            }
        };
        let (pool, writer) = if backend == "sqlite" {
            let writer = connect(1).await?;
            sqlx::query("PRAGMA journal_mode = WAL").execute(&writer).await?;
            (connect(4).await?, writer)
        } else {
            let pool = connect(16).await?;
            (pool.clone(), pool)
        };
        let store = Store { pool, writer, backend };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(&self.writer)
            .await?;
        for (version, sql) in MIGRATIONS {
            let mut tx = self.writer.begin().await?;
            let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1").bind(*version).fetch_optional(&mut *tx).await?;
            if done.is_some() {
                continue;
            }
            for statement in sql.split(';').map(|s| strip_comments(s)).filter(|s| !s.trim().is_empty()) {
                sqlx::query(&statement).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)").bind(*version).bind(now()).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    pub async fn put_document(&self, kind: &str, name: &str, body: &str, sha256: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO documents (kind, name, body, sha256, uploaded_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, sha256 = excluded.sha256, uploaded_at = excluded.uploaded_at",
        )
        .bind(kind)
        .bind(name)
        .bind(body)
        .bind(sha256)
        .bind(now())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn document(&self, kind: &str, name: &str) -> Result<Option<Document>, StoreError> {
        let row = sqlx::query("SELECT kind, name, body, sha256, uploaded_at FROM documents WHERE kind = $1 AND name = $2")
            .bind(kind)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| doc_from(&r)).transpose().map_err(Into::into)
    }

    pub async fn documents(&self, kind: &str) -> Result<Vec<Document>, StoreError> {
        let rows = sqlx::query("SELECT kind, name, body, sha256, uploaded_at FROM documents WHERE kind = $1 ORDER BY name")
            .bind(kind)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(doc_from).collect::<Result<_, _>>().map_err(Into::into)
    }

    /// Creates the node or re-arms it (a rebuild): state "waiting" with a new token (or, for a
    /// PXE node, none: `token_hash` None, the enrollment window closing at `expires_at`); the
    /// previous install's events, reports and refusals are dropped (the new install numbers its
    /// events from 1). A MAC another node holds is refused by the unique index, atomically:
    /// [`StoreError::MacTaken`].
    pub async fn arm_node(&self, n: &NewNode, token_hash: Option<&str>, expires_at: i64) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM events WHERE hostname = $1").bind(&n.hostname).execute(&mut *tx).await?;
        let r = sqlx::query(
            "INSERT INTO nodes (hostname, profile, mac, dmi_serial, pxe, token_hash, token_expires_at, state, created_at, disk_serials) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'waiting', $8, $9) \
             ON CONFLICT (hostname) DO UPDATE SET profile = excluded.profile, mac = excluded.mac, dmi_serial = excluded.dmi_serial, \
             disk_serials = excluded.disk_serials, \
             pxe = excluded.pxe, token_hash = excluded.token_hash, token_expires_at = excluded.token_expires_at, \
             token_used_at = NULL, secret_hash = NULL, state = 'waiting', step = NULL, finished_at = NULL, report = NULL, \
             boot_report = NULL, booted_at = NULL, enrolled_at = NULL, refusals = 0, event_count = 0, event_bytes = 0, \
             last_event = NULL, progress = NULL, install_result = NULL, boot_phase = NULL, max_seq = -1",
        )
        .bind(&n.hostname)
        .bind(&n.profile)
        .bind(n.mac.as_deref())
        .bind(n.dmi_serial.as_deref())
        .bind(n.pxe as i64)
        .bind(token_hash)
        .bind(expires_at)
        .bind(now())
        .bind(n.disk_serials.join(","))
        .execute(&mut *tx)
        .await;
        match r {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(StoreError::MacTaken),
            r => r?,
        };
        tx.commit().await?;
        Ok(())
    }

    /// Counts an enrollment refused for a hardware mismatch; the `max`-th spends the token and
    /// closes a PXE window (state "locked": the operator arms the node again). Returns the
    /// refusals so far and whether the node is now locked.
    pub async fn refuse(&self, hostname: &str, max: i64) -> Result<(i64, bool), StoreError> {
        sqlx::query(
            "UPDATE nodes SET refusals = refusals + 1, \
             token_hash = CASE WHEN refusals + 1 >= $1 THEN NULL ELSE token_hash END, \
             state = CASE WHEN refusals + 1 >= $1 THEN 'locked' ELSE state END \
             WHERE hostname = $2 AND state = 'waiting'",
        )
        .bind(max)
        .bind(hostname)
        .execute(&self.writer)
        .await?;
        let row = sqlx::query("SELECT refusals, state FROM nodes WHERE hostname = $1").bind(hostname).fetch_one(&self.pool).await?;
        let state: String = row.try_get("state")?;
        Ok((row.try_get("refusals")?, state == "locked"))
    }

    /// The node whose `column` equals `value` (the first one found: only the hostname is unique).
    async fn node_where(&self, column: &'static str, value: &str) -> Result<Option<Node>, StoreError> {
        let row = sqlx::query(&format!("SELECT {NODE_COLUMNS} FROM nodes WHERE {column} = $1")).bind(value).fetch_optional(&self.pool).await?;
        row.map(|r| node_from(&r)).transpose().map_err(Into::into)
    }

    pub async fn node(&self, hostname: &str) -> Result<Option<Node>, StoreError> {
        self.node_where("hostname", hostname).await
    }

    pub async fn node_by_token(&self, token_hash: &str) -> Result<Option<Node>, StoreError> {
        self.node_where("token_hash", token_hash).await
    }

    pub async fn node_by_mac(&self, mac: &str) -> Result<Option<Node>, StoreError> {
        self.node_where("mac", mac).await
    }

    pub async fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY hostname")).fetch_all(&self.pool).await?;
        rows.iter().map(node_from).collect::<Result<_, _>>().map_err(Into::into)
    }

    /// Spends the enrollment token and stores the node's secret, in one statement that only
    /// succeeds while the token is unused: two racing enrollments cannot both win.
    pub async fn enroll(&self, hostname: &str, token_hash: &str, secret_hash: &str) -> Result<bool, StoreError> {
        let at = now();
        let done = sqlx::query(
            "UPDATE nodes SET token_used_at = $1, secret_hash = $2, state = 'enrolled', enrolled_at = $1, last_event_at = $1 \
             WHERE hostname = $3 AND token_hash = $4 AND token_used_at IS NULL",
        )
        .bind(at)
        .bind(secret_hash)
        .bind(hostname)
        .bind(token_hash)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A PXE node's enrollment, without a token: only while it is armed as a PXE node and its
    /// window is open, in one statement (two racing enrollments cannot both win).
    pub async fn enroll_pxe(&self, hostname: &str, secret_hash: &str) -> Result<bool, StoreError> {
        let at = now();
        let done = sqlx::query(
            "UPDATE nodes SET token_used_at = $1, secret_hash = $2, state = 'enrolled', enrolled_at = $1, last_event_at = $1 \
             WHERE hostname = $3 AND pxe = 1 AND state = 'waiting' AND token_hash IS NULL AND token_used_at IS NULL AND token_expires_at >= $1",
        )
        .bind(at)
        .bind(secret_hash)
        .bind(hostname)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a batch of events; a sequence number already stored is left alone. The batch is
    /// refused whole ([`StoreError::Quota`]) when the node's stored events would pass `quota`.
    /// The node's state, step, last event and progress follow the newest *stored* event, and
    /// only when this batch stored it. Returns how many were new.
    pub async fn add_events(&self, hostname: &str, events: &[NewEvent], quota: Quota) -> Result<u64, StoreError> {
        let at = now();
        let mut tx = self.writer.begin().await?;
        let mut stored: Vec<&NewEvent> = Vec::new();
        for e in events {
            let r = sqlx::query("INSERT INTO events (hostname, seq, received_at, body, summary) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hostname, seq) DO NOTHING")
                .bind(hostname)
                .bind(e.seq)
                .bind(at)
                .bind(e.body.as_str())
                .bind(e.summary.as_str())
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 1 {
                stored.push(e);
            }
        }
        let bytes: i64 = stored.iter().map(|e| e.body.len() as i64).sum();
        // one statement: the counters within the quota, and the state of the newest stored
        // event when this batch stored one newer than any before (max_seq)
        let newest = stored.iter().max_by_key(|e| e.seq);
        let progress = stored.iter().filter(|e| e.progress.is_some()).max_by_key(|e| e.seq).and_then(|e| e.progress.as_deref());
        let counted = sqlx::query(
            "UPDATE nodes SET event_count = event_count + $1, event_bytes = event_bytes + $2, last_event_at = $3, \
             state = CASE WHEN $7 > max_seq THEN $8 ELSE state END, \
             step = CASE WHEN $7 > max_seq THEN COALESCE($9, step) ELSE step END, \
             last_event = CASE WHEN $7 > max_seq THEN $10 ELSE last_event END, \
             progress = CASE WHEN $7 > max_seq THEN COALESCE($11, progress) ELSE progress END, \
             max_seq = CASE WHEN $7 > max_seq THEN $7 ELSE max_seq END \
             WHERE hostname = $4 AND event_count + $1 <= $5 AND event_bytes + $2 <= $6",
        )
        .bind(stored.len() as i64)
        .bind(bytes)
        .bind(at)
        .bind(hostname)
        .bind(quota.events)
        .bind(quota.bytes)
        .bind(newest.map(|e| e.seq).unwrap_or(-1))
        .bind(newest.map(|e| e.state).unwrap_or("installing"))
        .bind(newest.and_then(|e| e.step.as_deref()))
        .bind(newest.map(|e| e.summary.as_str()))
        .bind(progress)
        .execute(&mut *tx)
        .await?;
        if counted.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::Quota { events: quota.events, bytes: quota.bytes });
        }
        tx.commit().await?;
        Ok(stored.len() as u64)
    }

    /// Events of a node in sequence order, from `after` (exclusive).
    pub async fn events(&self, hostname: &str, after: i64, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query("SELECT seq, body FROM events WHERE hostname = $1 AND seq > $2 ORDER BY seq LIMIT $3")
            .bind(hostname)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("seq")?, r.try_get("body")?))).collect::<Result<_, sqlx::Error>>().map_err(Into::into)
    }

    /// A page of a node's events as the status page shows them: sequence number, time received
    /// and the one-line summary (never the body; an event stored before schema 3 shows the
    /// first 240 characters of its body).
    pub async fn event_lines(&self, hostname: &str, offset: i64, limit: i64) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, received_at, COALESCE(summary, SUBSTR(body, 1, 240)) AS line FROM events WHERE hostname = $1 ORDER BY seq LIMIT $2 OFFSET $3",
        )
        .bind(hostname)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("seq")?, r.try_get("received_at")?, r.try_get("line")?))).collect::<Result<_, sqlx::Error>>().map_err(Into::into)
    }

    pub async fn event_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM events").fetch_one(&self.pool).await?.try_get("n")?)
    }

    pub async fn set_report(&self, hostname: &str, report: &str, state: &str, result: &str) -> Result<(), StoreError> {
        let at = now();
        sqlx::query("UPDATE nodes SET report = $1, state = $2, finished_at = $3, last_event_at = $3, install_result = $5 WHERE hostname = $4")
            .bind(report)
            .bind(state)
            .bind(at)
            .bind(hostname)
            .bind(result)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn report(&self, hostname: &str) -> Result<Option<String>, StoreError> {
        self.text_column("report", hostname).await
    }

    /// The first boot's report (replaced by each newer one) and the state it moves the node to.
    pub async fn set_boot_report(&self, hostname: &str, report: &str, state: &str, phase: &str) -> Result<(), StoreError> {
        let at = now();
        sqlx::query("UPDATE nodes SET boot_report = $1, state = $2, booted_at = COALESCE(booted_at, $3), last_event_at = $3, boot_phase = $5 WHERE hostname = $4")
            .bind(report)
            .bind(state)
            .bind(at)
            .bind(hostname)
            .bind(phase)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// An event the node sends after its install (`disk-replaced`): numbered after every event
    /// the node has, stored once (the same body again is a retry), the node's state unchanged.
    /// Returns whether it was new.
    pub async fn add_node_event(&self, hostname: &str, body: &str, summary: &str) -> Result<bool, StoreError> {
        let at = now();
        let mut tx = self.writer.begin().await?;
        let r = sqlx::query(
            "INSERT INTO events (hostname, seq, received_at, body, summary) \
             SELECT $1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE hostname = $1), $2, $3, $4 \
             WHERE NOT EXISTS (SELECT 1 FROM events WHERE hostname = $1 AND body = $3)",
        )
        .bind(hostname)
        .bind(at)
        .bind(body)
        .bind(summary)
        .execute(&mut *tx)
        .await?;
        let added = r.rows_affected() == 1;
        if added {
            sqlx::query(
                "UPDATE nodes SET event_count = event_count + 1, event_bytes = event_bytes + $1, last_event_at = $2, last_event = $3, \
                 max_seq = (SELECT MAX(seq) FROM events WHERE hostname = $4) WHERE hostname = $4",
            )
            .bind(body.len() as i64)
            .bind(at)
            .bind(summary)
            .bind(hostname)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    pub async fn boot_report(&self, hostname: &str) -> Result<Option<String>, StoreError> {
        self.text_column("boot_report", hostname).await
    }

    async fn text_column(&self, column: &'static str, hostname: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(&format!("SELECT {column} FROM nodes WHERE hostname = $1")).bind(hostname).fetch_optional(&self.pool).await?;
        Ok(match row {
            Some(r) => r.try_get(column)?,
            None => None,
        })
    }
}

fn doc_from(r: &AnyRow) -> Result<Document, sqlx::Error> {
    Ok(Document {
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        body: r.try_get("body")?,
        sha256: r.try_get("sha256")?,
        uploaded_at: r.try_get("uploaded_at")?,
    })
}

fn strip_comments(sql: &str) -> String {
    sql.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}
