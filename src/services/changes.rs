//! One way to say "these users' entitlements changed": a unit of work collects the users it
//! touched; they are announced to the other instances inside its transaction (`NOTIFY` on
//! PostgreSQL, delivered at commit) and dropped from this instance's answer cache after the
//! commit. A write that changes what someone holds goes through `transaction`, so neither half
//! can be forgotten.

use crate::app::AppState;
use crate::db::{self, DbConn};
use crate::error::AppError;

/// The users a unit of work changed.
#[derive(Debug, Default)]
pub struct Changed {
    users: Vec<String>,
    everyone: bool,
}

impl Changed {
    pub fn user(&mut self, user: impl Into<String>) {
        self.users.push(user.into());
    }

    pub fn users<S: Into<String>>(&mut self, users: impl IntoIterator<Item = S>) {
        self.users.extend(users.into_iter().map(Into::into));
    }

    /// What everyone may hold changed (a plan's entitlements, say).
    pub fn everyone(&mut self) {
        self.everyone = true;
    }
}

/// Runs `work` in one transaction; the users it marks changed are invalidated everywhere.
pub async fn transaction<T, F>(state: &AppState, work: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConn, &mut Changed) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let (value, changed) = db::transaction(&state.pool, move |conn| {
        let mut changed = Changed::default();
        let value = work(conn, &mut changed)?;
        if changed.everyone {
            db::notify_changed(conn, &["*"])?;
        } else if !changed.users.is_empty() {
            let refs: Vec<&str> = changed.users.iter().map(String::as_str).collect();
            db::notify_changed(conn, &refs)?;
        }
        Ok((value, changed))
    })
    .await?;
    if changed.everyone {
        state.changed_everyone();
    } else {
        state.changed(&changed.users);
    }
    Ok(value)
}
