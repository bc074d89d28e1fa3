//! An advisory as a CSAF 2.0 document (OASIS Common Security Advisory
//! Framework), built from typed structs so that what is emitted is exactly
//! what the types allow — never a string template.
//!
//! The category is always `csaf_security_advisory`: every published advisory
//! decides on products and cites evidence of what they do, which is what
//! that profile requires (a product tree, and one vulnerability with notes
//! and product status). Our findings are data flows rather than catalogued
//! flaws, so the vulnerability names no CVE; CSAF does not require one.
//!
//! Only the revisions that were published appear in the revision history.
//! Withdrawing or superseding an advisory changes the document (a note says
//! so), so each adds one last entry to the revision history and raises
//! `tracking.version`, as CSAF asks of every change, and `tracking.status`
//! stays `final`: CSAF 2.0 has no "withdrawn" status.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::db::advisories::{self, AdvisoryRecord, RevisionRecord};
use crate::db::{DbConnection, DbError, evidence, models};
use crate::domain::advisory::{DecisionSpec, Tlp};
use crate::domain::clearance::{Decision, Scope};
use crate::domain::evidence::{Consent, Evidence, Finding};
use crate::domain::registry::{Category, Model};
use crate::domain::wording;
use crate::export::provider;

crate::text_enum! {
    /// What kind of organisation publishes the documents (CSAF 2.0 §3.2.1.8.1).
    pub enum PublisherCategory {
        Coordinator,
        Discoverer,
        Other,
        Translator,
        User,
        Vendor,
    }
}

/// `document.publisher`, from the settings; also the provider metadata's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publisher {
    pub category: PublisherCategory,
    pub name: String,
    /// An absolute URL naming the publisher's namespace.
    pub namespace: String,
}

/// The publisher as a document and the provider metadata name it: the
/// configured publisher and, when the deployment names one
/// (`CLEARANCE_CONTACT`), whom to ask, as every public page does.
#[derive(Debug, Clone, Serialize)]
pub struct PublisherEntry {
    #[serde(flatten)]
    publisher: Publisher,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_details: Option<String>,
}

impl PublisherEntry {
    pub fn new(publisher: &Publisher, contact: Option<&str>) -> Self {
        Self {
            publisher: publisher.clone(),
            contact_details: contact.map(str::to_owned),
        }
    }
}

/// Everything a document is built from, loaded in one read.
pub struct Source {
    pub advisory: AdvisoryRecord,
    /// The published revisions, oldest first.
    pub revisions: Vec<RevisionRecord>,
    pub evidence: Vec<Evidence>,
    pub models: HashMap<Uuid, Model>,
    /// The reference of the advisory that superseded this one.
    pub superseded_by: Option<String>,
    /// When that advisory takes effect: until then this one still applies.
    pub successor_effective_at: Option<DateTime<Utc>>,
}

impl Source {
    /// When the advisory that superseded this one takes effect, if that is
    /// after the supersession: this one's decisions stand until then.
    pub fn stands_until(&self) -> Option<DateTime<Utc>> {
        let superseded_at = self.advisory.superseded_at?;
        self.successor_effective_at
            .filter(|effective| *effective > superseded_at)
    }
}

/// Loads what the document of advisory `id` needs; `None` when the advisory
/// was never published (there is nothing to export yet).
pub fn load(conn: &mut DbConnection, id: Uuid) -> Result<Option<Source>, DbError> {
    let advisory = advisories::get(conn, id)?;
    let Some(current) = &advisory.current else {
        return Ok(None);
    };
    let mut found = Vec::new();
    for evidence_id in &current.content.evidence_ids {
        found.push(evidence::get(conn, *evidence_id)?);
    }
    let mut models = HashMap::new();
    for model_id in current
        .content
        .decisions
        .iter()
        .filter_map(|d| d.scope.model())
    {
        if let Entry::Vacant(entry) = models.entry(model_id) {
            entry.insert(models::get(conn, model_id)?);
        }
    }
    let (superseded_by, successor_effective_at) = match advisory.superseded_by {
        Some(by) => {
            let successor = advisories::get(conn, by)?;
            let effective_at = successor.current.and_then(|c| c.content.effective_at);
            (successor.reference, effective_at)
        }
        None => (None, None),
    };
    Ok(Some(Source {
        revisions: advisories::published_revisions(conn, id)?,
        advisory,
        evidence: found,
        models,
        superseded_by,
        successor_effective_at,
    }))
}

