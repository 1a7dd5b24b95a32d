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
        password_hash -> Text,
        must_change_password -> Bool,
        deactivated_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
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

diesel::joinable!(payments -> members (member_id));
diesel::allow_tables_to_appear_in_same_query!(
    members,
    payments,
    api_keys,
    write_lock,
    access_events
);
