//! Builds the running service: database, migrations, keys, lookup index,
//! routes and middleware. `main` and every integration test start the
//! service through [`Application::build`], so tests exercise what ships.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, ResponseError, web};
use anyhow::Context;
use tracing::Instrument;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::api::extract::{JsonLimit, control_character_in_query, oversized_header};
use crate::artifacts::{ArtifactStore, DiskStore};
use crate::auth::AuthKeys;
use crate::auth::jwks_url::{RefreshPolicy, RemoteJwks};
use crate::clock::Clock;
use crate::config::{JwksSource, Settings};
use crate::db::Db;
use crate::domain::audit::AuditKey;
use crate::error::{ApiError, PROBLEM_JSON};
use crate::limits::body::BodyTimeout;
use crate::limits::rate::RateLimiter;
use crate::links::LinkTokens;
use crate::lookup::Lookup;
use crate::metrics::RequestMetrics;
use crate::workflow::Workflow;

/// What every handler shares.
pub struct AppState {
    pub db: Db,
    /// Runs the use cases that change something.
    pub workflow: Workflow,
    pub lookup: Arc<Lookup>,
    pub settings: Arc<Settings>,
    /// Where evidence artifacts' bytes are kept.
    pub artifacts: Arc<dyn ArtifactStore>,
    /// Signs and checks the tokens of links in mail.
    pub links: LinkTokens,
}

