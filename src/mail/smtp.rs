//! SMTP delivery over one long-lived connection per sender task.
//!
//! Why not lettre's pooled `AsyncSmtpTransport`: it never sets TCP_NODELAY,
//! and lettre writes the message and its final `.` separately, so every
//! message waits for a delayed ACK (~23 messages a second per connection,
//! STACK.md). Here the socket is opened by us with TCP_NODELAY and handed to
//! lettre's `AsyncSmtpConnection`, which speaks the protocol. A worker runs
//! N sender tasks, each with its own `SmtpSender`: that is all the pooling
//! it needs.
//!
//! Where the relay offers PIPELINING (RFC 2920), a message's MAIL FROM, RCPT
//! TO and DATA go out in one write and its data with the final dot in
//! another: two round trips a message instead of four, and half the
//! system calls on both ends.
//!
//! The connection is opened on the first send, kept across messages, reset
//! (RSET) after a refused transaction, and dropped after anything that
//! leaves its state unknown (a broken socket, a timeout, a 421, or a send
//! cancelled halfway); the next send opens a new one.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;

use crate::mail::smtp_url::{Security, SmtpUrl};
use crate::mail::tls;
use crate::mail::transport::{Outcome, is_throttling};

/// One SMTP connection to the relay, and what it takes to reopen it.
pub struct SmtpSender {
    url: SmtpUrl,
    hello: ClientId,
    /// Boxed: lettre's connection is over a kilobyte, moved on every send.
    connection: Option<Box<Connection>>,
}

/// An open connection and what its server offers beyond what lettre
/// records.
struct Connection {
    smtp: AsyncSmtpConnection,
    /// The server announced PIPELINING in its last EHLO reply.
    pipelining: bool,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("url", &self.url)
            .field("hello", &self.hello)
            .field("connected", &self.connection.is_some())
            .finish()
    }
}

/// Why a step did not succeed.
enum Failure {
    /// The server answered with a negative reply.
    Reply {
        stage: String,
        code: u16,
        reply: String,
    },
    /// No usable answer: refused, reset, timed out, garbled, TLS failed.
    Broken(String),
}

impl Failure {
    fn from_smtp(stage: &str, error: SmtpError) -> Self {
        match error.status() {
            Some(code) => {
                let text = std::error::Error::source(&error)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                Self::Reply {
                    stage: stage.to_owned(),
                    code: code.into(),
                    reply: format!("{code} {text}").trim_end().to_owned(),
                }
            }
            None => Self::Broken(format!("{stage}: {error}")),
        }
    }

    /// Whether the connection is still in a known state after this failure:
    /// a negative reply leaves it so, except 421, with which the server
    /// closes it.
    fn connection_survives(&self) -> bool {
        matches!(self, Self::Reply { code, .. } if *code != 421)
    }

    /// The outcome for a failure about this message (its envelope or data).
    fn about_message(self) -> Outcome {
        match self {
            Self::Reply { stage, code, reply } if code >= 500 => Outcome::Permanent {
                error: format!("{stage}: {reply}"),
                reply: Some(reply),
            },
            other => other.transient(),
        }
    }

    /// The outcome for a failure to open the connection: whatever the server
    /// said, it was not about this message, so it is worth another try (a
    /// bad login or a relay that refuses us is fixed by the operator, and the
    /// rows then go out).
    fn transient(self) -> Outcome {
        match self {
            Self::Reply { stage, code, reply } => Outcome::Transient {
                error: format!("{stage}: {reply}"),
                reply: Some(reply),
                throttled: is_throttling(code),
            },
            Self::Broken(error) => Outcome::Transient {
                error,
                reply: None,
                throttled: false,
            },
        }
    }
}

/// Where a transaction stands once its envelope has been answered.
enum EnvelopeState {
    /// Every command accepted: the relay waits for the data.
    Ready,
    /// A command refused; the connection is in step and can be reset.
    Refused(Failure),
    /// The connection broke, or is out of step, after part of the
    /// envelope: it is dropped.
    Lost(Failure),
    /// MAIL FROM found the connection dead.
    Stale(Failure),
}

impl EnvelopeState {
    /// After a failure that leaves the connection unusable, at the command
    /// numbered `index` (0 is MAIL FROM).
    fn broken(index: usize, failure: Failure) -> Self {
        if index == 0 {
            Self::Stale(failure)
        } else {
            Self::Lost(failure)
        }
    }
}

