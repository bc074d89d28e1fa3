//! Public subscriptions: an address, a filter of what it wants to hear
//! about, and the double opt-in lifecycle. Subscribers have no account, so
//! anyone can type anyone's address: the rules below make sure that doing
//! so can never change a confirmed subscription, only send its owner a
//! mail.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::email::EmailAddress;
use super::registry::Category;
use super::severity::Severity;

crate::text_enum! {
    /// Where a subscription stands.
    pub enum SubscriptionState {
        /// Asked for, waiting for the address to confirm; receives nothing else.
        Pending,
        /// Confirmed by its address: receives matching advisories.
        Confirmed,
        /// Ended by its address: receives no subscription mail.
        Unsubscribed,
    }
}

crate::text_enum! {
    /// How matching advisories reach a subscriber.
    #[derive(Default)]
    pub enum Delivery {
        /// One mail per advisory, as it is published.
        #[default]
        Immediate,
        /// One mail a day listing what was published since the last one.
        Daily,
    }
}

/// What a subscriber wants to hear about. An empty list means "any"; an
/// advisory matches when its severity reaches `min_severity` and one model
/// it decides on passes every non-empty list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionFilter {
    #[serde(default)]
    pub manufacturer_ids: Vec<Uuid>,
    #[serde(default)]
    pub model_ids: Vec<Uuid>,
    #[serde(default)]
    pub categories: Vec<Category>,
    /// Default `none`: every severity.
    #[serde(default = "any_severity")]
    pub min_severity: Severity,
}

fn any_severity() -> Severity {
    Severity::None
}

/// A request to subscribe, as a request body (or the form) gives it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Subscribe)]
pub struct SubscribeRequest {
    #[schema(value_type = String, format = Email, example = "family@example.org")]
    pub email: EmailAddress,
    /// What to hear about; absent or empty lists mean "any".
    #[serde(default)]
    pub filter: SubscriptionFilter,
    /// `immediate` (default) or `daily`.
    #[serde(default)]
    pub delivery: Delivery,
}

/// What an advisory decides on, as a filter sees it: a model, or (for a
/// decision about every model of a maker) the maker itself, perhaps of one
/// category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecidedModel {
    pub model_id: Option<Uuid>,
    pub manufacturer_id: Uuid,
    pub category: Option<Category>,
}

impl SubscriptionFilter {
    /// Whether an advisory of `severity` deciding on `models` is one the
    /// subscriber asked for: severe enough, and one model passes every
    /// non-empty list.
    pub fn matches(&self, severity: Severity, models: &[DecidedModel]) -> bool {
        let passes = |list_empty: bool, contains: bool| list_empty || contains;
        severity >= self.min_severity
            && models.iter().any(|m| {
                passes(
                    self.manufacturer_ids.is_empty(),
                    self.manufacturer_ids.contains(&m.manufacturer_id),
                ) && passes(
                    self.model_ids.is_empty(),
                    m.model_id.is_some_and(|id| self.model_ids.contains(&id)),
                ) && passes(
                    self.categories.is_empty(),
                    m.category.is_some_and(|c| self.categories.contains(&c)),
                )
            })
    }
}

/// Everything.
impl Default for SubscriptionFilter {
    fn default() -> Self {
        Self {
            manufacturer_ids: Vec::new(),
            model_ids: Vec::new(),
            categories: Vec::new(),
            min_severity: any_severity(),
        }
    }
}

impl SubscriptionFilter {
    /// The filter without repeated entries, each list in its first order.
    pub fn deduplicated(self) -> Self {
        fn dedup<T: Eq + std::hash::Hash + Copy>(items: Vec<T>) -> Vec<T> {
            let mut seen = std::collections::HashSet::new();
            items.into_iter().filter(|i| seen.insert(*i)).collect()
        }
        Self {
            manufacturer_ids: dedup(self.manufacturer_ids),
            model_ids: dedup(self.model_ids),
            categories: dedup(self.categories),
            min_severity: self.min_severity,
        }
    }
}