pub struct Application {
    port: u16,
    workflow: Workflow,
    server: Server,
    /// Tasks that live as long as the server.
    background: Vec<tokio::task::JoinHandle<()>>,
    /// The delivery worker, when it runs inside the server.
    worker: Option<crate::mail::RunningWorker>,
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A mistake in the setup that the service cannot start with: one line on
/// stderr saying what is wrong and what to do, and exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

/// The key `clearance token` signs with: the server's, never a new one.
pub fn minting_keys(settings: &Settings) -> Result<AuthKeys, StartupError> {
    let secret = crate::secrets::kept_jwt_secret(settings).map_err(StartupError)?;
    Ok(AuthKeys::new(
        crate::secrets::bytes(&secret),
        &settings.jwt_issuer,
        &settings.jwt_audience,
    ))
}

/// The verification keys the settings describe: the HS256 secret (generated
/// when unset) and, when configured, the JWKS.
pub fn auth_keys(settings: &Settings) -> anyhow::Result<AuthKeys> {
    let secret = crate::secrets::jwt_secret(settings)?;
    let keys = AuthKeys::new(
        crate::secrets::bytes(&secret),
        &settings.jwt_issuer,
        &settings.jwt_audience,
    )
    .with_roles_claim(settings.jwt_roles_claim.clone());
    match &settings.jwt_jwks {
        Some(JwksSource::File(path)) => keys.with_jwks_file(path),
        Some(JwksSource::Url(url)) => {
            let remote = RemoteJwks::new(url.clone(), RefreshPolicy::default())?;
            Ok(keys.with_remote_jwks(Arc::new(remote)))
        }
        None => Ok(keys),
    }
}

/// A socket listening on `address` as actix opens one: the address reusable
/// at once after a restart, and a backlog of 1,024 connections.
fn listen(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// The key of the audit chain (generated into the data directory when the
/// settings name none).
fn audit_key(settings: &Settings) -> anyhow::Result<AuditKey> {
    let secret = crate::secrets::audit_key(settings)?;
    Ok(AuditKey::new(crate::secrets::bytes(&secret)))
}

/// Connects to the database and brings its schema up to date.
pub fn open_database(settings: &Settings) -> anyhow::Result<Db> {
    crate::db::probe(&settings.database).map_err(StartupError)?;
    let db = Db::connect(
        &settings.database,
        settings.db_pool_size,
        settings.db_timeout,
    )?;
    db.migrate()
        .context("cannot apply the database migrations")?;
    match &settings.database_read {
        Some(replica) => Ok(db.with_read_replica(replica, settings.db_pool_size)?),
        None => Ok(db),
    }
}

impl Application {
    /// Opens the database (running migrations), loads the lookup index and
    /// binds the listener; call [`Application::run_until_stopped`] to serve.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Clock::system()).await
    }

    /// [`Application::build`] with the clock the service runs by (tests
    /// hold one they can move).
    pub async fn build_with(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        if settings.worker {
            crate::mail::check_destination(&settings)?;
        }
        // Listen first: a port in use ends the start before anything runs
        // (a worker that claims mail and is stopped holding it, say).
        let listener = listen(settings.bind).map_err(|e| {
            StartupError(format!(
                "cannot listen on {} ({e}): stop what holds it, or set CLEARANCE_BIND",
                settings.bind
            ))
        })?;
        let settings = Arc::new(settings);
        let db = {
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || open_database(&settings)).await??
        };
        let keys = web::Data::new(auth_keys(&settings)?);
        let links = LinkTokens::from_settings(&settings)?;
        let lookup = Lookup::load(db.clone())
            .await
            .context("cannot load the lookup index")?;
        let follower = tokio::spawn(lookup.clone().follow(settings.lookup_refresh));
        let audit_key = audit_key(&settings)?;
        {
            let key = audit_key.clone();
            db.write(move |conn| crate::db::audit::seal(conn, &key))
                .await
                .context("cannot sign the audit chain's head")?;
        }
        let workflow = Workflow::new(db.clone(), lookup.clone(), clock, audit_key);
        let scheduler = tokio::spawn(crate::schedule::run(
            workflow.clone(),
            settings.lookup_refresh,
        ));
        let registry = prometheus::Registry::new();
        db.register_metrics(&registry)?;
        let metrics = web::Data::new(RequestMetrics::new(&registry)?);
        let rate_limiter = web::Data::new(RateLimiter::new(&settings, &registry)?);
        let forgetter = tokio::spawn(rate_limiter.clone().into_inner().forget_idle_clients());
        let checkpoints = crate::audit_checkpoint::Checkpoints::new(
            db.clone(),
            settings.audit_checkpoint,
            settings.audit_checkpoint_file.clone(),
            &registry,
        )?;
        let mut background = vec![
            follower,
            scheduler,
            forgetter,
            tokio::spawn(checkpoints.run()),
        ];
        if let Some(remote) = keys.remote_jwks() {
            background.push(remote.start(&registry).await?);
        }
        let worker = settings
            .worker
            .then(|| crate::mail::spawn_worker(db.primary_only(), settings.clone(), &registry));
        let worker = worker.transpose()?;
        let artifacts: Arc<dyn ArtifactStore> =
            Arc::new(DiskStore::new(settings.data_dir.join("artifacts")));
        let state = web::Data::new(AppState {
            db,
            workflow: workflow.clone(),
            lookup,
            settings: settings.clone(),
            artifacts,
            links,
        });
        let json_limit = JsonLimit(settings.max_json_bytes);
        let limits = settings.http_limits.clone();
        let body_timeout = BodyTimeout(limits.body_timeout);
        let registry = web::Data::new(registry);
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(keys.clone())
                .app_data(json_limit)
                .app_data(body_timeout)
                .app_data(rate_limiter.clone())
                .app_data(metrics.clone())
                .app_data(registry.clone())
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|_, _| ApiError::NotFound("no such resource".into()).into()),
                )
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    ApiError::BadRequest(format!("bad query string: {e}")).into()
                }))
                .wrap(from_fn(refuse_unusable_requests))
                .wrap(from_fn(crate::limits::body::deadline))
                .wrap(ErrorHandlers::new().default_handler(problem_for_bare_errors))
                .wrap(from_fn(crate::metrics::record))
                .wrap(from_fn(request_context))
                .wrap(from_fn(head_as_get))
                .configure(crate::api::routes)
                .route("/metrics", web::get().to(crate::metrics::scrape))
                .configure(crate::pages::assets)
                .service(web::resource("/docs").route(web::get().to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header((header::LOCATION, "/docs/"))
                        .finish()
                })))
                .service(SwaggerUi::new("/docs/{_:.*}").config(Config::from("/openapi.json")))
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(ApiError::NotFound("no such resource".into()))
                }))
        })
        .shutdown_timeout(10)
        .client_request_timeout(limits.header_timeout)
        .keep_alive(limits.keep_alive);
        let workers = settings.http_workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        server = server
            .workers(workers)
            .max_connections(crate::limits::connections::per_worker(
                &settings.http_limits,
                workers,
            ));
        let server = server.listen(listener)?;
        let port = server
            .addrs()
            .first()
            .map(|a| a.port())
            .context("no listening address")?;
        Ok(Self {
            port,
            workflow,
            server: server.run(),
            background,
            worker,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The use cases, as the running service runs them.
    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in self.background {
            task.abort();
        }
        if let Some(worker) = self.worker {
            worker.stop().await;
        }
        result
    }
}

