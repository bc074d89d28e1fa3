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
    }
}

diesel::joinable!(manufacturer_aliases -> manufacturers (manufacturer_id));
diesel::joinable!(models -> manufacturers (manufacturer_id));
diesel::joinable!(model_names -> models (model_id));
diesel::joinable!(model_tacs -> models (model_id));

diesel::allow_tables_to_appear_in_same_query!(
    manufacturers,
    manufacturer_aliases,
    models,
    model_names,
    model_tacs,
    registry_generation,
);