/// What a subscription request does, given the state of the address's
/// subscription (if it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeStep {
    /// A new address: a pending subscription, and a mail to confirm it.
    Create,
    /// Not confirmed (pending, or unsubscribed earlier): take the new
    /// filter, be pending, and mail a new confirmation.
    Renew,
    /// Confirmed: change nothing (the request may not be the owner's), and
    /// mail the owner a link to manage the subscription instead.
    OfferManage,
}

pub fn on_subscribe(current: Option<SubscriptionState>) -> SubscribeStep {
    match current {
        None => SubscribeStep::Create,
        Some(SubscriptionState::Pending | SubscriptionState::Unsubscribed) => SubscribeStep::Renew,
        Some(SubscriptionState::Confirmed) => SubscribeStep::OfferManage,
    }
}

/// A subscription as its owner sees it on the manage page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    pub id: Uuid,
    pub email: String,
    pub state: SubscriptionState,
    pub delivery: Delivery,
    pub filter: SubscriptionFilter,
    /// Names of the filter's models, in name order (empty: any).
    pub model_names: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_needs_severity_and_one_model_passing_every_list() {
        let phone = DecidedModel {
            model_id: Some(Uuid::now_v7()),
            manufacturer_id: Uuid::now_v7(),
            category: Some(Category::Phone),
        };
        let everything = SubscriptionFilter::default();
        assert!(everything.matches(Severity::None, &[phone]));
        assert!(!everything.matches(Severity::Low, &[]));
        let maker_tablets = SubscriptionFilter {
            manufacturer_ids: vec![phone.manufacturer_id],
            categories: vec![Category::Tablet],
            min_severity: Severity::High,
            ..SubscriptionFilter::default()
        };
        assert!(!maker_tablets.matches(Severity::Critical, &[phone]));
        let tablet = DecidedModel {
            category: Some(Category::Tablet),
            ..phone
        };
        assert!(maker_tablets.matches(Severity::Critical, &[phone, tablet]));
        assert!(!maker_tablets.matches(Severity::Medium, &[tablet]));
        let every_tablet_of_the_maker = DecidedModel {
            model_id: None,
            ..tablet
        };
        assert!(maker_tablets.matches(Severity::Critical, &[every_tablet_of_the_maker]));
        let one_model = SubscriptionFilter {
            model_ids: vec![Uuid::now_v7()],
            ..SubscriptionFilter::default()
        };
        assert!(!one_model.matches(Severity::Critical, &[every_tablet_of_the_maker]));
    }

    #[test]
    fn a_confirmed_subscription_is_never_changed_by_a_request() {
        assert_eq!(on_subscribe(None), SubscribeStep::Create);
        assert_eq!(
            on_subscribe(Some(SubscriptionState::Pending)),
            SubscribeStep::Renew
        );
        assert_eq!(
            on_subscribe(Some(SubscriptionState::Unsubscribed)),
            SubscribeStep::Renew
        );
        assert_eq!(
            on_subscribe(Some(SubscriptionState::Confirmed)),
            SubscribeStep::OfferManage
        );
    }

    #[test]
    fn an_empty_filter_means_everything_and_repeats_are_dropped() {
        let filter: SubscriptionFilter = serde_json::from_str("{}").unwrap();
        assert_eq!(filter, SubscriptionFilter::default());
        assert_eq!(filter.min_severity, Severity::None);
        let id = Uuid::now_v7();
        let filter = SubscriptionFilter {
            manufacturer_ids: vec![id, id],
            categories: vec![Category::Phone, Category::Tablet, Category::Phone],
            ..SubscriptionFilter::default()
        }
        .deduplicated();
        assert_eq!(filter.manufacturer_ids, vec![id]);
        assert_eq!(filter.categories, vec![Category::Phone, Category::Tablet]);
        assert_eq!(Delivery::default(), Delivery::Immediate);
    }
}
