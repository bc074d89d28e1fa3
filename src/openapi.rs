//! The OpenAPI 3.1 document, generated from the handlers' annotations: the
//! same list of endpoints that builds the route table (`crate::api`), plus
//! the errors every operation of a kind can answer, declared once here.

use actix_web::http::Method;
use utoipa::Number;
use utoipa::OpenApi;
use utoipa::openapi::header::Header;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, Parameter, ParameterIn, PathItem};
use utoipa::openapi::schema::{
    KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Required, ResponseBuilder};
use uuid::Uuid;

use crate::api::{
    self,
    extract::{CURSOR_PATTERN, Page, PageRequest},
};
use crate::error::PROBLEM_JSON;
use crate::limits::rate::RateClass;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Clearance",
        description = "Device advisory service: a register of device models, the evidence about them and the advisories that decide whether they may be used. Errors are RFC 9457 `application/problem+json`.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(
        crate::error::Problem,
        crate::error::FieldError,
        Page<crate::domain::registry::Manufacturer>,
        Page<api::models::ModelView>,
        Page<crate::domain::evidence::Evidence>,
        Page<crate::db::clearance::StatusChange>,
        Page<api::advisories::AdvisoryView>,
        Page<api::advisories::RevisionView>,
        Page<crate::db::reviews::Review>,
        Page<api::audit::AuditEntry>,
        Page<crate::domain::personnel::Person>,
    )),
    tags(
        (name = "registry", description = "Manufacturers and device models"),
        (name = "lookup", description = "May this device be used?"),
        (name = "evidence", description = "What was observed about models, the answers to it, and its files; never edited, only appended to"),
        (name = "advisories", description = "Advisories that decide whether models may be used, and their lifecycle"),
        (name = "reviews", description = "Models under examination until a due date"),
        (name = "personnel", description = "The directory of people who must follow advisories (admin)"),
        (name = "subscriptions", description = "Public subscriptions to TLP:CLEAR advisories, and the pages the links in their mail open"),
        (name = "audit", description = "The tamper-evident record of every change"),
        (name = "operations", description = "Health, readiness, documentation"),
    )
)]
struct Base;

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    let mut scheme = Http::new(HttpAuthScheme::Bearer);
    scheme.bearer_format = Some("JWT".into());
    components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    let endpoints = api::endpoints();
    let handler_names: Vec<String> = endpoints
        .iter()
        .map(|e| operation_id(&e.operation))
        .collect();
    for mut endpoint in endpoints {
        components.schemas.extend(endpoint.schemas);
        if takes_bearer_by_default(&endpoint.path) && endpoint.operation.security.is_none() {
            let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
            endpoint.operation.security = Some(vec![bearer]);
        }
        // Operation ids are unique in a document: `models_list`, not `list`.
        let name = operation_id(&endpoint.operation);
        if handler_names.iter().filter(|n| **n == name).count() > 1 {
            endpoint.operation.operation_id = Some(format!("{}_{name}", endpoint.module));
        }
        let method = match endpoint.method {
            HttpMethod::Post => Method::POST,
            _ => Method::GET,
        };
        if RateClass::of(&endpoint.path, &method).is_some() {
            endpoint.operation.responses.responses.insert(
                "429".to_owned(),
                ResponseBuilder::new()
                    .description(
                        "Too many requests from this client: try again after `Retry-After` seconds",
                    )
                    .header("Retry-After", Header::new(Object::with_type(Type::Integer)))
                    .into(),
            );
        }
        doc.paths
            .add_path_operation(&endpoint.path, vec![endpoint.method], endpoint.operation);
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in operations(item) {
            describe_record_id(path, operation);
            declare_problems(operation);
            describe_query(operation);
        }
    }
    link_records(&mut doc);
    doc
}

/// Documents a path's `{id}`, the UUID of a record, once here rather than
/// on each operation (utoipa names it only where a handler takes
/// `web::Path<Uuid>` itself), and lists the path's parameters first, in
/// the path's order.
fn describe_record_id(path: &str, operation: &mut Operation) {
    let names = path_parameters(path);
    // Where a parameter goes: a path's in the path's order, then the rest.
    let place = |p: &RefOr<Parameter>| match p {
        RefOr::T(p) if p.parameter_in == ParameterIn::Path => {
            names.iter().position(|name| *name == p.name)
        }
        _ => Some(names.len()),
    };
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    let id_place = names.iter().position(|name| *name == "id");
    if id_place.is_some() && !parameters.iter().any(|p| place(p) == id_place) {
        let mut id = Parameter::new("id");
        id.parameter_in = ParameterIn::Path;
        id.required = Required::True;
        let uuid = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
        id.schema = Some(RefOr::T(Schema::Object(uuid.build())));
        parameters.push(RefOr::T(id));
    }
    parameters.sort_by_key(place);
    if parameters.is_empty() {
        operation.parameters = None;
    }
}

