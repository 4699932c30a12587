//! A mixed population for the benchmark, written with set-based SQL (seconds for 100,000 users):
//! 40 % hold nothing, 20 % monthly Premium (some past due in grace), 10 % yearly Premium in a
//! trial, 10 % lifetime and expiring grants, 10 % own a Team subscription and sit on it with the
//! next user, who also bought a sticker pack. The monthly subscribers came through Stripe: they
//! have customer and subscription ids and an email address (the webhook benchmark renews them).

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

pub fn seed(url: &str, users: usize) -> anyhow::Result<()> {
    let pool = kopilka::db::connect(url, 1)?;
    let mut conn = pool.get()?;
    kopilka::db::migrate(&mut conn)?;
    kopilka::services::seed::demo_catalog(&mut conn)?;
    drop(conn);

    let mut pg = PgConnection::establish(url)?;
    let last = users.saturating_sub(1);
    let uid = "'u' || lpad(i::text, 6, '0')";
    let now = "timezone('UTC', now())";
    pg.batch_execute(&format!(
        "BEGIN;
         INSERT INTO products (id, kind, name, description, per_seat, active, created_at)
           VALUES ('pack_cats', 'sticker_pack', 'Cats', 'Bench pack', FALSE, TRUE, {now});
         INSERT INTO prices (id, product_id, amount_minor, currency, trial_days, active, created_at)
           VALUES ('price_pack_cats', 'pack_cats', 199, 'USD', 0, TRUE, {now});
         INSERT INTO users (id, created_at) SELECT {uid}, {now} FROM generate_series(0, {last}) i;

         UPDATE users SET stripe_customer_id = 'cus_bench_' || substr(id, 2)::int,
                          email = id || '@bench.example'
           WHERE substr(id, 2)::int % 10 IN (4, 5);
         INSERT INTO subscriptions (id, user_id, product_id, price_id, status, quantity,
             current_period_start, current_period_end, trial_end, cancel_at_period_end,
             grace_until, stripe_subscription_id, created_at, updated_at)
           SELECT 'sub_m' || i, {uid}, 'prod_premium', 'price_premium_monthly_usd',
                  CASE WHEN i % 20 = 5 THEN 'past_due' ELSE 'active' END, 1,
                  {now} - interval '10 days',
                  {now} + interval '20 days' + (i % 1440) * interval '1 minute', NULL, FALSE,
                  CASE WHEN i % 20 = 5 THEN {now} + interval '27 days' END, 'sub_bench_m' || i,
                  {now}, {now}
           FROM generate_series(0, {last}) i WHERE i % 10 IN (4, 5);

         INSERT INTO subscriptions (id, user_id, product_id, price_id, status, quantity,
             current_period_start, current_period_end, trial_end, cancel_at_period_end,
             created_at, updated_at)
           SELECT 'sub_y' || i, {uid}, 'prod_premium', 'price_premium_yearly_usd', 'trialing', 1,
                  {now} - interval '30 days', {now} + interval '335 days' + i * interval '1 second',
                  {now} + interval '335 days' + i * interval '1 second', FALSE, {now}, {now}
           FROM generate_series(0, {last}) i WHERE i % 10 = 6;

         INSERT INTO grants (id, user_id, entitlement_key, value, reason, granted_by, starts_at,
             expires_at, created_at)
           SELECT 'grant_l' || i, {uid}, 'premium', NULL, 'grandfathered', 'bench', {now},
                  NULL, {now}
           FROM generate_series(0, {last}) i WHERE i % 10 = 7;
         INSERT INTO grants (id, user_id, entitlement_key, value, reason, granted_by, starts_at,
             expires_at, created_at)
           SELECT 'grant_q' || i, {uid}, 'max_upload_mb', 2000, 'support gesture', 'bench', {now},
                  {now} + ((i % 30) + 1) * interval '1 day', {now}
           FROM generate_series(0, {last}) i WHERE i % 10 = 7;

         INSERT INTO subscriptions (id, user_id, product_id, price_id, status, quantity,
             current_period_start, current_period_end, cancel_at_period_end, created_at, updated_at)
           SELECT 'sub_t' || i, {uid}, 'prod_team', 'price_team_monthly_usd', 'active', 5,
                  {now} - interval '5 days', {now} + interval '25 days', FALSE, {now}, {now}
           FROM generate_series(0, {last}) i WHERE i % 10 = 8;
         INSERT INTO seat_assignments (subscription_id, user_id, assigned_at)
           SELECT 'sub_t' || i, {uid}, {now} FROM generate_series(0, {last}) i WHERE i % 10 = 8;
         INSERT INTO seat_assignments (subscription_id, user_id, assigned_at)
           SELECT 'sub_t' || (i - 1), {uid}, {now}
           FROM generate_series(0, {last}) i WHERE i % 10 = 9;

         INSERT INTO orders (id, buyer_id, recipient_id, product_id, price_id, amount_minor,
             currency, status, paid_at, created_at, updated_at)
           SELECT 'ord_' || i, {uid}, NULL, 'pack_cats', 'price_pack_cats', 199, 'USD', 'paid',
                  {now}, {now}, {now}
           FROM generate_series(0, {last}) i WHERE i % 10 = 9;
         COMMIT;
         ANALYZE users, subscriptions, grants, seat_assignments, orders, products, prices;"
    ))?;
    eprintln!("seeded {users} users");
    Ok(())
}