/// What [`load`] loads, for the advisory published as `reference`; `None`
/// when no advisory readers may see has that reference.
pub fn load_published(conn: &mut DbConnection, reference: &str) -> Result<Option<Source>, DbError> {
    match advisories::find_by_reference(conn, reference)? {
        Some(found) if found.lifecycle.state.is_public() => load(conn, found.id),
        _ => Ok(None),
    }
}

/// When a document was released and revised: what `tracking` says, and
/// what the provider's `index.txt` and `changes.csv` list.
#[derive(Debug, Clone)]
pub struct Release {
    pub reference: String,
    pub tlp: Tlp,
    pub initial: DateTime<Utc>,
    pub current: DateTime<Utc>,
    history: Vec<Revision>,
}

impl Release {
    /// The release of a published advisory; `None` before publication.
    pub fn of(
        advisory: &AdvisoryRecord,
        revisions: &[RevisionRecord],
        superseded_by: Option<&str>,
    ) -> Option<Self> {
        let reference = advisory.reference.clone()?;
        let tlp = advisory.current.as_ref()?.content.tlp;
        let mut history: Vec<Revision> = revisions
            .iter()
            .map(|r| Revision {
                number: r.number.to_string(),
                date: r.published.as_ref().map_or(r.updated_at, |(_, at)| *at),
                summary: if r.number == 1 {
                    "Initial publication.".into()
                } else {
                    format!("Amended: revision {} published.", r.number)
                },
            })
            .collect();
        let last = revisions.last()?.number;
        let ending = match (&advisory.withdrawn, advisory.superseded_at) {
            (Some(w), _) => Some((w.at, format!("Withdrawn: {}", w.reason))),
            (None, Some(at)) => Some((
                at,
                format!(
                    "Superseded by {}.",
                    superseded_by.unwrap_or("a later advisory")
                ),
            )),
            (None, None) => None,
        };
        if let Some((date, summary)) = ending {
            history.push(Revision {
                number: (last + 1).to_string(),
                date,
                summary,
            });
        }
        Some(Self {
            reference,
            tlp,
            initial: history.first()?.date,
            current: history.last()?.date,
            history,
        })
    }

    /// Each entry of the revision history, oldest first: when, and what
    /// changed ("Initial publication.", "Withdrawn: …").
    pub fn history(&self) -> impl Iterator<Item = (DateTime<Utc>, &str)> {
        self.history.iter().map(|r| (r.date, r.summary.as_str()))
    }

    /// The document's path in the provider's distribution directory: the
    /// year of its initial release, and its lower-cased reference with any
    /// character outside `[+-a-z0-9]` replaced by `_` (CSAF 2.0 §5.1).
    pub fn path(&self) -> String {
        clear_path(&self.reference, self.initial)
    }
}

/// The path of advisory `reference`, first released at `initial`, in the
/// provider's distribution directory.
fn clear_path(reference: &str, initial: DateTime<Utc>) -> String {
    format!("{}/{}", initial.year(), file_name(reference))
}

/// Where anyone fetches the TLP:CLEAR document of advisory `reference`,
/// first released at `initial`, on the site at `base`.
pub fn clear_url(base: &str, reference: &str, initial: DateTime<Utc>) -> String {
    format!(
        "{base}{}{}",
        provider::CLEAR_DIRECTORY,
        clear_path(reference, initial)
    )
}

/// `CLR-2026-0001` → `clr-2026-0001.json`.
pub fn file_name(reference: &str) -> String {
    let stem: String = reference
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '+' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}.json")
}

/// A CSAF 2.0 document: the parts of the schema Clearance emits.
#[derive(Debug, Serialize)]
pub struct Document {
    document: Meta,
    product_tree: ProductTree,
    vulnerabilities: Vec<Vulnerability>,
}

#[derive(Debug, Serialize)]
struct Meta {
    category: &'static str,
    csaf_version: &'static str,
    title: String,
    lang: &'static str,
    publisher: PublisherEntry,
    tracking: Tracking,
    distribution: Distribution,
    aggregate_severity: AggregateSeverity,
    notes: Vec<Note>,
    references: Vec<Reference>,
}

#[derive(Debug, Serialize)]
struct Tracking {
    id: String,
    status: &'static str,
    version: String,
    initial_release_date: DateTime<Utc>,
    current_release_date: DateTime<Utc>,
    revision_history: Vec<Revision>,
    generator: Generator,
}

#[derive(Debug, Clone, Serialize)]
struct Revision {
    number: String,
    date: DateTime<Utc>,
    summary: String,
}

