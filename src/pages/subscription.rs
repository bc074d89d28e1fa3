//! The subscription form, for people without an API client: `/subscribe`
//! (an address and what to receive) and `/manage` (what a subscription
//! receives, changed by its owner). It offers what the API's filter offers
//! — makers, kinds of device, a lowest severity, daily or at once — keeps
//! what was entered when something must be corrected, and says so in plain
//! words.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use uuid::Uuid;

use crate::domain::email::EmailAddress;
use crate::domain::registry::Category;
use crate::domain::rejection::Rejection;
use crate::domain::severity::Severity;
use crate::domain::subscription::{
    Delivery, SubscribeRequest, SubscriptionFilter, SubscriptionState, SubscriptionView,
};
use crate::workflow;

/// The form's fields as they were sent (or as the subscription has them),
/// kept as text so that a mistake shows the form exactly as it was filled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterForm {
    pub email: String,
    pub delivery: String,
    pub min_severity: String,
    /// Ids of the makers ticked.
    pub makers: Vec<String>,
    /// Kinds of device ticked (`phone`, `tablet`…).
    pub categories: Vec<String>,
    /// Ids of models chosen through the API, carried along unchanged.
    pub models: Vec<String>,
}

/// One option of the form: a radio button, a box to tick, an entry of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

/// What the form's template shows.
#[derive(Debug)]
pub struct FilterFields {
    pub deliveries: Vec<Choice>,
    pub severities: Vec<Choice>,
    pub categories: Vec<Choice>,
    pub makers: Vec<Choice>,
    /// Whether any maker is ticked: then their list starts open.
    pub some_makers: bool,
    pub models: Vec<String>,
}

/// Where an address goes wrong, and the one hint that fixes it.
const ADDRESS_HINT: &str = "Enter an address like name@example.org.";
/// A maker deleted (or an id made up) between showing the form and sending it.
const UNKNOWN_MAKER: &str =
    "A maker you chose is no longer in the register. Choose the makers again.";

impl FilterForm {
    /// The fields of a posted form: the last value of a field given twice,
    /// every value of a list.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (name, value) in pairs {
            match name.as_str() {
                "email" => form.email = value,
                "delivery" => form.delivery = value,
                "min_severity" => form.min_severity = value,
                "maker" => form.makers.push(value),
                "category" => form.categories.push(value),
                "model" => form.models.push(value),
                _ => {}
            }
        }
        form
    }

    /// The form showing what subscription `view` receives.
    pub fn of(view: &SubscriptionView) -> Self {
        let filter = &view.filter;
        Self {
            email: view.email.clone(),
            delivery: view.delivery.as_str().to_owned(),
            min_severity: filter.min_severity.as_str().to_owned(),
            makers: filter
                .manufacturer_ids
                .iter()
                .map(Uuid::to_string)
                .collect(),
            categories: filter
                .categories
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            models: filter.model_ids.iter().map(Uuid::to_string).collect(),
        }
    }

    /// The subscription the form asks for, or what to correct.
    pub fn request(&self) -> Result<SubscribeRequest, String> {
        let email = match self.email.trim() {
            "" => return Err(format!("Your email address is missing. {ADDRESS_HINT}")),
            typed => EmailAddress::parse(typed)
                .map_err(|_| format!("“{typed}” is not an email address. {ADDRESS_HINT}"))?,
        };
        let (filter, delivery) = self.choice()?;
        Ok(SubscribeRequest {
            email,
            filter,
            delivery,
        })
    }

    /// What to receive and how often, or what to correct. Only a changed
    /// or outdated page sends values the form does not offer.
    pub fn choice(&self) -> Result<(SubscriptionFilter, Delivery), String> {
        let delivery = match self.delivery.as_str() {
            "" => Delivery::default(),
            other => other
                .parse()
                .map_err(|_| "Choose how often from the list.".to_owned())?,
        };
        let min_severity = match self.min_severity.as_str() {
            "" => Severity::None,
            other => other
                .parse()
                .map_err(|_| "Choose which advisories from the list.".to_owned())?,
        };
        let categories = self
            .categories
            .iter()
            .map(|c| c.parse::<Category>())
            .collect::<Result<_, _>>()
            .map_err(|_| "Choose the kinds of device from the list.".to_owned())?;
        let ids = |raw: &[String]| {
            raw.iter()
                .map(|id| id.parse::<Uuid>())
                .collect::<Result<Vec<_>, _>>()
        };
        let manufacturer_ids = ids(&self.makers).map_err(|_| UNKNOWN_MAKER.to_owned())?;
        let model_ids = ids(&self.models)
            .map_err(|_| "The page was changed: open the link in your mail again.".to_owned())?;
        let filter = SubscriptionFilter {
            manufacturer_ids,
            model_ids,
            categories,
            min_severity,
        };
        Ok((filter, delivery))
    }

    /// The choices to show, ticked as this form has them; `makers` are the
    /// register's (id and name).
    pub fn fields(&self, makers: &[(Uuid, String)]) -> FilterFields {
        let delivery = if self.delivery.is_empty() {
            Delivery::default().as_str()
        } else {
            &self.delivery
        };
        let severity = if self.min_severity.is_empty() {
            Severity::None.as_str()
        } else {
            &self.min_severity
        };
        let choice = |value: &str, label: &str, checked: bool| Choice {
            value: value.to_owned(),
            label: label.to_owned(),
            checked,
        };
        let makers: Vec<Choice> = makers
            .iter()
            .map(|(id, name)| {
                let id = id.to_string();
                let checked = self.makers.contains(&id);
                choice(&id, name, checked)
            })
            .collect();
        FilterFields {
            deliveries: Delivery::ALL
                .iter()
                .map(|d| choice(d.as_str(), delivery_label(*d), d.as_str() == delivery))
                .collect(),
            severities: Severity::ALL
                .iter()
                .map(|s| choice(s.as_str(), severity_label(*s), s.as_str() == severity))
                .collect(),
            categories: Category::ALL
                .iter()
                .map(|c| {
                    let checked = self.categories.iter().any(|t| t == c.as_str());
                    choice(c.as_str(), category_label(*c), checked)
                })
                .collect(),
            some_makers: makers.iter().any(|m| m.checked),
            makers,
            models: self.models.clone(),
        }
    }
}

