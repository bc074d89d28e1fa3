//! Debian's Chromium, headless, on a 360 × 740 phone screen, driven through
//! chromedriver (`scripts/test.sh` installs both): the pages as a phone
//! shows them, without JavaScript of ours.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::{TestApp, wait_for};

/// The phone's screen width in CSS pixels.
pub const PHONE_WIDTH: u64 = 360;

/// A browser session and its chromedriver on a free port; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Browser {
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/test.sh installs it)");
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--hide-scrollbars"],
                "mobileEmulation": {"deviceMetrics": {"width": PHONE_WIDTH, "height": 740, "pixelRatio": 2.0}},
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let connect = async || {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
        };
        let client = wait_for(
            "chromedriver to start a session",
            Duration::from_secs(10),
            connect,
        )
        .await;
        Self { client, driver }
    }

    /// Opens `path` of the service.
    pub async fn open(&self, app: &TestApp, path: &str) {
        self.client
            .goto(&format!("{}{path}", app.address))
            .await
            .unwrap();
    }

    /// Opens the lookup page, types `q` into the box and submits the form.
    pub async fn ask(&self, app: &TestApp, q: &str) {
        self.open(app, "/lookup").await;
        self.type_into("#q", q).await;
        self.press("button[type=submit]").await;
        self.client
            .wait()
            .for_url(&url_with_query(app, q))
            .await
            .unwrap();
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self.client.find(Locator::Css(css)).await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Clicks the element `css` selects (a button, a box to tick).
    pub async fn press(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Waits until the page shows an element `css` selects (after a
    /// form's submission, the next page).
    pub async fn wait_for_element(&self, css: &str) {
        self.client
            .wait()
            .for_element(Locator::Css(css))
            .await
            .unwrap();
    }

    /// The visible text of the element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The lookup page's answer.
    pub async fn status_text(&self) -> String {
        self.text("[role=status]").await
    }

    pub async fn script(&self, code: &str) -> Value {
        self.client.execute(code, vec![]).await.unwrap()
    }

    /// The page fits the phone's width: nothing to scroll sideways.
    pub async fn fits_the_phone(&self) {
        let widths = self
            .script("return [window.innerWidth, document.scrollingElement.scrollWidth];")
            .await;
        assert_eq!(widths[0], PHONE_WIDTH, "{widths}");
        assert!(
            widths[1].as_u64().unwrap() <= PHONE_WIDTH,
            "horizontal scroll: {widths}"
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The URL the lookup form submits `q` (and an empty firmware) to.
fn url_with_query(app: &TestApp, q: &str) -> url::Url {
    let mut url = url::Url::parse(&format!("{}/lookup", app.address)).unwrap();
    url.query_pairs_mut()
        .append_pair("q", q)
        .append_pair("firmware", "");
    url
}
