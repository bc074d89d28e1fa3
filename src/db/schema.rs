//! The tables, written once for both backends (see `types` for the columns
//! whose native type differs).

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    manufacturers (id) {
        id -> DbUuid,
        name -> Text,
        name_key -> Text,
        country -> Text,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    manufacturer_aliases (manufacturer_id, position) {
        manufacturer_id -> DbUuid,
        position -> Integer,
        alias -> Text,
        alias_key -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    models (id) {
        id -> DbUuid,
        manufacturer_id -> DbUuid,
        name -> Text,
        name_key -> Text,
        category -> Text,
        clearance_status -> Text,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    model_names (model_id, kind, position) {
        model_id -> DbUuid,
        kind -> Text,
        position -> Integer,
        value -> Text,
        value_key -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    model_tacs (tac) {
        tac -> Text,
        model_id -> DbUuid,
        position -> Integer,
    }
}

diesel::table! {
    registry_generation (id) {
        id -> Integer,
        generation -> BigInt,
        pruned_through -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    registry_changes (generation, model_id) {
        generation -> BigInt,
        model_id -> DbUuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    evidence (id) {
        id -> DbUuid,
        title -> Text,
        source -> Text,
        kind -> Text,
        observed_at -> DbTimestamp,
        firmware -> Nullable<Text>,
        summary -> Text,
        severity -> Text,
        findings -> Text,
        refs -> Text,
        created_by -> Text,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    evidence_models (evidence_id, model_id) {
        evidence_id -> DbUuid,
        model_id -> DbUuid,
        position -> Integer,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    evidence_responses (id) {
        id -> DbUuid,
        evidence_id -> DbUuid,
        kind -> Text,
        author -> Text,
        received_at -> DbTimestamp,
        text -> Text,
        supersedes -> Nullable<DbUuid>,
        created_by -> Text,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    evidence_artifacts (evidence_id, sha256) {
        evidence_id -> DbUuid,
        sha256 -> Text,
        size -> BigInt,
        filename -> Text,
        content_type -> Text,
        uploaded_by -> Text,
        uploaded_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    advisories (id) {
        id -> DbUuid,
        reference -> Nullable<Text>,
        state -> Text,
        current_revision -> Integer,
        working_revision -> Nullable<Integer>,
        author -> Text,
        author_name -> Text,
        withdrawn_reason -> Nullable<Text>,
        withdrawn_by -> Nullable<Text>,
        withdrawn_at -> Nullable<DbTimestamp>,
        superseded_by -> Nullable<DbUuid>,
        superseded_at -> Nullable<DbTimestamp>,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    advisory_revisions (advisory_id, revision) {
        advisory_id -> DbUuid,
        revision -> Integer,
        stage -> Text,
        title -> Text,
        summary -> Text,
        body -> Text,
        severity -> Text,
        tlp -> Text,
        audience_all -> Bool,
        audience_units -> Text,
        acknowledgement_required -> Bool,
        effective_at -> Nullable<DbTimestamp>,
        review_due -> Nullable<DbTimestamp>,
        author -> Text,
        contributors -> Text,
        rejection_reason -> Nullable<Text>,
        submitted_by -> Nullable<Text>,
        submitted_at -> Nullable<DbTimestamp>,
        approved_by -> Nullable<Text>,
        approved_at -> Nullable<DbTimestamp>,
        published_by -> Nullable<Text>,
        published_at -> Nullable<DbTimestamp>,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    advisory_decisions (advisory_id, revision, position) {
        advisory_id -> DbUuid,
        revision -> Integer,
        position -> Integer,
        model_id -> Nullable<DbUuid>,
        manufacturer_id -> Nullable<DbUuid>,
        category -> Nullable<Text>,
        decision -> Text,
        conditions -> Nullable<Text>,
        firmware -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    advisory_evidence (advisory_id, revision, position) {
        advisory_id -> DbUuid,
        revision -> Integer,
        position -> Integer,
        evidence_id -> DbUuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    advisory_supersedes (advisory_id, revision, position) {
        advisory_id -> DbUuid,
        revision -> Integer,
        position -> Integer,
        superseded_id -> DbUuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    reference_counters (year) {
        year -> Integer,
        last -> Integer,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    reviews (id) {
        id -> DbUuid,
        model_id -> DbUuid,
        reason -> Text,
        due_at -> DbTimestamp,
        opened_by -> Text,
        opened_at -> DbTimestamp,
        outcome -> Nullable<Text>,
        advisory_id -> Nullable<DbUuid>,
        closed_by -> Nullable<Text>,
        closed_at -> Nullable<DbTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    clearance_history (id) {
        id -> DbUuid,
        model_id -> DbUuid,
        status -> Text,
        previous_status -> Text,
        advisory_id -> Nullable<DbUuid>,
        review_id -> Nullable<DbUuid>,
        changed_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    clearance_settled (id) {
        id -> Integer,
        through -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    audit_log (seq) {
        seq -> BigInt,
        id -> DbUuid,
        at -> DbTimestamp,
        actor -> Text,
        action -> Text,
        entity -> Text,
        entity_id -> Text,
        payload -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    idempotency_keys (principal, key) {
        principal -> Text,
        key -> Text,
        fingerprint -> Text,
        status -> Nullable<Integer>,
        headers -> Nullable<Text>,
        body -> Nullable<Binary>,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    personnel (id) {
        id -> DbUuid,
        email -> Text,
        email_key -> Text,
        name -> Text,
        unit -> Nullable<Text>,
        active -> Bool,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    subscriptions (id) {
        id -> DbUuid,
        email -> Text,
        email_key -> Text,
        state -> Text,
        delivery -> Text,
        min_severity -> Integer,
        all_manufacturers -> Bool,
        all_models -> Bool,
        all_categories -> Bool,
        confirmed_at -> Nullable<DbTimestamp>,
        unsubscribed_at -> Nullable<DbTimestamp>,
        last_digest_at -> Nullable<DbTimestamp>,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    subscription_manufacturers (subscription_id, manufacturer_id) {
        subscription_id -> DbUuid,
        manufacturer_id -> DbUuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    subscription_models (subscription_id, model_id) {
        subscription_id -> DbUuid,
        model_id -> DbUuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    subscription_categories (subscription_id, category) {
        subscription_id -> DbUuid,
        category -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    outbox (id) {
        id -> BigInt,
        kind -> Text,
        advisory_id -> Nullable<DbUuid>,
        revision -> Nullable<Integer>,
        email -> Text,
        email_key -> Text,
        name -> Nullable<Text>,
        audience -> Text,
        subscription_id -> Nullable<DbUuid>,
        payload -> Nullable<Text>,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> DbTimestamp,
        lease_until -> Nullable<DbTimestamp>,
        last_error -> Nullable<Text>,
        last_reply -> Nullable<Text>,
        sent_at -> Nullable<DbTimestamp>,
        created_at -> DbTimestamp,
        claim_token -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    acknowledgements (advisory_id, revision, email_key) {
        advisory_id -> DbUuid,
        revision -> Integer,
        email_key -> Text,
        email -> Text,
        acknowledged_at -> DbTimestamp,
    }
}

diesel::joinable!(manufacturer_aliases -> manufacturers (manufacturer_id));
diesel::joinable!(models -> manufacturers (manufacturer_id));
diesel::joinable!(model_names -> models (model_id));
diesel::joinable!(model_tacs -> models (model_id));

diesel::joinable!(evidence_models -> evidence (evidence_id));
diesel::joinable!(evidence_models -> models (model_id));
diesel::joinable!(evidence_artifacts -> evidence (evidence_id));
diesel::joinable!(advisory_decisions -> models (model_id));
diesel::joinable!(advisory_evidence -> evidence (evidence_id));
diesel::joinable!(reviews -> models (model_id));

diesel::joinable!(subscription_manufacturers -> subscriptions (subscription_id));
diesel::joinable!(subscription_models -> subscriptions (subscription_id));
diesel::joinable!(subscription_categories -> subscriptions (subscription_id));

diesel::table! {
    /// The audit chain's signed head: one row.
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
        keyed_from -> BigInt,
        signature -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    manufacturers,
    manufacturer_aliases,
    models,
    model_names,
    model_tacs,
    registry_generation,
    evidence,
    evidence_models,
    evidence_responses,
    evidence_artifacts,
    advisories,
    advisory_revisions,
    advisory_decisions,
    advisory_evidence,
    advisory_supersedes,
    reference_counters,
    reviews,
    clearance_history,
    clearance_settled,
    audit_log,
    audit_head,
    idempotency_keys,
    personnel,
    subscriptions,
    subscription_manufacturers,
    subscription_models,
    subscription_categories,
    outbox,
    acknowledgements,
);

diesel::table! {
    address_mail_counts (email_key, day) {
        email_key -> Text,
        day -> Text,
        mails -> Integer,
    }
}