fn delivery_label(delivery: Delivery) -> &'static str {
    match delivery {
        Delivery::Immediate => "As soon as a decision is published",
        Delivery::Daily => "One summary a day",
    }
}

fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::None => "Every advisory",
        Severity::Low => "Low severity and above",
        Severity::Medium => "Medium severity and above",
        Severity::High => "High and critical only",
        Severity::Critical => "Critical only",
    }
}

fn category_label(category: Category) -> &'static str {
    match category {
        Category::Phone => "Phones",
        Category::Tablet => "Tablets",
        Category::Wearable => "Watches and other wearables",
        Category::Laptop => "Laptops",
        Category::Router => "Routers",
        Category::Iot => "Smart home and other connected things",
        Category::Other => "Other devices",
    }
}

/// The form to subscribe, and its "check your mail" answer.
#[derive(Template)]
#[template(path = "pages/subscribe.html")]
struct SubscribePage<'a> {
    title: &'a str,
    email: &'a str,
    fields: FilterFields,
    /// Set once the request was taken: where the confirmation went.
    sent_to: Option<&'a str>,
    problem: Option<String>,
}

/// A subscription as its owner sees it, with the form to change it.
#[derive(Template)]
#[template(path = "pages/manage.html")]
struct ManagePage<'a> {
    title: &'a str,
    email: &'a str,
    state: SubscriptionState,
    /// `None` once the subscription has ended: nothing to change.
    fields: Option<FilterFields>,
    model_names: &'a [String],
    /// The link's token, posted back by the form.
    token: &'a str,
    saved: bool,
    problem: Option<String>,
    unsubscribe_url: Option<String>,
}

/// How a form's sending went, for the page that answers it.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing sent yet: the form as it stands.
    Blank,
    /// Taken: "check your mail", or "saved".
    Done,
    /// Something to correct, in plain words; the form as it was sent.
    Mistake(String),
}

impl Outcome {
    /// The outcome of a use case run for the form: a filter naming a maker
    /// that is gone is the visitor's to correct; any other error is left
    /// for an error page.
    pub fn of<T>(result: Result<T, workflow::Error>) -> Result<Self, workflow::Error> {
        match result {
            Ok(_) => Ok(Self::Done),
            Err(workflow::Error::Rejected(Rejection::Invalid(_))) => {
                Ok(Self::Mistake(UNKNOWN_MAKER.to_owned()))
            }
            Err(other) => Err(other),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Mistake(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Blank | Self::Done => StatusCode::OK,
        }
    }
}

/// `/subscribe`, answering `req`, after `outcome`, showing `form` with the
/// register's `makers` to choose from.
pub fn subscribe_page(
    req: &HttpRequest,
    form: &FilterForm,
    makers: &[(Uuid, String)],
    outcome: Outcome,
) -> HttpResponse {
    let status = outcome.status();
    let (title, sent_to, problem) = match outcome {
        Outcome::Done => ("Check your mail", Some(form.email.trim()), None),
        Outcome::Blank => ("Subscribe to advisories", None, None),
        Outcome::Mistake(problem) => ("Subscribe to advisories", None, Some(problem)),
    };
    let page = SubscribePage {
        title,
        email: &form.email,
        fields: form.fields(makers),
        sent_to,
        problem,
    };
    super::html(req, status, &page)
}

/// What the manage page shows besides the outcome.
pub struct Managed<'a> {
    pub view: &'a SubscriptionView,
    pub makers: &'a [(Uuid, String)],
    /// The link's token, posted back by the form.
    pub token: &'a str,
    /// `None` once the subscription has ended.
    pub unsubscribe_url: Option<String>,
}