/// The header parameter `name` (in any case) that `operation` documents.
pub fn header_parameter<'a>(operation: &'a Operation, name: &str) -> Option<&'a Parameter> {
    operation
        .parameters
        .iter()
        .flatten()
        .find_map(|parameter| match parameter {
            RefOr::T(p)
                if p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case(name) =>
            {
                Some(p)
            }
            _ => None,
        })
}

fn operation_id(operation: &Operation) -> String {
    operation.operation_id.clone().unwrap_or_default()
}

/// An operation on one record, which a link can lead to.
struct RecordOperation {
    path: String,
    operation_id: String,
    takes_if_match: bool,
}

/// The names of a path's parameters: `["id", "sha256"]` for
/// `/evidence/{id}/artifacts/{sha256}`.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// Links from where a record's key is learnt to the operations on that
/// record, so that a client (and Schemathesis's stateful phase) can follow
/// them: from a 201 at `{path}` to every operation at or below
/// `{path}/{key}`, the key taken from the created body; from a 200 of an
/// operation on a record (reading it, or a lifecycle step) to the other
/// operations at or below that record. The parameters of the source's own
/// path come from its request; `If-Match` from the response's ETag where
/// the target takes it.
fn link_records(doc: &mut utoipa::openapi::OpenApi) {
    let mut targets = Vec::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in operations(item) {
            targets.push(RecordOperation {
                path: path.clone(),
                operation_id: operation_id(operation),
                takes_if_match: header_parameter(operation, "If-Match").is_some(),
            });
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        // The record a path is on: `/advisories/{id}` for
        // `/advisories/{id}/submit`; none for a collection.
        let record = path.rfind('}').map(|end| &path[..=end]);
        let mut sources = Vec::new();
        if let Some(post) = item.post.as_mut() {
            let mut answers = vec![("201", path.as_str())];
            answers.extend(record.map(|record| ("200", record)));
            sources.push((post, answers));
        }
        if let (Some(read), Some(record)) = (item.get.as_mut(), record) {
            sources.push((read, vec![("200", record)]));
        }
        for (source, answers) in sources {
            let own_id = operation_id(source);
            for (status, base) in answers {
                let Some(RefOr::T(response)) = source.responses.responses.get_mut(status) else {
                    continue;
                };
                let has_etag = response.headers.contains_key("ETag");
                for target in &targets {
                    let Some(rest) = target.path.strip_prefix(base) else {
                        continue;
                    };
                    let new_keys = path_parameters(rest);
                    let reachable = match status {
                        "201" => {
                            new_keys.len() == 1
                                && rest.starts_with(&format!("/{{{}}}", new_keys[0]))
                        }
                        _ => new_keys.is_empty() && (rest.is_empty() || rest.starts_with('/')),
                    };
                    if !reachable
                        || target.operation_id == own_id
                        || (target.takes_if_match && !has_etag)
                    {
                        continue;
                    }
                    let mut link = LinkBuilder::new().operation_id(&target.operation_id);
                    for key in path_parameters(path) {
                        link =
                            link.parameter(format!("path.{key}"), format!("$request.path.{key}"));
                    }
                    for key in new_keys {
                        link =
                            link.parameter(format!("path.{key}"), format!("$response.body#/{key}"));
                    }
                    if target.takes_if_match {
                        link = link.parameter("header.If-Match", "$response.header.ETag");
                    }
                    response
                        .links
                        .insert(target.operation_id.clone(), link.build().into());
                }
            }
        }
    }
}

/// The document as committed in `openapi/openapi.json`.
pub fn to_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

/// The operations under `/api/v1` that anyone may call: a subscription is
/// asked for by an address, and confirmed by the token its mail carries.
const PUBLIC_API: [&str; 2] = ["/api/v1/subscriptions", "/api/v1/subscriptions/confirm"];

