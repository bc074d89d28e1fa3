//! A real SMTP server for a test: `tests/smtp/server.py` (Python aiosmtpd,
//! Debian's `python3-aiosmtpd`, installed by `scripts/test.sh`) on a free
//! port, storing each message it accepts in a folder of its own, and told
//! through that folder which recipients to refuse. Killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mail_parser::{Message, MessageParser, MimeHeaders};
use serde::Deserialize;
use serde_json::{Map, Value};

/// aiosmtpd is installed for Debian's python, which another `python3`
/// earlier on the PATH may not see.
const PYTHON: &str = "/usr/bin/python3";

pub struct MailServer {
    dir: tempfile::TempDir,
    port: u16,
    /// The server's options (`--tls starttls`, `--login u:p`), kept for a
    /// restart.
    options: Vec<String>,
    process: Option<Child>,
}

/// One message as the server received it.
#[derive(Debug, Deserialize)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    #[serde(rename = "data")]
    pub raw: String,
    /// The client's port: messages with the same one came over one
    /// connection.
    pub peer_port: u16,
    /// Whether the message came over TLS.
    pub tls: bool,
    /// The user that logged in, if any.
    pub user: Option<String>,
    /// Whether the client wrote its envelope in one go (PIPELINING).
    pub pipelined: bool,
}

impl MailServer {
    /// Starts a plain server on a free port and waits until it listens.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one with options of `tests/smtp/server.py`: `--tls starttls`
    /// or `--tls implicit` (with the certificate in tests/fixtures/smtp,
    /// signed by its `ca.pem`), `--login USER:PASSWORD`, `--no-pipelining`.
    pub fn start_with(options: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        let (process, port) = spawn(0, dir.path(), &options);
        Self {
            dir,
            port,
            options,
            process: Some(process),
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message accepted so far, in the order received.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("the server's folder")
            .map(|entry| entry.expect("a folder entry").path())
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("msg-") && n.ends_with(".json"))
            })
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).expect("a stored message");
                serde_json::from_str(&text).expect("a stored message is JSON")
            })
            .collect()
    }

    /// From now on, answer `code` to RCPT TO `rcpt` (250 accepts it again);
    /// `"*"` answers `code` to every MAIL FROM instead, and 421 then closes
    /// the connection.
    pub fn respond(&self, rcpt: &str, code: u16) {
        let path = self.dir.path().join("control.json");
        let mut control: Map<String, Value> = std::fs::read_to_string(&path)
            .map(|text| serde_json::from_str(&text).expect("control.json is JSON"))
            .unwrap_or_default();
        control.insert(rcpt.to_owned(), code.into());
        let temp = self.dir.path().join(".control.json.tmp");
        std::fs::write(&temp, Value::Object(control).to_string()).expect("control written");
        std::fs::rename(&temp, &path).expect("control renamed");
    }

    /// Stops the server: connections are refused until `restart`.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts it again on the same port, with what it had stored.
    pub fn restart(&mut self) {
        self.stop();
        let (process, port) = spawn(self.port, self.dir.path(), &self.options);
        assert_eq!(port, self.port, "the server restarts on its port");
        self.process = Some(process);
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the server and reads the port it prints once it listens.
fn spawn(port: u16, dir: &Path, options: &[String]) -> (Child, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py");
    let mut process = Command::new(PYTHON)
        .arg(&script)
        .arg(port.to_string())
        .arg(dir)
        .args(options)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{PYTHON} runs ({e}): scripts/test.sh installs it"));
    let stdout = process.stdout.take().expect("the server's stdout");
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    match line.trim().parse() {
        Ok(port) => (process, port),
        Err(_) => {
            let _ = process.kill();
            let status = process.wait();
            panic!(
                "tests/smtp/server.py did not start on port {port} ({status:?}): is python3-aiosmtpd installed? scripts/test.sh installs it"
            );
        }
    }
}

impl ReceivedMail {
    /// The message as a MIME parser reads it.
    pub fn parsed(&self) -> Message<'_> {
        MessageParser::default()
            .parse(self.raw.as_bytes())
            .expect("a MIME message")
    }

    /// Every header's name, in order, as the parser found them.
    pub fn header_names(&self) -> Vec<String> {
        self.parsed()
            .headers()
            .iter()
            .map(|header| header.name().to_owned())
            .collect()
    }

    pub fn subject(&self) -> Option<String> {
        self.parsed().subject().map(str::to_owned)
    }

    /// The first text/plain part, decoded.
    pub fn text(&self) -> Option<String> {
        self.part_of_type("plain")
    }

    /// The first text/html part, decoded.
    pub fn html(&self) -> Option<String> {
        self.part_of_type("html")
    }

    fn part_of_type(&self, subtype: &str) -> Option<String> {
        let message = self.parsed();
        message
            .parts
            .iter()
            .find(|part| {
                part.content_type().is_some_and(|ct| {
                    ct.ctype().eq_ignore_ascii_case("text")
                        && ct
                            .subtype()
                            .is_some_and(|s| s.eq_ignore_ascii_case(subtype))
                })
            })
            .and_then(|part| part.text_contents().map(str::to_owned))
    }
}
