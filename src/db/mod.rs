//! Storage: one diesel codebase over SQLite and PostgreSQL, the backend picked by the URL scheme.

pub mod holdings;
pub mod listen;
pub mod models;
pub mod schema;

use crate::error::AppError;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::{Connection, MultiConnection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend. Queries written with diesel's DSL run on both; the few
/// places that need backend-specific SQL match on the variant.
#[derive(MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = Pool<ConnectionManager<DbConn>>;
pub type PooledConn = PooledConnection<ConnectionManager<DbConn>>;

/// `INSERT … ON CONFLICT DO NOTHING` on either backend (diesel offers it per backend, not on
/// the multi-connection); gives the number of rows inserted. Used where "already there" is an
/// answer, not an error: it never aborts a surrounding PostgreSQL transaction.
macro_rules! insert_or_ignore {
    ($conn:expr, $table:expr, $values:expr) => {
        match $conn {
            $crate::db::DbConn::Pg(c) => diesel::insert_into($table)
                .values($values)
                .on_conflict_do_nothing()
                .execute(c),
            $crate::db::DbConn::Sqlite(c) => diesel::insert_into($table)
                .values($values)
                .on_conflict_do_nothing()
                .execute(c),
        }
    };
}
pub(crate) use insert_or_ignore;

/// A multi-row `INSERT` in one statement on either backend (the multi-connection does not
/// offer batch inserts); gives the number of rows inserted.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::db::DbConn::Pg(c) => diesel::insert_into($table).values($rows).execute(c),
            $crate::db::DbConn::Sqlite(c) => diesel::insert_into($table).values($rows).execute(c),
        }
    };
}
pub(crate) use insert_rows;

/// Which backend a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

#[derive(Debug)]
struct ConnectionSetup;

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        if let DbConn::Pg(c) = conn {
            // Our statements are prepared once per connection; a custom plan per execution
            // would re-plan the holdings union every time (costlier than running it).
            c.batch_execute("SET plan_cache_mode = force_generic_plan")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        if let DbConn::Sqlite(c) = conn {
            // WAL lets readers run beside the writer; busy_timeout makes writers queue instead
            // of failing with SQLITE_BUSY.
            c.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Opens a pool for `url`, creating the SQLite file's folder when needed.
pub fn connect(url: &str, size: u32) -> anyhow::Result<DbPool> {
    let url = match Backend::of(url) {
        Backend::Postgres => url.to_owned(),
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)?;
                }
            }
            path.to_owned()
        }
    };
    let pool = Pool::builder()
        .max_size(size.max(1))
        .connection_timeout(std::time::Duration::from_secs(10))
        // No `SELECT 1` before every use: a broken connection fails its query (503, retried
        // by the client) and r2d2 drops it.
        .test_on_check_out(false)
        // Connections are opened on demand and kept while used, rather than kept at the pool's
        // size from the start: r2d2 would otherwise reopen lost connections in the background,
        // without end when the database is gone (a dropped test database), and libpq may then
        // be mid-connect as the process exits.
        .min_idle(Some(0))
        .connection_customizer(Box::new(ConnectionSetup))
        .build(ConnectionManager::<DbConn>::new(url))?;
    Ok(pool)
}

/// Applies pending migrations of the connection's backend; returns the versions applied.
pub fn migrate(conn: &mut DbConn) -> anyhow::Result<Vec<String>> {
    let applied: Vec<String> = match conn {
        DbConn::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?
    .into_iter()
    .map(|v| v.to_string())
    .collect();
    // What SQL cannot compute for the rows a migration added a column to.
    models::packs::Pack::backfill_search_text(conn)?;
    Ok(applied)
}

/// Runs one unit of work — connection checkout and everything done with it — on the blocking
/// thread pool, so the async workers never wait on the database.
pub async fn run<T, F>(pool: &DbPool, work: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool
            .get()
            .map_err(|e| AppError::DatabaseUnavailable(e.to_string()))?;
        let result = work(&mut conn);
        // Committed (or rolled back) by now: store pages read from here on see it.
        models::packs::store_unit_done();
        result
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
}

/// Runs `work` in a transaction: everything or nothing is written.
pub async fn transaction<T, F>(pool: &DbPool, work: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    run(pool, move |conn| match conn {
        DbConn::Pg(_) => conn.transaction(work),
        DbConn::Sqlite(_) => sqlite_immediate(conn, work),
    })
    .await
}

/// SQLite allows one writer; a deferred transaction that reads, then finds another writer has
/// committed meanwhile, fails at once (`database is locked`, no busy wait). `BEGIN IMMEDIATE`
/// takes the write lock up front, waiting up to `busy_timeout` for it.
fn sqlite_immediate<T, F>(conn: &mut DbConn, work: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConn) -> Result<T, AppError>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    if let DbConn::Sqlite(inner) = conn {
        AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
    }
    let result = work(conn);
    if let DbConn::Sqlite(inner) = conn {
        match &result {
            Ok(_) => AnsiTransactionManager::commit_transaction(inner)?,
            Err(_) => AnsiTransactionManager::rollback_transaction(inner)?,
        }
    }
    result
}

diesel::define_sql_function! {
    fn pg_notify(channel: diesel::sql_types::Text, payload: diesel::sql_types::Text);
}

/// Tells other instances (PostgreSQL `NOTIFY`, delivered at commit) that these users'
/// entitlements changed; `*` means everyone's. On SQLite there is only one instance.
pub fn notify_changed(conn: &mut DbConn, user_ids: &[&str]) -> Result<(), AppError> {
    if let DbConn::Pg(c) = conn {
        use diesel::RunQueryDsl;
        for chunk in user_ids.chunks(50) {
            // A payload is limited to 8000 bytes: batch ids, one notification per chunk.
            let payload = chunk.join("\n");
            // Through the query builder rather than raw SQL: prepared once per connection.
            diesel::select(pg_notify(listen::CHANNEL, payload)).execute(c)?;
        }
    }
    Ok(())
}
