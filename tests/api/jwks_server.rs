//! An identity provider's JWK Set URL for a test: a small HTTP server in the
//! test process on a free loopback port, serving whatever set the test
//! gives it (and rotating to another on request), counting the fetches, and
//! going away and coming back on the same port when told.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::helpers::fixture;

/// The set the service is configured with in every other test: `test-rsa`
/// and `test-ec`.
pub fn initial_set() -> String {
    std::fs::read_to_string(fixture("jwks.json")).expect("the JWK Set fixture")
}

/// The set after a rotation: only `other-rsa`.
pub fn rotated_set() -> String {
    std::fs::read_to_string(fixture("jwks-rotated.json")).expect("the rotated JWK Set fixture")
}

struct Served {
    set: Mutex<String>,
    cache_control: String,
    fetches: AtomicUsize,
}

pub struct JwksServer {
    served: Arc<Served>,
    port: u16,
    handle: Option<ServerHandle>,
}

impl JwksServer {
    /// Serves `set` at `/jwks.json` with this `Cache-Control`.
    pub async fn start(set: &str, cache_control: &str) -> Self {
        let served = Arc::new(Served {
            set: Mutex::new(set.to_owned()),
            cache_control: cache_control.to_owned(),
            fetches: AtomicUsize::new(0),
        });
        let (handle, port) = serve(served.clone(), 0);
        Self {
            served,
            port,
            handle: Some(handle),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/jwks.json", self.port)
    }

    /// How many times the set was fetched.
    pub fn fetches(&self) -> usize {
        self.served.fetches.load(Ordering::SeqCst)
    }

    /// Serves another set from now on, as a provider rotating its keys does.
    pub fn rotate(&self, set: &str) {
        *self.served.set.lock().unwrap() = set.to_owned();
    }

    /// Goes away: connections are refused until [`Self::restart`].
    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop(false).await;
        }
    }

    /// Comes back on the same port.
    pub fn restart(&mut self) {
        let (handle, port) = serve(self.served.clone(), self.port);
        assert_eq!(port, self.port);
        self.handle = Some(handle);
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // Stopping needs the runtime the test is about to leave.
            drop(handle.stop(false));
        }
    }
}

fn serve(served: Arc<Served>, port: u16) -> (ServerHandle, u16) {
    let data = web::Data::from(served);
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route(
            "/jwks.json",
            web::get().to(|served: web::Data<Served>| async move {
                served.fetches.fetch_add(1, Ordering::SeqCst);
                let set = served.set.lock().unwrap().clone();
                HttpResponse::Ok()
                    .content_type("application/json")
                    .insert_header(("Cache-Control", served.cache_control.clone()))
                    .body(set)
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", port))
    .expect("a loopback port for the JWK Set server");
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (handle, port)
}
