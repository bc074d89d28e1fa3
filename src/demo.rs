//! The demo data set: the 2014 case (Xiaomi and the Redmi 1S) and enough
//! other models for the lookup to tell apart. Loading it twice changes
//! nothing. The TACs are illustrative, not the real allocations.

use chrono::Utc;

use crate::auth::{AuthKeys, Role};
use crate::config::Settings;
use crate::db::manufacturers::{self, NewManufacturer};
use crate::db::models::{self, NewModel};
use crate::db::{Db, DbError};
use crate::domain::audit::Actor;
use crate::domain::imei::{Tac, luhn_check_digit};
use crate::domain::registry::{Category, Country, Name};

struct DemoMaker {
    name: &'static str,
    country: &'static str,
    aliases: &'static [&'static str],
    models: &'static [DemoModel],
}

struct DemoModel {
    name: &'static str,
    model_numbers: &'static [&'static str],
    aliases: &'static [&'static str],
    category: Category,
    tacs: &'static [&'static str],
}

/// The Redmi 1S's first illustrative TAC, used in the printed examples.
pub const REDMI_1S_TAC: &str = "86452102";

const MAKERS: &[DemoMaker] = &[
    DemoMaker {
        name: "Xiaomi",
        country: "CN",
        aliases: &["小米", "Xiaomi Inc.", "MI"],
        models: &[
            DemoModel {
                name: "Redmi 1S",
                model_numbers: &["2014011", "HM 1SW", "HM 1SC"],
                aliases: &["Hongmi 1S", "红米1S"],
                category: Category::Phone,
                tacs: &[REDMI_1S_TAC, "86452103"],
            },
            DemoModel {
                name: "Redmi Note",
                model_numbers: &["HM NOTE 1W", "HM NOTE 1LTE"],
                aliases: &["Hongmi Note", "红米Note"],
                category: Category::Phone,
                tacs: &["86228802"],
            },
            DemoModel {
                name: "Mi 3",
                model_numbers: &["MI 3W", "MI 3C"],
                aliases: &["Xiaomi Mi3"],
                category: Category::Phone,
                tacs: &["86375302"],
            },
            DemoModel {
                name: "Mi Pad",
                model_numbers: &["A0101"],
                aliases: &["Mi Pad 7.9"],
                category: Category::Tablet,
                tacs: &[],
            },
        ],
    },
    DemoMaker {
        name: "Samsung",
        country: "KR",
        aliases: &["Samsung Electronics"],
        models: &[DemoModel {
            name: "Galaxy S5",
            model_numbers: &["SM-G900F", "SM-G900H"],
            aliases: &[],
            category: Category::Phone,
            tacs: &["35285806"],
        }],
    },
    DemoMaker {
        name: "Apple",
        country: "US",
        aliases: &["Apple Inc."],
        models: &[DemoModel {
            name: "iPhone 5s",
            model_numbers: &["A1457", "A1533"],
            aliases: &[],
            category: Category::Phone,
            tacs: &["35203506"],
        }],
    },
    DemoMaker {
        name: "Nokia",
        country: "FI",
        aliases: &[],
        models: &[DemoModel {
            name: "Lumia 930",
            model_numbers: &["RM-1045"],
            aliases: &[],
            category: Category::Phone,
            tacs: &["35468406"],
        }],
    },
];

fn names(raw: &[&str]) -> Result<Vec<Name>, DbError> {
    raw.iter().map(|n| parse(Name::parse(n))).collect()
}

fn parse<T>(result: Result<T, impl std::fmt::Display>) -> Result<T, DbError> {
    result.map_err(|e| DbError::Other(anyhow::anyhow!("demo data is invalid: {e}")))
}

/// Loads the demo data set; what already exists is left as it is.
pub fn load(db: &Db) -> anyhow::Result<()> {
    db.write_blocking(|conn| {
        let now = Utc::now();
        let actor = Actor::system();
        for maker in MAKERS {
            let name = parse(Name::parse(maker.name))?;
            let manufacturer = match manufacturers::find_by_name(conn, &name)? {
                Some(existing) => existing,
                None => manufacturers::insert(
                    conn,
                    NewManufacturer {
                        name,
                        country: parse(Country::parse(maker.country))?,
                        aliases: names(maker.aliases)?,
                    },
                    &actor,
                    now,
                )?,
            };
            for model in maker.models {
                let new = NewModel {
                    manufacturer_id: manufacturer.id,
                    name: parse(Name::parse(model.name))?,
                    model_numbers: names(model.model_numbers)?,
                    aliases: names(model.aliases)?,
                    category: model.category,
                    tacs: model
                        .tacs
                        .iter()
                        .map(|t| parse(Tac::parse(t)))
                        .collect::<Result<_, _>>()?,
                };
                match models::insert(conn, new, &actor, now) {
                    Ok(_) | Err(DbError::Conflict(_)) => {}
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// A valid IMEI of the demo Redmi 1S (its TAC, a serial, the Luhn digit).
pub fn example_imei() -> String {
    let first14 = format!("{REDMI_1S_TAC}123456");
    format!("{first14}{}", luhn_check_digit(&first14))
}

/// What to try, printed by `clearance demo`.
pub fn instructions(settings: &Settings, keys: &AuthKeys) -> String {
    let ttl = chrono::Duration::days(7);
    let reader = keys.mint(
        "demo-reader",
        "reader@example.org",
        "Demo Reader",
        &[Role::Reader],
        ttl,
    );
    let analyst = keys.mint(
        "demo-analyst",
        "analyst@example.org",
        "Demo Analyst",
        &[Role::Analyst],
        ttl,
    );
    let base = settings.public_url.as_str().trim_end_matches('/');
    let imei = example_imei();
    format!(
        "Clearance demo data is loaded.\n\n\
         Reader token (7 days):\n  {reader}\n\n\
         Analyst token (7 days):\n  {analyst}\n\n\
         Try:\n\
         \x20 curl '{base}/api/v1/lookup?q=redmi%201s'\n\
         \x20 curl '{base}/api/v1/lookup?imei={imei}'\n\
         \x20 curl -H \"Authorization: Bearer $READER\" '{base}/api/v1/models?q=xiaomi'\n\
         \x20 API documentation: {base}/docs/\n"
    )
}