/// One envelope command: its text on the wire (CRLF included) and how
/// errors name it.
struct Command {
    stage: String,
    text: String,
}

/// How a transaction on one connection ended.
enum Attempt {
    Done(Outcome),
    /// MAIL FROM found the connection dead (closed while idle, 421, no
    /// answer): nothing of the message was accepted, so it can be tried
    /// again on a fresh connection.
    Stale(Outcome),
}

impl SmtpSender {
    /// A sender for the relay at `url`, greeting it with `hello`. Nothing
    /// is opened until the first send.
    pub fn new(url: SmtpUrl, hello: ClientId) -> Self {
        Self {
            url,
            hello,
            connection: None,
        }
    }

    /// Sends `message` to the envelope's recipients. A recipient refused
    /// refuses the whole message: the outbox sends one message per
    /// recipient. `commit` is awaited once the relay is ready for the data
    /// (after its 354), just before the message and its final dot.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        commit: impl Future<Output = ()>,
    ) -> Outcome {
        let mut commit = std::pin::pin!(Some(commit));
        if let Some(connection) = self.connection.take() {
            match self
                .transaction(connection, envelope, message, commit.as_mut())
                .await
            {
                Attempt::Done(outcome) => return outcome,
                // Kept connections die while idle; that says nothing about
                // the relay until a fresh one fails too.
                Attempt::Stale(_) => {}
            }
        }
        let connection = match self.open().await {
            Ok(connection) => connection,
            Err(failure) => return failure.transient(),
        };
        match self
            .transaction(connection, envelope, message, commit.as_mut())
            .await
        {
            Attempt::Done(outcome) | Attempt::Stale(outcome) => outcome,
        }
    }

    /// One mail transaction. The connection is moved in and put back only
    /// when its state is known, so a send cancelled halfway drops it.
    async fn transaction<C: Future<Output = ()>>(
        &mut self,
        mut connection: Box<Connection>,
        envelope: &Envelope,
        message: &[u8],
        mut commit: std::pin::Pin<&mut Option<C>>,
    ) -> Attempt {
        let commands = match envelope_commands(&connection.smtp, envelope, message) {
            Ok(commands) => commands,
            Err(error) => {
                self.connection = Some(connection);
                return Attempt::Done(Outcome::Permanent { error, reply: None });
            }
        };
        let sent = if connection.pipelining {
            self.pipelined(&mut connection, &commands).await
        } else {
            self.one_by_one(&mut connection, &commands).await
        };
        match sent {
            EnvelopeState::Ready => {}
            EnvelopeState::Refused(failure) => {
                return Attempt::Done(self.reset(connection, failure).await);
            }
            EnvelopeState::Lost(failure) => return Attempt::Done(failure.about_message()),
            EnvelopeState::Stale(failure) => return Attempt::Stale(failure.transient()),
        }
        // Awaited at most once per send, by construction rather than by
        // which paths retry: a finished future must not be polled again.
        if let Some(pending) = commit.as_mut().as_pin_mut() {
            pending.await;
            commit.set(None);
        }
        // After the data the transaction is over whatever the reply, so
        // there is nothing to reset.
        let timeout = self.url.command_timeout;
        match within(
            timeout,
            "end of data",
            send_data(&mut connection.smtp, message),
        )
        .await
        {
            Ok(response) => {
                self.connection = Some(connection);
                Attempt::Done(Outcome::Sent {
                    reply: reply_text(&response),
                })
            }
            Err(failure) => {
                if failure.connection_survives() {
                    self.connection = Some(connection);
                }
                Attempt::Done(failure.about_message())
            }
        }
    }

    /// The envelope command by command, each waiting for its reply.
    async fn one_by_one(&self, connection: &mut Connection, commands: &[Command]) -> EnvelopeState {
        let timeout = self.url.command_timeout;
        for (index, command) in commands.iter().enumerate() {
            let exchange = connection.smtp.command(&command.text);
            match within(timeout, &command.stage, exchange).await {
                Ok(_) => {}
                Err(failure) if failure.connection_survives() => {
                    return EnvelopeState::Refused(failure);
                }
                Err(failure) => return EnvelopeState::broken(index, failure),
            }
        }
        EnvelopeState::Ready
    }

    /// The envelope in one write, then each command's reply in turn. Every
    /// reply is read even after a refusal, so the connection stays in step;
    /// the first refusal is the one that counts.
    async fn pipelined(&self, connection: &mut Connection, commands: &[Command]) -> EnvelopeState {
        let timeout = self.url.command_timeout;
        let all: String = commands.iter().map(|c| c.text.as_str()).collect();
        let mut refused = None;
        for (index, command) in commands.iter().enumerate() {
            let exchange = async {
                if index == 0 {
                    connection.smtp.command(&all).await
                } else {
                    connection.smtp.read_response().await
                }
            };
            match within(timeout, &command.stage, exchange).await {
                Ok(_) if index + 1 == commands.len() => {
                    // DATA accepted although the envelope was refused (RFC
                    // 2920 says it must not be): the server now waits for
                    // data we will not send, so the connection is dropped.
                    if let Some(failure) = refused.take() {
                        return EnvelopeState::Lost(failure);
                    }
                }
                Ok(_) => {}
                Err(failure) if failure.connection_survives() => {
                    refused.get_or_insert(failure);
                }
                Err(failure) => return EnvelopeState::broken(index, refused.unwrap_or(failure)),
            }
        }
        refused.map_or(EnvelopeState::Ready, EnvelopeState::Refused)
    }

    /// After a refused command: RSET, and keep the connection if that
    /// worked.
    async fn reset(&mut self, mut connection: Box<Connection>, failure: Failure) -> Outcome {
        if failure.connection_survives()
            && within(
                self.url.command_timeout,
                "RSET",
                connection.smtp.command(Rset),
            )
            .await
            .is_ok()
        {
            self.connection = Some(connection);
        }
        failure.about_message()
    }

    /// Opens, secures and logs in a new connection, within the connect
    /// timeout.
    async fn open(&self) -> Result<Box<Connection>, Failure> {
        let limit = self.url.connect_timeout;
        match tokio::time::timeout(limit, self.handshake()).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Broken(format!(
                "connecting to {}: no answer within {} s",
                self.address(),
                limit.as_secs()
            ))),
        }
    }

    async fn handshake(&self) -> Result<Box<Connection>, Failure> {
        let url = &self.url;
        let broken = |what: &str, e: &dyn Display| {
            Failure::Broken(format!("{what} {}: {e}", self.address()))
        };
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| broken("connecting to", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| broken("setting TCP_NODELAY on", &e))?;
        let stream: Box<dyn AsyncTokioStream> = match url.security {
            Security::Implicit => Box::new(
                tls::handshake(tcp, &url.host, &url.extra_roots)
                    .await
                    .map_err(|e| broken("TLS with", &e))?,
            ),
            _ => Box::new(tcp),
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| Failure::from_smtp("greeting and EHLO", e))?;

        let starttls = match url.security {
            Security::Required => true,
            Security::Opportunistic => connection.can_starttls(),
            Security::Plain | Security::Implicit => false,
        };
        if starttls {
            if !connection.can_starttls() {
                return Err(Failure::Broken(format!(
                    "{} does not offer STARTTLS, and the SMTP URL has tls=required",
                    self.address()
                )));
            }
            let parameters =
                starttls_parameters(url).map_err(|e| Failure::from_smtp("TLS parameters", e))?;
            connection
                .starttls(parameters, &self.hello)
                .await
                .map_err(|e| Failure::from_smtp("STARTTLS", e))?;
        }
        // lettre keeps only the extensions it uses itself, so EHLO is asked
        // once more to see whether PIPELINING is among them.
        let extensions = connection
            .command(Ehlo::new(self.hello.clone()))
            .await
            .map_err(|e| Failure::from_smtp("EHLO", e))?;
        let pipelining = extensions.message().skip(1).any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
        });
        if let Some(login) = &url.login {
            let credentials = Credentials::new(
                login.user.clone(),
                login.password.expose_secret().to_owned(),
            );
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
                .map_err(|e| Failure::from_smtp("AUTH", e))?;
        }
        Ok(Box::new(Connection {
            smtp: connection,
            pipelining,
        }))
    }

    fn address(&self) -> String {
        if self.url.host.contains(':') {
            format!("[{}]:{}", self.url.host, self.url.port)
        } else {
            format!("{}:{}", self.url.host, self.url.port)
        }
    }
}