#[derive(Debug, Serialize)]
struct Generator {
    engine: Engine,
}

#[derive(Debug, Serialize)]
struct Engine {
    name: &'static str,
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct Distribution {
    tlp: TlpMarking,
}

#[derive(Debug, Serialize)]
struct TlpMarking {
    label: &'static str,
}

#[derive(Debug, Serialize)]
struct AggregateSeverity {
    text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum NoteCategory {
    Description,
    Details,
    General,
    Other,
    Summary,
}

#[derive(Debug, Serialize)]
struct Note {
    category: NoteCategory,
    title: String,
    text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum ReferenceCategory {
    External,
    #[serde(rename = "self")]
    OwnUrl,
}

#[derive(Debug, Serialize)]
struct Reference {
    category: ReferenceCategory,
    summary: String,
    url: String,
}

#[derive(Debug, Serialize)]
struct ProductTree {
    branches: Vec<Branch>,
}

/// A branch holds either further branches or one product, never both: the
/// schema wants exactly three properties, which the enum guarantees.
#[derive(Debug, Serialize)]
struct Branch {
    category: &'static str,
    name: String,
    #[serde(flatten)]
    child: Child,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Child {
    Branches(Vec<Branch>),
    Product(Product),
}

#[derive(Debug, Serialize)]
struct Product {
    name: String,
    product_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    product_identification_helper: Option<Helper>,
}

#[derive(Debug, Serialize)]
struct Helper {
    skus: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Vulnerability {
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    discovery_date: Option<DateTime<Utc>>,
    notes: Vec<Note>,
    product_status: ProductStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    remediations: Vec<Remediation>,
}

#[derive(Debug, Default, Serialize)]
struct ProductStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    known_affected: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    known_not_affected: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fixed: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum RemediationCategory {
    Mitigation,
    NoFixPlanned,
    VendorFix,
    Workaround,
}

#[derive(Debug, Serialize)]
struct Remediation {
    category: RemediationCategory,
    details: String,
    product_ids: Vec<String>,
}

/// CSAF 2.0 knows TLP 1.0 only: CLEAR is `WHITE`, and AMBER+STRICT has no
/// label of its own, so it is sent as `AMBER` with a note saying so.
fn tlp_label(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "WHITE",
        Tlp::Green => "GREEN",
        Tlp::Amber | Tlp::AmberStrict => "AMBER",
        Tlp::Red => "RED",
    }
}

/// Where the document can be fetched again: the provider's directory for
/// TLP:CLEAR, the API otherwise.
pub fn self_url(base: &str, advisory: Uuid, release: &Release) -> String {
    if release.tlp == Tlp::Clear {
        clear_url(base, &release.reference, release.initial)
    } else {
        format!("{base}/api/v1/advisories/{advisory}/csaf")
    }
}

impl Document {
    /// The document for the advisory's revision in force; `None` before
    /// publication. `base` is the public URL without a trailing slash.
    pub fn build(source: &Source, publisher: &PublisherEntry, base: &str) -> Option<Self> {
        let advisory = &source.advisory;
        let current = advisory.current.as_ref()?;
        let release = Release::of(advisory, &source.revisions, source.superseded_by.as_deref())?;
        let content = &current.content;
        let (product_tree, products) =
            product_tree(&content.decisions, &source.models, &current.names);
        let mut references = vec![Reference {
            category: ReferenceCategory::OwnUrl,
            summary: format!("This advisory, {}, as CSAF", release.reference),
            url: self_url(base, advisory.id, &release),
        }];
        for evidence in &source.evidence {
            for url in &evidence.references {
                references.push(Reference {
                    category: ReferenceCategory::External,
                    summary: format!("Evidence: {}", evidence.title),
                    url: url.as_str().to_owned(),
                });
            }
        }
        Some(Self {
            document: Meta {
                category: "csaf_security_advisory",
                csaf_version: "2.0",
                title: content.title.to_string(),
                lang: "en",
                publisher: publisher.clone(),
                tracking: Tracking {
                    id: release.reference.clone(),
                    status: "final",
                    version: release.history.last()?.number.clone(),
                    initial_release_date: release.initial,
                    current_release_date: release.current,
                    revision_history: release.history.clone(),
                    generator: Generator {
                        engine: Engine {
                            name: "Clearance",
                            version: env!("CARGO_PKG_VERSION"),
                        },
                    },
                },
                distribution: Distribution {
                    tlp: TlpMarking {
                        label: tlp_label(content.tlp),
                    },
                },
                aggregate_severity: AggregateSeverity {
                    text: content.severity.to_string(),
                },
                notes: document_notes(source, current),
                references,
            },
            product_tree,
            vulnerabilities: vec![vulnerability(source, current, &products)],
        })
    }
}

fn document_notes(source: &Source, current: &RevisionRecord) -> Vec<Note> {
    let content = &current.content;
    let mut notes = vec![Note {
        category: NoteCategory::Summary,
        title: "Summary".into(),
        text: content.summary.to_string(),
    }];
    if !content.body.trim().is_empty() {
        notes.push(Note {
            category: NoteCategory::Details,
            title: "Advisory".into(),
            text: content.body.clone(),
        });
    }
    if content.tlp == Tlp::AmberStrict {
        notes.push(Note {
            category: NoteCategory::Other,
            title: "TLP:AMBER+STRICT".into(),
            text: "This advisory is marked TLP:AMBER+STRICT: share it only within your own \
                   organisation. CSAF 2.0 has no such label, so the distribution says AMBER."
                .into(),
        });
    }
    if let Some(withdrawal) = &source.advisory.withdrawn {
        notes.push(Note {
            category: NoteCategory::General,
            title: "Withdrawn".into(),
            text: format!(
                "This advisory was withdrawn on {}; its decisions no longer apply. Reason: {}",
                withdrawal.at.format("%Y-%m-%d"),
                withdrawal.reason
            ),
        });
    } else if let Some(at) = source.advisory.superseded_at {
        notes.push(Note {
            category: NoteCategory::General,
            title: "Superseded".into(),
            text: format!(
                "This advisory was superseded on {} by {}; {}.",
                at.format("%Y-%m-%d"),
                source
                    .superseded_by
                    .as_deref()
                    .unwrap_or("a later advisory"),
                match source.stands_until() {
                    Some(until) => format!(
                        "that takes effect on {}, and its decisions apply until then",
                        until.format("%Y-%m-%d")
                    ),
                    None => "its decisions no longer apply".into(),
                }
            ),
        });
    }
    notes
}

/// One product per decision: the id it got, and the decision.
struct Decided<'a> {
    id: String,
    name: String,
    spec: &'a DecisionSpec,
}

/// Vendor → model, or the vendor's product family for a decision about
/// every model of a maker (of a category) → (firmware range →) product. A
/// target with one decision for every firmware is a product itself; one
/// whose decisions depend on the firmware gets one `product_version_range`
/// per decision.
fn product_tree<'a>(
    decisions: &'a [DecisionSpec],
    models: &HashMap<Uuid, Model>,
    names: &HashMap<Uuid, String>,
) -> (ProductTree, Vec<Decided<'a>>) {
    let mut decided = Vec::new();
    let mut vendors: Vec<Branch> = Vec::new();
    let mut targets: Vec<Scope> = Vec::new();
    for d in decisions {
        if !targets.contains(&d.scope) {
            targets.push(d.scope);
        }
    }
    for scope in targets {
        let own: Vec<&DecisionSpec> = decisions.iter().filter(|d| d.scope == scope).collect();
        let (vendor, category, name, full_name, helper) = match scope {
            Scope::Model(id) => {
                let Some(model) = models.get(&id) else {
                    continue;
                };
                let skus = (!model.model_numbers.is_empty()).then(|| Helper {
                    skus: model.model_numbers.clone(),
                });
                let full = wording::model_name(&model.manufacturer.name, &model.name);
                (
                    model.manufacturer.name.clone(),
                    "product_name",
                    model.name.clone(),
                    full,
                    skus,
                )
            }
            Scope::Manufacturer { id, category } => {
                let Some(maker) = names.get(&id) else {
                    continue;
                };
                let family = category.map_or("all products", Category::plural);
                let full = wording::target_name(scope, maker);
                (
                    maker.clone(),
                    "product_family",
                    family.to_owned(),
                    full,
                    None,
                )
            }
        };
        let mut product = |name: String, spec: &'a DecisionSpec, helper: Option<Helper>| {
            let id = format!("CSAFPID-{:04}", decided.len() + 1);
            decided.push(Decided {
                id: id.clone(),
                name: name.clone(),
                spec,
            });
            Product {
                name,
                product_id: id,
                product_identification_helper: helper,
            }
        };
        let child = match own.as_slice() {
            [only] if only.firmware.is_none() => Child::Product(product(full_name, only, helper)),
            _ => Child::Branches(
                own.iter()
                    .map(|spec| {
                        let (vers, shown) = match &spec.firmware {
                            Some(range) => (range.vers(), format!("firmware {range}")),
                            None => ("vers:generic/*".to_owned(), "any firmware".to_owned()),
                        };
                        Branch {
                            category: "product_version_range",
                            name: vers,
                            child: Child::Product(product(
                                format!("{full_name} ({shown})"),
                                spec,
                                helper.as_ref().map(|h| Helper {
                                    skus: h.skus.clone(),
                                }),
                            )),
                        }
                    })
                    .collect(),
            ),
        };
        let target_branch = Branch {
            category,
            name,
            child,
        };
        match vendors.iter_mut().find(|v| v.name == vendor) {
            Some(Branch {
                child: Child::Branches(children),
                ..
            }) => children.push(target_branch),
            _ => vendors.push(Branch {
                category: "vendor",
                name: vendor,
                child: Child::Branches(vec![target_branch]),
            }),
        }
    }
    (ProductTree { branches: vendors }, decided)
}

fn vulnerability(source: &Source, current: &RevisionRecord, products: &[Decided]) -> Vulnerability {
    let mut notes = Vec::new();
    for evidence in &source.evidence {
        notes.push(Note {
            category: NoteCategory::Description,
            title: format!("Evidence: {} ({})", evidence.title, evidence.source),
            text: evidence.summary.clone(),
        });
        for finding in &evidence.findings {
            notes.push(Note {
                category: NoteCategory::Details,
                title: format!("Finding: {} to {}", finding.data, finding.destination),
                text: finding_text(finding),
            });
        }
    }
    if notes.is_empty() {
        notes.push(Note {
            category: NoteCategory::Summary,
            title: "Summary".into(),
            text: current.content.summary.to_string(),
        });
    }
    let mut status = ProductStatus::default();
    let mut remediations = Vec::new();
    for product in products {
        let spec = product.spec;
        let conditions = spec
            .conditions
            .as_ref()
            .map(|c| format!(" Conditions: {c}"))
            .unwrap_or_default();
        let (category, details) = match (spec.decision, &spec.firmware) {
            (Decision::Prohibited, _) => {
                status.known_affected.push(product.id.clone());
                (
                    RemediationCategory::NoFixPlanned,
                    format!("Prohibited: do not use the {}.{conditions}", product.name),
                )
            }
            (Decision::Restricted, _) => {
                status.known_affected.push(product.id.clone());
                (
                    RemediationCategory::Mitigation,
                    format!(
                        "Restricted: use the {} only as this advisory allows.{conditions}",
                        product.name
                    ),
                )
            }
            (Decision::ApprovedWithConditions, _) => {
                status.known_affected.push(product.id.clone());
                (
                    RemediationCategory::Workaround,
                    format!(
                        "Approved with conditions: the {} may be used.{conditions}",
                        product.name
                    ),
                )
            }
            (Decision::Approved, Some(range)) => {
                status.fixed.push(product.id.clone());
                (
                    RemediationCategory::VendorFix,
                    format!(
                        "Approved on firmware {range}: update the {} to such a firmware.{conditions}",
                        product.name
                    ),
                )
            }
            (Decision::Approved, None) => {
                status.known_not_affected.push(product.id.clone());
                continue;
            }
        };
        remediations.push(Remediation {
            category,
            details,
            product_ids: vec![product.id.clone()],
        });
    }
    let title = match source.evidence.as_slice() {
        [only] => only.title.clone(),
        _ => current.content.title.to_string(),
    };
    Vulnerability {
        title,
        discovery_date: source.evidence.iter().map(|e| e.observed_at).min(),
        notes,
        product_status: status,
        remediations,
    }
}

/// A finding in words: "The imei is sent to api.example (CN), unencrypted,
/// without consent. While the service was on."
fn finding_text(finding: &Finding) -> String {
    let country = finding
        .country
        .as_ref()
        .map(|c| format!(" ({})", c.as_str()))
        .unwrap_or_default();
    let encrypted = match finding.encrypted {
        Some(true) => "encrypted",
        Some(false) => "unencrypted",
        None => "encryption unknown",
    };
    let consent = match finding.consent {
        Consent::Yes => "with consent",
        Consent::No => "without consent",
        Consent::Unknown => "consent unknown",
    };
    let note = finding
        .note
        .as_ref()
        .map(|n| format!(" Note: {n}"))
        .unwrap_or_default();
    format!(
        "The {} is sent to {}{country}, {encrypted}, {consent}.{note}",
        finding.data.as_str().replace('_', " "),
        finding.destination
    )
}
