//! Table definitions, written by hand to match `migrations/sqlite` and
//! `migrations/postgres` (same names and types in both).

diesel::table! {
    members (id) {
        id -> BigInt,
        openid -> Text,
        nickname -> Text,
        nickname_key -> Text,
        avatar_url -> Text,
        email -> Text,
        city -> Text,
        country -> Text,
        province -> Text,
        language -> Text,
        gender -> Integer,
        rfid -> Nullable<Text>,
        tags -> Text,
        memo -> Text,
        reminders -> Bool,
        password_hash -> Text,
        must_change_password -> Bool,
        deactivated_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        history_version -> BigInt,
    }
}

diesel::table! {
    payments (id) {
        id -> BigInt,
        member_id -> BigInt,
        pay_index -> Text,
        amount_fen -> BigInt,
        pay_type -> Text,
        paid_at -> BigInt,
        until_days -> Nullable<Integer>,
        span_from -> Nullable<BigInt>,
        span_until -> Nullable<BigInt>,
        recorded_at -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        name -> Text,
        key_hash -> Text,
        scopes -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    write_lock (id) {
        id -> Integer,
        n -> BigInt,
    }
}

diesel::table! {
    access_events (id) {
        id -> BigInt,
        at -> BigInt,
        door -> Text,
        method -> Text,
        outcome -> Text,
        reason -> Text,
        member_id -> Nullable<BigInt>,
        api_key_id -> Nullable<BigInt>,
        detail -> Text,
    }
}

diesel::table! {
    oauth_clients (id) {
        id -> BigInt,
        client_id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        redirect_uris -> Text,
        scopes -> Text,
        created_at -> BigInt,
        removed_at -> Nullable<BigInt>,
        pkce_required -> Bool,
    }
}

diesel::table! {
    oauth_codes (id) {
        id -> BigInt,
        code_hash -> Text,
        client_id -> Text,
        member_id -> BigInt,
        redirect_uri -> Text,
        scope -> Text,
        pkce -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        redirect_uri_sent -> Bool,
    }
}

diesel::table! {
    oauth_spent_tickets (ticket_hash) {
        ticket_hash -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    oauth_tokens (id) {
        id -> BigInt,
        token_hash -> Text,
        kind -> Text,
        family -> BigInt,
        client_id -> Text,
        member_id -> BigInt,
        scope -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    token_ledger (id) {
        id -> BigInt,
        member_id -> BigInt,
        kind -> Text,
        amount -> BigInt,
        reason -> Text,
        reference -> Text,
        at -> BigInt,
    }
}

diesel::table! {
    vip_periods (id) {
        id -> BigInt,
        member_id -> BigInt,
        level -> Text,
        starts_at -> BigInt,
        ends_at -> BigInt,
        free_spent -> BigInt,
        paid_spent -> BigInt,
        payment_id -> BigInt,
        client_id -> Text,
        bought_at -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (client_id, idem_key) {
        client_id -> Text,
        idem_key -> Text,
        member_id -> BigInt,
        level -> Text,
        vip_period_id -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        member_id -> BigInt,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> BigInt,
        actor_id -> Nullable<BigInt>,
        actor -> Text,
        action -> Text,
        subject -> Text,
        before_value -> Text,
        after_value -> Text,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        once_key -> Text,
        channel -> Text,
        kind -> Text,
        member_id -> Nullable<BigInt>,
        payload -> Text,
        created_at -> BigInt,
        state -> Text,
        attempts -> Integer,
        next_at -> BigInt,
        lease_until -> Nullable<BigInt>,
        sent_at -> Nullable<BigInt>,
        last_error -> Text,
    }
}

diesel::table! {
    webhooks (id) {
        id -> BigInt,
        url -> Text,
        events -> Text,
        salt -> Text,
        created_at -> BigInt,
        removed_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(payments -> members (member_id));
diesel::joinable!(sessions -> members (member_id));
diesel::joinable!(oauth_tokens -> members (member_id));
diesel::table! {
    import_marks (source) {
        source -> Text,
        read_to -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    members,
    payments,
    api_keys,
    write_lock,
    access_events,
    oauth_clients,
    oauth_codes,
    oauth_tokens,
    oauth_spent_tickets,
    token_ledger,
    vip_periods,
    idempotency_keys,
    sessions,
    audit_log,
    outbox,
    webhooks,
    import_marks
);