/// STARTTLS settings: the host's certificate checked against the public
/// roots, as for implicit TLS, plus the URL's `ca=` certificates.
fn starttls_parameters(url: &SmtpUrl) -> Result<TlsParameters, SmtpError> {
    let mut builder = TlsParameters::builder(url.host.clone());
    for root in &url.extra_roots {
        builder = builder.add_root_certificate(Certificate::from_der(root.to_vec())?);
    }
    builder.build_rustls()
}

/// The envelope's commands: MAIL FROM, one RCPT TO a recipient, DATA; or
/// why this server cannot take the message.
fn envelope_commands(
    connection: &AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<Vec<Command>, String> {
    let options = mail_parameters(connection, envelope, message)?;
    let mail = Command {
        stage: "MAIL FROM".to_owned(),
        text: Mail::new(envelope.from().cloned(), options).to_string(),
    };
    let recipients = envelope.to().iter().map(|recipient| Command {
        stage: format!("RCPT TO <{recipient}>"),
        text: Rcpt::new(recipient.clone(), vec![]).to_string(),
    });
    let data = Command {
        stage: "DATA".to_owned(),
        text: Data.to_string(),
    };
    Ok(std::iter::once(mail)
        .chain(recipients)
        .chain(std::iter::once(data))
        .collect())
}

/// Sends the message and its final dot in one write (lettre's `message`
/// writes them apart: two packets and two reads at the relay). A message
/// that is not UTF-8, which ours never are, goes lettre's way.
async fn send_data(
    connection: &mut AsyncSmtpConnection,
    message: &[u8],
) -> Result<Response, SmtpError> {
    match String::from_utf8(data_section(message)) {
        Ok(data) => connection.command(data).await,
        Err(_) => connection.message(message).await,
    }
}

/// The message as DATA carries it (RFC 5321, 4.5.2): a dot that starts a
/// line doubled, then CRLF, a dot and CRLF. Lines start where lettre's
/// encoder says they do, after CRLF, so both ways send the same bytes.
fn data_section(message: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(message.len() + 64);
    let mut line_start = true;
    for line in message.split_inclusive(|&byte| byte == b'\n') {
        if line_start && line.first() == Some(&b'.') {
            data.push(b'.');
        }
        data.extend_from_slice(line);
        line_start = line.ends_with(b"\r\n");
    }
    data.extend_from_slice(b"\r\n.\r\n");
    data
}

/// The MAIL FROM parameters the message needs, or why this server cannot
/// take it (RFC 6531 and RFC 6152: never send what was not announced).
fn mail_parameters(
    connection: &AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<Vec<MailParameter>, String> {
    let server = connection.server_info();
    let mut options = vec![];
    let non_ascii_address = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|address| !AsRef::<str>::as_ref(address).is_ascii());
    if non_ascii_address {
        if !server.supports_feature(Extension::SmtpUtfEight) {
            return Err(
                "the envelope has a non-ASCII address and the server does not support SMTPUTF8"
                    .into(),
            );
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !server.supports_feature(Extension::EightBitMime) {
            return Err("the message is not ASCII and the server does not support 8BITMIME".into());
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(options)
}

/// Runs one SMTP exchange within `limit`.
async fn within<T>(
    limit: Duration,
    stage: &str,
    exchange: impl Future<Output = Result<T, SmtpError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, exchange).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Failure::from_smtp(stage, error)),
        Err(_) => Err(Failure::Broken(format!(
            "{stage}: no reply within {} s",
            limit.as_secs()
        ))),
    }
}

/// A reply as the server wrote it, one line: `250 2.0.0 Ok: queued as X`.
fn reply_text(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), lines.join(" "))
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::data_section;

    #[test]
    fn a_dot_that_starts_a_line_is_doubled_and_the_data_ends_with_a_lone_dot() {
        let data = |message: &str| String::from_utf8(data_section(message.as_bytes())).unwrap();
        assert_eq!(data("Hi\r\n"), "Hi\r\n\r\n.\r\n");
        assert_eq!(
            data(".hidden\r\n.\r\n..x"),
            "..hidden\r\n..\r\n...x\r\n.\r\n"
        );
        // Only CRLF starts a line, as for lettre's own encoder.
        assert_eq!(data("a\n.b\r.c"), "a\n.b\r.c\r\n.\r\n");
        assert_eq!(data("a\r\r\n.b"), "a\r\r\n..b\r\n.\r\n");
        assert_eq!(data(""), "\r\n.\r\n");
    }
}