/// One request id per request — the caller's `X-Request-Id` when it sends a
/// sane one — on the span every log line of the request carries, and echoed
/// in the response.
async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| {
            v.len() <= 64
                && v.to_str()
                    .is_ok_and(|s| s.chars().all(|c| c.is_ascii_graphic()))
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .expect("a UUID is a valid header")
        });
    let span = tracing::info_span!(
        "request",
        request_id = request_id.to_str().unwrap_or_default(),
        method = %req.method(),
        path = req.path(),
    );
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "handled"
        );
    });
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id);
    Ok(response)
}

/// Answers a header too long (431, see [`oversized_header`]) or a query
/// string holding a control character (422, see
/// [`control_character_in_query`]) before any handler sees the request: a
/// page for a browser, a problem document for a program.
async fn refuse_unusable_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let refusal =
        oversized_header(req.headers()).or_else(|| control_character_in_query(req.query_string()));
    let Some(error) = refusal else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let response = if crate::pages::wants_html(req.request()) {
        crate::pages::error_page(req.request(), &error)
    } else {
        error.error_response()
    };
    Ok(req.into_response(response).map_into_right_body())
}

/// Answers every `HEAD` as the `GET` of the same URL, whoever serves it
/// (our routes, Swagger UI, the metrics endpoint): the connection read the
/// method before this runs, so the answer goes out without its body.
async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// Gives the framework's own error responses (no route, wrong method, an
/// extractor's plain-text error) the same problem+json shape as ours; pages
/// that render their own HTML errors are left alone. Outside the API, a
/// browser gets an error as a page, never as JSON: a bad query string or
/// token on the lookup page is refused before its handler runs.
fn problem_for_bare_errors<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let bare = content_type.is_none_or(|t| t.starts_with("text/plain"));
    let problem = content_type == Some(PROBLEM_JSON);
    let accept = res.request().headers().get(header::ACCEPT);
    let browser = !res.request().path().starts_with("/api/")
        && crate::pages::accept::prefers_html(accept.and_then(|v| v.to_str().ok()));
    let mut answer = match res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
    {
        Some(error) if problem && browser => crate::pages::error_page(res.request(), error),
        _ if !bare => return Ok(ErrorHandlerResponse::Response(res.map_into_left_body())),
        _ => {
            let error = ApiError::from_status(res.status());
            if browser {
                crate::pages::error_page(res.request(), &error)
            } else {
                error.error_response()
            }
        }
    };
    // Keep what was said besides the body, e.g. a 405's `Allow`, under the
    // headers of the answer's own kind (a page's policy).
    for (name, value) in res.headers() {
        if !answer.headers().contains_key(name) && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let (req, _) = res.into_parts();
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, answer).map_into_right_body(),
    ))
}