/// Whether an operation at `path` takes a bearer token when its annotation
/// says nothing of security: every API operation but the public ones does,
/// so their annotations need not repeat it (one that takes a token only
/// sometimes, the lookup, says so itself). Pages, feeds and the CSAF
/// directory outside `/api/v1` are public.
fn takes_bearer_by_default(path: &str) -> bool {
    path.starts_with("/api/v1/") && !PUBLIC_API.contains(&path)
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

/// Gives the query parameters the ranges and patterns the service holds
/// them to, declared once here rather than on each list's parameters: a
/// page size from 1 to [`PageRequest::MAX_LIMIT`] unless the operation
/// says otherwise, the cursor's shape, and no control characters in text
/// (the service answers 422 to them).
fn describe_query(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        if parameter.parameter_in != ParameterIn::Query {
            continue;
        }
        let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() else {
            continue;
        };
        match parameter.name.as_str() {
            "limit" if schema.maximum.is_none() => {
                schema.minimum = Some(Number::UInt(1));
                schema.maximum = Some(Number::UInt(PageRequest::<Uuid>::MAX_LIMIT));
            }
            "cursor" => schema.pattern = Some(format!("^({CURSOR_PATTERN})?$")),
            _ if is_free_text(schema) => schema.pattern = Some(NO_CONTROL_CHARACTERS.to_owned()),
            _ => {}
        }
    }
}

fn html_page() -> RefOr<Schema> {
    RefOr::T(Schema::Object(Object::with_type(Type::String)))
}

/// Text with no control characters (C0, DEL and C1: what
/// `char::is_control` calls one).
const NO_CONTROL_CHARACTERS: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*$";

fn is_free_text(schema: &Object) -> bool {
    let string = match &schema.schema_type {
        SchemaType::Type(kind) => *kind == Type::String,
        SchemaType::Array(kinds) => kinds.contains(&Type::String),
        SchemaType::AnyValue => false,
    };
    string && schema.pattern.is_none() && schema.format.is_none() && schema.enum_values.is_none()
}

/// Adds the errors an operation can answer because of what it takes — a
/// token, a path id, query parameters, `If-Match`, a body — where its own annotation
/// does not name them already, and gives every error its problem document.
fn declare_problems(operation: &mut Operation) {
    let takes_token = operation.security.iter().flatten().any(|requirement| {
        serde_json::to_value(requirement)
            .is_ok_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    });
    let parameters = operation.parameters.iter().flatten();
    let (mut in_path, mut in_query) = (false, false);
    for parameter in parameters {
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        in_path |= parameter.parameter_in == ParameterIn::Path;
        in_query |= parameter.parameter_in == ParameterIn::Query;
    }
    let if_match = header_parameter(operation, "If-Match").map(|p| p.required == Required::True);
    let has_body = operation.request_body.is_some();
    // Any request: refused before routing when its headers are too large.
    let mut standard: Vec<(u16, &str)> = vec![(431, "A request header is too large")];
    if takes_token {
        standard.push((401, "No valid bearer token"));
        standard.push((403, "The token's roles do not allow this"));
    }
    if in_path {
        standard.push((404, "Nothing has this id"));
    }
    if in_query || has_body {
        standard.push((400, "A malformed query string or body"));
        standard.push((422, "An invalid field, named in `errors`"));
    }
    if let Some(required) = if_match {
        standard.push((412, "Changed since the ETag was read"));
        if required {
            standard.push((428, "No If-Match header"));
        }
    }
    if has_body {
        standard.push((408, "The body did not arrive in time"));
        standard.push((413, "The body is larger than allowed"));
        standard.push((
            415,
            "The body is not of a content type this operation takes",
        ));
    }
    let responses = &mut operation.responses.responses;
    // A page answers its errors as pages too (see `pages::error_page`).
    let is_page = responses.values().any(|response| {
        matches!(response, RefOr::T(response) if response.content.contains_key("text/html"))
    });
    for (status, description) in standard {
        responses
            .entry(status.to_string())
            .or_insert_with(|| ResponseBuilder::new().description(description).into());
    }
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        let RefOr::T(response) = response else {
            continue;
        };
        if !is_error {
            continue;
        }
        if is_page {
            // A browser gets the page; a program asking for JSON the problem.
            response
                .content
                .entry("text/html".to_owned())
                .or_insert_with(|| RefOr::T(Content::new(Some(html_page()))));
        }
        // Errors are problem documents, whatever the annotation spelled.
        if let Some(json) = response.content.shift_remove("application/json") {
            response.content.insert(PROBLEM_JSON.to_owned(), json);
        } else if !response.content.contains_key(PROBLEM_JSON) {
            let problem = RefOr::Ref(Ref::from_schema_name("Problem"));
            response.content.insert(
                PROBLEM_JSON.to_owned(),
                RefOr::T(Content::new(Some(problem))),
            );
        }
    }
}
