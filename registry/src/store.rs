//! The registry's database: one portable schema on SQLite (the default, a single file in WAL
//! mode) or PostgreSQL, reached through sqlx's `Any` driver so that every query is written once.
//! Queries use `$1, $2, ...` placeholders in order of first use, which both databases accept.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// Schema migrations, applied in order on start; each runs once (recorded in `schema_migrations`).
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/0001_initial.sql")), (2, include_str!("../migrations/0002_first_boot.sql"))];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database {url}: {why}")]
    Open { url: String, why: String },
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
    pub events: i64,
}

const NODE_COLUMNS: &str = "hostname, profile, mac, dmi_serial, pxe, token_hash, token_expires_at, token_used_at, \
    secret_hash, state, step, created_at, enrolled_at, last_event_at, finished_at, booted_at, \
    (SELECT COUNT(*) FROM events e WHERE e.hostname = nodes.hostname) AS events";

fn node_from(r: &AnyRow) -> Result<Node, sqlx::Error> {
    Ok(Node {
        hostname: r.try_get("hostname")?,
        profile: r.try_get("profile")?,
        mac: r.try_get("mac")?,
        dmi_serial: r.try_get("dmi_serial")?,
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
        events: r.try_get("events")?,
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

/// What a new node is bound to when its enrollment token is issued.
#[derive(Debug, Clone)]
pub struct NewNode {
    pub hostname: String,
    pub profile: String,
    pub mac: Option<String>,
    pub dmi_serial: Option<String>,
    pub pxe: bool,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    pub backend: &'static str,
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates. `url`: `sqlite:PATH` or
    /// `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            (format!("sqlite://{path}?mode=rwc"), "sqlite")
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (url.to_string(), "postgres")
        } else {
            return Err(StoreError::Open { url: url.into(), why: "expected sqlite:PATH or postgres://...".into() });
        };
        let max = if backend == "sqlite" { 4 } else { 16 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == "sqlite" {
                        // one writer at a time: wait for it instead of failing
                        sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| StoreError::Open { url: url.clone(), why: e.to_string() })?;
        if backend == "sqlite" {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(&self.pool)
            .await?;
        for (version, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
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
        .execute(&self.pool)
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

    /// Creates the node or re-arms it (a rebuild): a new token, state "waiting"; the previous
    /// install's events and report are dropped (the new install numbers its events from 1).
    pub async fn arm_node(&self, n: &NewNode, token_hash: &str, expires_at: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM events WHERE hostname = $1").bind(&n.hostname).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO nodes (hostname, profile, mac, dmi_serial, pxe, token_hash, token_expires_at, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'waiting', $8) \
             ON CONFLICT (hostname) DO UPDATE SET profile = excluded.profile, mac = excluded.mac, dmi_serial = excluded.dmi_serial, \
             pxe = excluded.pxe, token_hash = excluded.token_hash, token_expires_at = excluded.token_expires_at, \
             token_used_at = NULL, secret_hash = NULL, state = 'waiting', step = NULL, finished_at = NULL, report = NULL, \
             boot_report = NULL, booted_at = NULL",
        )
        .bind(&n.hostname)
        .bind(&n.profile)
        .bind(n.mac.as_deref())
        .bind(n.dmi_serial.as_deref())
        .bind(n.pxe as i64)
        .bind(token_hash)
        .bind(expires_at)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A fresh token for a node (the PXE path issues one per boot script).
    pub async fn set_token(&self, hostname: &str, token_hash: &str, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET token_hash = $1, token_expires_at = $2, token_used_at = NULL WHERE hostname = $3")
            .bind(token_hash)
            .bind(expires_at)
            .bind(hostname)
            .execute(&self.pool)
            .await?;
        Ok(())
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
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores events; a sequence number already stored is left alone. Returns how many were new.
    pub async fn add_events(&self, hostname: &str, events: &[(i64, String)], state: Option<(&str, Option<&str>)>) -> Result<u64, StoreError> {
        let at = now();
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for (seq, body) in events {
            let r = sqlx::query("INSERT INTO events (hostname, seq, received_at, body) VALUES ($1, $2, $3, $4) ON CONFLICT (hostname, seq) DO NOTHING")
                .bind(hostname)
                .bind(*seq)
                .bind(at)
                .bind(body.as_str())
                .execute(&mut *tx)
                .await?;
            added += r.rows_affected();
        }
        match state {
            Some((state, step)) => {
                sqlx::query("UPDATE nodes SET state = $1, step = COALESCE($2, step), last_event_at = $3 WHERE hostname = $4")
                    .bind(state)
                    .bind(step)
                    .bind(at)
                    .bind(hostname)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query("UPDATE nodes SET last_event_at = $1 WHERE hostname = $2").bind(at).bind(hostname).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(added)
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

    /// The newest `limit` events of a node, newest first.
    pub async fn last_events(&self, hostname: &str, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query("SELECT seq, body FROM events WHERE hostname = $1 ORDER BY seq DESC LIMIT $2").bind(hostname).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get("seq")?, r.try_get("body")?))).collect::<Result<_, sqlx::Error>>().map_err(Into::into)
    }

    pub async fn event_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM events").fetch_one(&self.pool).await?.try_get("n")?)
    }

    pub async fn set_report(&self, hostname: &str, report: &str, state: &str) -> Result<(), StoreError> {
        let at = now();
        sqlx::query("UPDATE nodes SET report = $1, state = $2, finished_at = $3, last_event_at = $3 WHERE hostname = $4")
            .bind(report)
            .bind(state)
            .bind(at)
            .bind(hostname)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn report(&self, hostname: &str) -> Result<Option<String>, StoreError> {
        self.text_column("report", hostname).await
    }

    /// The first boot's report (replaced by each newer one) and the state it moves the node to.
    pub async fn set_boot_report(&self, hostname: &str, report: &str, state: &str) -> Result<(), StoreError> {
        let at = now();
        sqlx::query("UPDATE nodes SET boot_report = $1, state = $2, booted_at = COALESCE(booted_at, $3), last_event_at = $3 WHERE hostname = $4")
            .bind(report)
            .bind(state)
            .bind(at)
            .bind(hostname)
            .execute(&self.pool)
            .await?;
        Ok(())
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