/// `/manage`, answering `req`, after `outcome`: a mistake shows `sent` as
/// it was filled, anything else the subscription as it now is.
pub fn manage_page(
    req: &HttpRequest,
    managed: Managed<'_>,
    sent: Option<FilterForm>,
    outcome: Outcome,
) -> HttpResponse {
    let view = managed.view;
    let form = match (&outcome, sent) {
        (Outcome::Mistake(_), Some(sent)) => sent,
        _ => FilterForm::of(view),
    };
    let ended = view.state == SubscriptionState::Unsubscribed;
    let status = outcome.status();
    let (saved, problem) = match outcome {
        Outcome::Done => (true, None),
        Outcome::Blank => (false, None),
        Outcome::Mistake(problem) => (false, Some(problem)),
    };
    let page = ManagePage {
        title: "Your subscription",
        email: &view.email,
        state: view.state,
        fields: (!ended).then(|| form.fields(managed.makers)),
        model_names: &view.model_names,
        token: managed.token,
        saved,
        problem,
        unsubscribe_url: managed.unsubscribe_url,
    };
    super::html(req, status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_filled_form_becomes_the_apis_request() {
        let maker = Uuid::now_v7();
        let form = FilterForm::from_pairs(pairs(&[
            ("email", " Ada@Example.org "),
            ("delivery", "daily"),
            ("min_severity", "high"),
            ("category", "phone"),
            ("category", "tablet"),
            ("maker", &maker.to_string()),
        ]));
        let request = form.request().unwrap();
        assert_eq!(request.email.as_str(), "Ada@Example.org");
        assert_eq!(request.delivery, Delivery::Daily);
        assert_eq!(request.filter.min_severity, Severity::High);
        assert_eq!(
            request.filter.categories,
            [Category::Phone, Category::Tablet]
        );
        assert_eq!(request.filter.manufacturer_ids, [maker]);
        // Nothing chosen: everything, at once.
        let bare = FilterForm::from_pairs(pairs(&[("email", "ada@example.org")]));
        let request = bare.request().unwrap();
        assert_eq!(request.filter, SubscriptionFilter::default());
        assert_eq!(request.delivery, Delivery::Immediate);
    }

    #[test]
    fn mistakes_are_said_plainly() {
        let form = |raw: &[(&str, &str)]| FilterForm::from_pairs(pairs(raw)).request();
        assert_eq!(
            form(&[("email", "ada at example")]).unwrap_err(),
            "“ada at example” is not an email address. Enter an address like name@example.org."
        );
        assert_eq!(
            form(&[("email", "  ")]).unwrap_err(),
            "Your email address is missing. Enter an address like name@example.org."
        );
        let ok = ("email", "ada@example.org");
        assert_eq!(form(&[ok, ("maker", "xiaomi")]).unwrap_err(), UNKNOWN_MAKER);
        assert!(
            form(&[ok, ("delivery", "hourly")])
                .unwrap_err()
                .contains("how often")
        );
        assert!(
            form(&[ok, ("category", "car")])
                .unwrap_err()
                .contains("kinds of device")
        );
        assert!(
            form(&[ok, ("min_severity", "9")])
                .unwrap_err()
                .contains("which advisories")
        );
    }

    #[test]
    fn the_fields_show_what_was_chosen() {
        let xiaomi = Uuid::now_v7();
        let makers = [
            (Uuid::now_v7(), "Apple".to_owned()),
            (xiaomi, "Xiaomi".to_owned()),
        ];
        let form = FilterForm::from_pairs(pairs(&[
            ("delivery", "daily"),
            ("min_severity", "high"),
            ("category", "tablet"),
            ("maker", &xiaomi.to_string()),
        ]));
        let fields = form.fields(&makers);
        let checked = |choices: &[Choice]| -> Vec<String> {
            choices
                .iter()
                .filter(|c| c.checked)
                .map(|c| c.label.clone())
                .collect()
        };
        assert_eq!(checked(&fields.deliveries), ["One summary a day"]);
        assert_eq!(checked(&fields.severities), ["High and critical only"]);
        assert_eq!(checked(&fields.categories), ["Tablets"]);
        assert_eq!(checked(&fields.makers), ["Xiaomi"]);
        assert!(fields.some_makers);
        // A blank form: at once, every advisory, nothing narrowed.
        let fields = FilterForm::default().fields(&makers);
        assert_eq!(
            checked(&fields.deliveries),
            ["As soon as a decision is published"]
        );
        assert_eq!(checked(&fields.severities), ["Every advisory"]);
        assert!(checked(&fields.categories).is_empty() && !fields.some_makers);
    }

    #[test]
    fn a_subscription_fills_the_form_it_came_from() {
        let view = SubscriptionView {
            id: Uuid::now_v7(),
            email: "ada@example.org".into(),
            state: SubscriptionState::Confirmed,
            delivery: Delivery::Daily,
            filter: SubscriptionFilter {
                manufacturer_ids: vec![Uuid::now_v7()],
                model_ids: vec![Uuid::now_v7()],
                categories: vec![Category::Phone],
                min_severity: Severity::Medium,
            },
            model_names: vec!["Redmi 1S".into()],
        };
        let form = FilterForm::of(&view);
        let (filter, delivery) = form.choice().unwrap();
        assert_eq!((filter, delivery), (view.filter, Delivery::Daily));
    }
}
