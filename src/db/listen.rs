//! Cross-instance cache invalidation over PostgreSQL `LISTEN/NOTIFY`.
//!
//! Writers call `db::notify_changed` inside their transaction; PostgreSQL delivers the
//! notification to every listening instance when (and only if) the transaction commits.

use diesel::{Connection, PgConnection, RunQueryDsl};
use std::sync::Weak;
use std::time::Duration;

pub const CHANNEL: &str = "kopilka_entitlements";

/// How often the listener looks for notifications. Well under the 1 s propagation promise.
const POLL: Duration = Duration::from_millis(50);

/// What a notification asks the cache to drop.
#[derive(Debug, PartialEq, Eq)]
pub enum Changed {
    Users(Vec<String>),
    Everyone,
}

fn parse(payload: &str) -> Changed {
    if payload == "*" {
        Changed::Everyone
    } else {
        Changed::Users(payload.lines().map(str::to_owned).collect())
    }
}

/// Starts a thread that listens on `url` while `owner` (the application state) lives and
/// hands each change to `on_change`. After a lost connection it reconnects and reports
/// `Everyone`, since notifications sent meanwhile are gone. Once the owner is dropped the
/// thread ends: a stopped application must not keep reconnecting (to a database that may be
/// gone, or while the process exits and libpq's TLS library is torn down under it).
pub fn spawn<T: Send + Sync + 'static>(
    url: String,
    owner: Weak<T>,
    on_change: impl Fn(&T, Changed) + Send + 'static,
) {
    std::thread::Builder::new()
        .name("kopilka-listen".into())
        .spawn(move || loop {
            match listen(&url, &owner, &on_change) {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "entitlement listener lost its connection"),
            }
            let Some(live) = owner.upgrade() else { return };
            on_change(&live, Changed::Everyone);
            drop(live);
            std::thread::sleep(Duration::from_secs(1));
            if owner.strong_count() == 0 {
                return;
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the entitlement listener"));
}

/// Listens until the connection fails (`Err`) or the owner is gone (`Ok`).
fn listen<T>(url: &str, owner: &Weak<T>, on_change: &impl Fn(&T, Changed)) -> anyhow::Result<()> {
    let mut conn = PgConnection::establish(url)?;
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn)?;
    tracing::info!("listening for entitlement changes");
    loop {
        let Some(live) = owner.upgrade() else {
            return Ok(());
        };
        for n in conn.notifications_iter() {
            on_change(&live, parse(&n?.payload));
        }
        drop(live);
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_lists_users_one_per_line_or_star_for_everyone() {
        assert_eq!(parse("*"), Changed::Everyone);
        assert_eq!(
            parse("alice\nbob"),
            Changed::Users(vec!["alice".into(), "bob".into()])
        );
    }
}
