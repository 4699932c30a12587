//! The one schema both backends share: only types that mean the same on SQLite and PostgreSQL
//! (`Text`, `BigInt`, `Integer`, `Bool`, `Timestamp` holding UTC).

diesel::table! {
    users (id) {
        id -> Text,
        stripe_customer_id -> Nullable<Text>,
        created_at -> Timestamp,
        email -> Nullable<Text>,
        country -> Nullable<Text>,
    }
}

diesel::table! {
    creators (user_id) {
        user_id -> Text,
        display_name -> Text,
        revenue_share_bps -> Integer,
        stripe_account_id -> Nullable<Text>,
        created_at -> Timestamp,
        country -> Nullable<Text>,
        payout_currency -> Nullable<Text>,
        link_share_bps -> Nullable<Integer>,
    }
}

diesel::table! {
    products (id) {
        id -> Text,
        kind -> Text,
        name -> Text,
        description -> Text,
        creator_id -> Nullable<Text>,
        per_seat -> Bool,
        active -> Bool,
        stripe_product_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    prices (id) {
        id -> Text,
        product_id -> Text,
        amount_minor -> BigInt,
        currency -> Text,
        interval -> Nullable<Text>,
        trial_days -> Integer,
        active -> Bool,
        stripe_price_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    entitlement_definitions (key) {
        key -> Text,
        kind -> Text,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    plan_entitlements (product_id, entitlement_key) {
        product_id -> Text,
        entitlement_key -> Text,
        value -> Nullable<BigInt>,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Text,
        user_id -> Text,
        product_id -> Text,
        price_id -> Text,
        status -> Text,
        quantity -> Integer,
        current_period_start -> Timestamp,
        current_period_end -> Timestamp,
        trial_end -> Nullable<Timestamp>,
        cancel_at_period_end -> Bool,
        grace_until -> Nullable<Timestamp>,
        canceled_at -> Nullable<Timestamp>,
        stripe_subscription_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        stripe_event_created -> Nullable<BigInt>,
        scheduled_price_id -> Nullable<Text>,
    }
}

diesel::table! {
    downgrade_retries (subscription_id) {
        subscription_id -> Text,
        attempts -> Integer,
        retry_at -> Timestamp,
        last_error -> Text,
    }
}

diesel::table! {
    seat_assignments (subscription_id, user_id) {
        subscription_id -> Text,
        user_id -> Text,
        assigned_at -> Timestamp,
    }
}

diesel::table! {
    orders (id) {
        id -> Text,
        buyer_id -> Text,
        recipient_id -> Nullable<Text>,
        product_id -> Text,
        price_id -> Text,
        amount_minor -> BigInt,
        currency -> Text,
        status -> Text,
        paid_at -> Nullable<Timestamp>,
        stripe_payment_intent_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        kind -> Text,
        gift_days -> Nullable<Integer>,
        message -> Nullable<Text>,
        channel -> Text,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        user_id -> Text,
        entitlement_key -> Text,
        value -> Nullable<BigInt>,
        reason -> Text,
        granted_by -> Text,
        starts_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    service_credentials (id) {
        id -> Text,
        name -> Text,
        key_hash -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        request_hash -> Text,
        status_code -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        private_key -> Text,
        public_key -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(creators -> users (user_id));
diesel::joinable!(prices -> products (product_id));
diesel::joinable!(plan_entitlements -> products (product_id));
diesel::joinable!(plan_entitlements -> entitlement_definitions (entitlement_key));
diesel::joinable!(subscriptions -> products (product_id));
diesel::joinable!(seat_assignments -> subscriptions (subscription_id));
diesel::joinable!(downgrade_retries -> subscriptions (subscription_id));
diesel::joinable!(orders -> products (product_id));
diesel::joinable!(pack_stickers -> packs (pack_id));
diesel::joinable!(pack_archives -> packs (pack_id));
diesel::joinable!(packs -> creators (creator_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    packs,
    pack_stickers,
    pack_claims,
    pack_events,
    pack_notices,
    pack_appeals,
    pack_purges,
    removal_refunds,
    pack_revisions,
    pack_archives,
    creators,
    products,
    prices,
    entitlement_definitions,
    plan_entitlements,
    subscriptions,
    seat_assignments,
    downgrade_retries,
    orders,
    grants,
    service_credentials,
    idempotency_keys,
    signing_keys,
);

diesel::table! {
    ledger_accounts (id) {
        id -> Text,
        kind -> Text,
        owner_id -> Nullable<Text>,
        currency -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ledger_transactions (id) {
        id -> Text,
        source_key -> Text,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ledger_entries (id) {
        id -> Text,
        transaction_id -> Text,
        account_id -> Text,
        amount_minor -> BigInt,
        currency -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ledger_balances (account_id) {
        account_id -> Text,
        balance_minor -> BigInt,
        through -> Timestamp,
    }
}

diesel::joinable!(ledger_balances -> ledger_accounts (account_id));
diesel::joinable!(ledger_entries -> ledger_transactions (transaction_id));
diesel::joinable!(ledger_entries -> ledger_accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(
    ledger_accounts,
    ledger_transactions,
    ledger_entries,
    ledger_balances
);

diesel::table! {
    stripe_events (id) {
        id -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        created -> BigInt,
        payload -> Text,
        received_at -> Timestamp,
        api_version -> Nullable<Text>,
        outcome -> Text,
    }
}

diesel::table! {
    donations (id) {
        id -> Text,
        donor_id -> Text,
        creator_id -> Nullable<Text>,
        amount_minor -> BigInt,
        currency -> Text,
        recurring -> Bool,
        message -> Nullable<Text>,
        anonymous -> Bool,
        status -> Text,
        stripe_payment_intent_id -> Nullable<Text>,
        stripe_subscription_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    payments (id) {
        id -> Text,
        stripe_charge_id -> Text,
        stripe_payment_intent_id -> Nullable<Text>,
        stripe_invoice_id -> Nullable<Text>,
        user_id -> Text,
        order_id -> Nullable<Text>,
        donation_id -> Nullable<Text>,
        subscription_id -> Nullable<Text>,
        creator_id -> Nullable<Text>,
        amount_minor -> BigInt,
        fee_minor -> BigInt,
        creator_share_minor -> BigInt,
        currency -> Text,
        refunded_minor -> BigInt,
        ledger_transaction_id -> Text,
        created_at -> Timestamp,
        fee_settled_at -> Nullable<Timestamp>,
        disputed_minor -> BigInt,
        released_at -> Nullable<Timestamp>,
        settlement_currency -> Nullable<Text>,
        settlement_minor -> Nullable<BigInt>,
        share_bps -> Nullable<Integer>,
        channel -> Nullable<Text>,
    }
}

diesel::table! {
    outbox_emails (id) {
        id -> Text,
        dedupe_key -> Text,
        to_address -> Text,
        kind -> Text,
        subject -> Text,
        body -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        claimed_by -> Nullable<Text>,
        attachment_name -> Nullable<Text>,
        attachment -> Nullable<Text>,
    }
}

diesel::table! {
    job_leases (name) {
        name -> Text,
        holder -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    packs (id) {
        id -> Text,
        creator_id -> Text,
        state -> Text,
        kind -> Text,
        title -> Text,
        description -> Text,
        tags -> Text,
        price_tier -> Nullable<Text>,
        review_note -> Nullable<Text>,
        reviewer_id -> Nullable<Text>,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        submitted_at -> Nullable<Timestamp>,
        published_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        sale_regions -> Nullable<Text>,
        locales -> Text,
        search_text -> Text,
        locale_tags -> Text,
        cover_sha256 -> Nullable<Text>,
        tray_sha256 -> Nullable<Text>,
    }
}

diesel::table! {
    pack_stickers (pack_id, position) {
        pack_id -> Text,
        position -> Integer,
        sticker_id -> Nullable<Text>,
        image_sha256 -> Text,
        thumbnail_sha256 -> Text,
        image_bytes -> BigInt,
        emoji -> Text,
        frames -> Integer,
        duration_ms -> Integer,
        review_reason -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    pack_claims (pack_id, user_id) {
        pack_id -> Text,
        user_id -> Text,
        claimed_at -> Timestamp,
    }
}

diesel::table! {
    pack_events (id) {
        id -> Text,
        pack_id -> Text,
        actor_id -> Text,
        from_state -> Text,
        to_state -> Text,
        reasons -> Text,
        note -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    pack_notices (id) {
        id -> Text,
        pack_id -> Text,
        reporter_id -> Text,
        reason -> Text,
        claim -> Text,
        contact -> Text,
        state -> Text,
        decided_by -> Nullable<Text>,
        decision_note -> Nullable<Text>,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    pack_appeals (id) {
        id -> Text,
        pack_id -> Text,
        event_id -> Text,
        creator_id -> Text,
        kind -> Text,
        against -> Text,
        statement -> Text,
        state -> Text,
        decided_by -> Nullable<Text>,
        decision_note -> Nullable<Text>,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    pack_purges (pack_id) {
        pack_id -> Text,
        purge_after -> Timestamp,
        purged_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    removal_refunds (order_id) {
        order_id -> Text,
        pack_id -> Text,
        state -> Text,
        attempts -> Integer,
        next_at -> Timestamp,
        stripe_refund_id -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    pack_revisions (id) {
        id -> Text,
        pack_id -> Text,
        version -> Integer,
        title -> Text,
        description -> Text,
        tags -> Text,
        state -> Text,
        reviewer_id -> Nullable<Text>,
        reasons -> Text,
        note -> Nullable<Text>,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
        locales -> Text,
        emoji -> Text,
    }
}

diesel::table! {
    pack_archives (pack_id) {
        pack_id -> Text,
        sha256 -> Text,
        bytes -> BigInt,
        built_at -> Timestamp,
    }
}

diesel::table! {
    payout_bank_accounts (creator_id) {
        creator_id -> Text,
        holder_name -> Text,
        iban -> Text,
        bic -> Nullable<Text>,
        town -> Text,
        country -> Text,
        currency -> Text,
        cooling_off_until -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    payout_holds (creator_id) {
        creator_id -> Text,
        reason -> Text,
        set_by -> Text,
        set_at -> Timestamp,
    }
}

diesel::table! {
    payout_runs (id) {
        id -> Text,
        cutoff -> Timestamp,
        created_by -> Text,
        created_at -> Timestamp,
        approved_by -> Nullable<Text>,
        approved_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    payout_lines (id) {
        id -> Text,
        run_id -> Text,
        creator_id -> Text,
        currency -> Text,
        amount_minor -> BigInt,
        state -> Text,
        destination -> Text,
        reason_code -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
        withheld_minor -> BigInt,
        withholding_rate_bps -> Integer,
        paid_at -> Nullable<Timestamp>,
        method -> Text,
        transfer_id -> Nullable<Text>,
        transfer_attempted_at -> Nullable<Timestamp>,
        reversed_minor -> BigInt,
    }
}

diesel::table! {
    payout_connect_accounts (creator_id) {
        creator_id -> Text,
        account_id -> Text,
        transfers -> Text,
        details_submitted -> Bool,
        chosen -> Bool,
        cooling_off_until -> Nullable<Timestamp>,
        event_created -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    creator_tax_profiles (creator_id) {
        creator_id -> Text,
        kind -> Text,
        legal_name -> Text,
        tin -> Nullable<Text>,
        tin_type -> Nullable<Text>,
        country -> Text,
        treaty_rate_bps -> Nullable<Integer>,
        signed_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        status -> Text,
        status_reason -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    payout_carried (run_id, creator_id, currency) {
        run_id -> Text,
        creator_id -> Text,
        currency -> Text,
        available_minor -> BigInt,
        reason -> Text,
    }
}

diesel::table! {
    payout_audit (id) {
        id -> Text,
        run_id -> Nullable<Text>,
        creator_id -> Nullable<Text>,
        line_id -> Nullable<Text>,
        actor -> Text,
        action -> Text,
        detail -> Text,
        at -> Timestamp,
    }
}

diesel::joinable!(payout_lines -> payout_runs (run_id));
diesel::allow_tables_to_appear_in_same_query!(payout_runs, payout_lines);
