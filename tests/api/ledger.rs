//! The ledger's rules hold in the database itself, on both backends: balanced postings only,
//! sealed transactions, no updates or deletes, one posting per source.

use crate::both;
use crate::helpers::{Backend, TestDb};
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl};
use kopilka::db::models::ledger::{balance, post, Posted};
use kopilka::db::DbConn;
use kopilka::domain::ledger::{creator_sale, reversal};
use kopilka::domain::money::Currency;

fn open(db: &TestDb) -> kopilka::db::PooledConn {
    let pool = kopilka::db::connect(&db.url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    kopilka::db::migrate(&mut conn).unwrap();
    conn
}

fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

/// Runs SQL straight at the database, past the code's own checks, in one transaction.
fn raw(conn: &mut DbConn, sql: &str) -> Result<(), diesel::result::Error> {
    conn.transaction(|c| c.batch_execute(sql))
}

both!(
    sale_and_refund_post_once_and_balance,
    |b: Backend| async move {
        let db = TestDb::new(b);
        let mut conn = open(&db);
        let sale = creator_sale(199, 36, &usd(), "artist", 7000).unwrap();
        let first = conn
            .transaction(|c| post(c, "ch_1:sale", "pack sale", &sale))
            .unwrap();
        assert!(matches!(first, Posted::New(_)));
        // A replayed event posts nothing.
        let again = conn
            .transaction(|c| post(c, "ch_1:sale", "pack sale", &sale))
            .unwrap();
        assert_eq!(again, Posted::Already);
        assert_eq!(
            balance(&mut conn, "creator_pending:artist:USD").unwrap(),
            -139
        );
        assert_eq!(
            balance(&mut conn, "platform_revenue:platform:USD").unwrap(),
            -60
        );
        assert_eq!(
            balance(&mut conn, "stripe_clearing:platform:USD").unwrap(),
            163
        );

        let refund = reversal(&sale).unwrap();
        conn.transaction(|c| post(c, "ch_1:refund", "refund", &refund))
            .unwrap();
        for account in [
            "creator_pending:artist:USD",
            "platform_revenue:platform:USD",
            "stripe_clearing:platform:USD",
            "stripe_fees:platform:USD",
        ] {
            assert_eq!(balance(&mut conn, account).unwrap(), 0, "{account}");
        }
    }
);

both!(
    database_refuses_unbalanced_sealed_or_edited_entries,
    |b: Backend| async move {
        let db = TestDb::new(b);
        let mut conn = open(&db);
        let sale = creator_sale(500, 0, &usd(), "artist", 5000).unwrap();
        conn.transaction(|c| post(c, "ch_2:sale", "sale", &sale))
            .unwrap();
        let now = "'2026-11-24 00:00:00'";

        // Unbalanced, and empty: refused by the database itself.
        let unbalanced = raw(&mut conn, &format!(
        "INSERT INTO ledger_entries VALUES ('e1', 'tx-bad', 'stripe_clearing:platform:USD', 10, 'USD', {now}); \
         INSERT INTO ledger_entries VALUES ('e3', 'tx-bad', 'platform_revenue:platform:USD', -9, 'USD', {now}); \
         INSERT INTO ledger_transactions VALUES ('tx-bad', 'bad', 'bad', {now});"));
        assert!(
            unbalanced.is_err(),
            "an unbalanced transaction was accepted"
        );
        let empty = raw(
            &mut conn,
            &format!("INSERT INTO ledger_transactions VALUES ('tx-empty', 'e', 'e', {now});"),
        );
        assert!(empty.is_err(), "a transaction without entries was accepted");
        // The same, balanced, is accepted: the refusals above were about balance.
        raw(&mut conn, &format!(
        "INSERT INTO ledger_entries VALUES ('e4', 'tx-ok', 'stripe_clearing:platform:USD', 10, 'USD', {now}); \
         INSERT INTO ledger_entries VALUES ('e5', 'tx-ok', 'platform_revenue:platform:USD', -10, 'USD', {now}); \
         INSERT INTO ledger_transactions VALUES ('tx-ok', 'ok', 'ok', {now});")).unwrap();

        // Nothing may join a sealed transaction, and nothing may change or go.
        let tx: String = diesel::sql_query(
            "SELECT id AS value FROM ledger_transactions WHERE source_key = 'ch_2:sale'",
        )
        .load::<Value>(&mut *conn)
        .unwrap()
        .remove(0)
        .value;
        let join = raw(&mut conn, &format!(
        "INSERT INTO ledger_entries VALUES ('e2', '{tx}', 'stripe_clearing:platform:USD', 1, 'USD', {now})"));
        assert!(join.is_err(), "an entry joined a sealed transaction");
        assert!(raw(&mut conn, "UPDATE ledger_entries SET amount_minor = 1").is_err());
        assert!(raw(&mut conn, "DELETE FROM ledger_entries").is_err());
        assert!(raw(&mut conn, "DELETE FROM ledger_transactions").is_err());
        assert_eq!(
            balance(&mut conn, "stripe_clearing:platform:USD").unwrap(),
            510
        );
    }
);

both!(
    an_account_is_opened_by_its_first_entry_in_its_own_currency,
    |b: Backend| async move {
        let db = TestDb::new(b);
        let mut conn = open(&db);
        // A creator whose id holds the separator still gets an account of their own.
        let sale = creator_sale(1000, 30, &usd(), "idp:42", 7000).unwrap();
        conn.transaction(|c| post(c, "ch_3:sale", "sale", &sale))
            .unwrap();
        let opened: Vec<Account> = diesel::sql_query(
            "SELECT id, kind, owner_id, currency FROM ledger_accounts ORDER BY id",
        )
        .load(&mut *conn)
        .unwrap();
        let opened: Vec<(&str, &str, Option<&str>, &str)> = opened
            .iter()
            .map(|a| {
                (
                    a.id.as_str(),
                    a.kind.as_str(),
                    a.owner_id.as_deref(),
                    a.currency.as_str(),
                )
            })
            .collect();
        assert_eq!(
            opened,
            vec![
                (
                    "creator_pending:idp:42:USD",
                    "creator_pending",
                    Some("idp:42"),
                    "USD"
                ),
                (
                    "platform_revenue:platform:USD",
                    "platform_revenue",
                    None,
                    "USD"
                ),
                (
                    "stripe_clearing:platform:USD",
                    "stripe_clearing",
                    None,
                    "USD"
                ),
                ("stripe_fees:platform:USD", "stripe_fees", None, "USD"),
            ]
        );
        let now = "'2026-11-24 00:00:00'";
        // An entry whose currency is not its account's is refused, opened account or not.
        for account in [
            "stripe_clearing:platform:USD",
            "stripe_clearing:platform:JPY",
        ] {
            let mixed = raw(&mut conn, &format!(
            "INSERT INTO ledger_entries VALUES ('m1', 'tx-mixed', '{account}', 10, 'EUR', {now}); \
             INSERT INTO ledger_entries VALUES ('m2', 'tx-mixed', 'platform_revenue:platform:EUR', -10, 'EUR', {now}); \
             INSERT INTO ledger_transactions VALUES ('tx-mixed', 'mixed', 'mixed', {now});"));
            assert!(mixed.is_err(), "an EUR entry went into {account}");
        }
        // An account of no known kind is not opened.
        let unknown = raw(&mut conn, &format!(
        "INSERT INTO ledger_entries VALUES ('u1', 'tx-unknown', 'pocket:platform:USD', 10, 'USD', {now}); \
         INSERT INTO ledger_entries VALUES ('u2', 'tx-unknown', 'platform_revenue:platform:USD', -10, 'USD', {now}); \
         INSERT INTO ledger_transactions VALUES ('tx-unknown', 'unknown', 'unknown', {now});"));
        assert!(unknown.is_err(), "an account of an unknown kind was opened");
    }
);

#[derive(diesel::QueryableByName)]
struct Account {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    owner_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    currency: String,
}

#[derive(diesel::QueryableByName)]
struct Value {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

// Balances are a checkpoint plus what came since: moving checkpoints forward, however often
// and in whatever batches, never changes a balance, and later postings still count.
both!(
    balance_checkpoints_never_change_a_balance,
    |b: Backend| async move {
        let db = TestDb::new(b);
        let mut conn = open(&db);
        let full_sum = |conn: &mut DbConn, account: &str| -> i64 {
            use diesel::prelude::*;
            use kopilka::db::schema::ledger_entries as e;
            e::table
                .filter(e::account_id.eq(account))
                .select(e::amount_minor)
                .load::<i64>(conn)
                .unwrap()
                .iter()
                .sum()
        };
        let accounts = [
            "stripe_clearing:platform:USD",
            "platform_revenue:platform:USD",
            "creator_pending:artist:USD",
            "stripe_fees:platform:USD",
        ];
        let far = (chrono::Utc::now() + chrono::Duration::days(1)).naive_utc();
        for round in 0..3 {
            for i in 0..5 {
                let sale = creator_sale(199 + i, 36, &usd(), "artist", 7000).unwrap();
                let key = format!("ch_{round}_{i}:sale");
                conn.transaction(|c| post(c, &key, "pack sale", &sale))
                    .unwrap();
            }
            if round == 1 {
                // Half of what was posted is refunded before the next checkpoint.
                let sale = creator_sale(199, 36, &usd(), "artist", 7000).unwrap();
                let back = reversal(&sale).unwrap();
                conn.transaction(|c| post(c, "ch_1_0:refund", "refund", &back))
                    .unwrap();
            }
            // Checkpoints in batches of one account, then all at once: same balances.
            let now = chrono::Utc::now().naive_utc();
            while kopilka::db::models::ledger::checkpoint(&mut conn, now, 1).unwrap() == 1 {}
            for a in accounts {
                assert_eq!(
                    balance(&mut conn, a).unwrap(),
                    full_sum(&mut conn, a),
                    "{a} round {round}"
                );
            }
        }
        // A checkpoint past every entry holds the whole sum; nothing is counted twice.
        kopilka::db::models::ledger::checkpoint(&mut conn, far, 100).unwrap();
        kopilka::db::models::ledger::checkpoint(&mut conn, far, 100).unwrap();
        for a in accounts {
            assert_eq!(
                balance(&mut conn, a).unwrap(),
                full_sum(&mut conn, a),
                "{a}"
            );
        }
    }
);
