//! The payout benchmark's population: `creators` creators, each with a bank account and an
//! available balance (80 % in EUR, for the SEPA file; the rest in USD, for the CSV), written
//! with set-based SQL so seeding takes seconds. The ledger's triggers check every posting as
//! they do for the service's own.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::{Connection, PgConnection};

pub fn seed(url: &str, creators: usize) -> anyhow::Result<()> {
    let pool = kopilka::db::connect(url, 1)?;
    let mut conn = pool.get()?;
    kopilka::db::migrate(&mut conn)?;
    drop(conn);
    let mut pg = PgConnection::establish(url)?;
    let last = creators.saturating_sub(1);
    let uid = "'c' || lpad(i::text, 7, '0')";
    let ccy = "CASE WHEN i % 5 = 0 THEN 'USD' ELSE 'EUR' END";
    let amount = "(1000 + i % 5000)";
    let now = "timezone('UTC', now()) - interval '1 minute'";
    pg.batch_execute(&format!(
        "BEGIN;
         INSERT INTO users (id, created_at) SELECT {uid}, {now} FROM generate_series(0, {last}) i;
         INSERT INTO creators (user_id, display_name, revenue_share_bps, created_at, country, payout_currency)
           SELECT {uid}, 'Creator ' || i, 7000, {now}, 'DE', {ccy} FROM generate_series(0, {last}) i;
         INSERT INTO payout_bank_accounts (creator_id, holder_name, iban, bic, town, country, currency, updated_at)
           SELECT {uid}, 'Müller & Söhne ' || i, 'DE89370400440532013000', 'COBADEFFXXX', 'Berlin', 'DE', {ccy}, {now}
           FROM generate_series(0, {last}) i;
         INSERT INTO ledger_entries (id, transaction_id, account_id, amount_minor, currency, created_at)
           SELECT 'le_seed_a' || i, 'ltx_seed' || i, 'creator_available:' || {uid} || ':' || {ccy},
                  -{amount}, {ccy}, {now} FROM generate_series(0, {last}) i
           UNION ALL
           SELECT 'le_seed_b' || i, 'ltx_seed' || i, 'platform_revenue:platform:' || {ccy},
                  {amount}, {ccy}, {now} FROM generate_series(0, {last}) i;
         INSERT INTO ledger_transactions (id, source_key, description, created_at)
           SELECT 'ltx_seed' || i, 'seed:' || i, 'bench: earnings available', {now}
           FROM generate_series(0, {last}) i;
         COMMIT;"
    ))?;
    let n: i64 =
        diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM payout_bank_accounts")
            .get_result(&mut pg)?;
    println!("seeded {n} creators with available balances");
    Ok(())
}
