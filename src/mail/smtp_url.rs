//! `CLEARANCE_SMTP_URL`, parsed once at start into what a sender needs, so
//! that a typo is one configuration error (exit 2) instead of every outbox
//! row failing later with a puzzling reason.
//!
//! Forms: `smtp://host:port` (plain, for a relay on this machine),
//! `smtp://host:587?tls=required` (STARTTLS or no mail),
//! `smtp://host:587?tls=opportunistic` (STARTTLS when offered),
//! `smtps://user:pass@host:465` (TLS from the first byte). Optional query
//! parameters: `connect_timeout` and `command_timeout` in seconds, and
//! `ca=/path/ca.pem`, certificates to trust besides the usual public roots
//! (a relay with a certificate from an internal CA).

use std::net::IpAddr;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use secrecy::SecretString;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use url::{Host, Url};

/// How long opening a connection (TCP, TLS, greeting, EHLO, AUTH) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one SMTP command may wait for its reply, the message data included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No TLS: for a relay on this machine or a trusted network.
    Plain,
    /// STARTTLS when the server offers it, plain otherwise.
    Opportunistic,
    /// STARTTLS, and no mail when the server does not offer it.
    Required,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// The login taken from the URL's userinfo, percent-decoded.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub password: SecretString,
}

/// A validated SMTP relay address. Its `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct SmtpUrl {
    /// A host name or an IP address (without brackets), to connect to and
    /// to check the server's certificate against.
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub login: Option<Login>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Certificates trusted besides the public roots, from `ca=`.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl SmtpUrl {
    /// Parses the URL. Errors never repeat the URL, which may hold a password.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|e| format!("is not a URL ({e})"))?;
        let implicit = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => {
                return Err(format!("has the scheme `{other}`: use smtp:// or smtps://"));
            }
        };
        let host = match url.host() {
            Some(Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err("has no host".into()),
        };
        if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
            return Err("must not have a path or fragment: smtp://host:port?tls=…".into());
        }

        let mut tls = None;
        let mut connect_timeout = CONNECT_TIMEOUT;
        let mut command_timeout = COMMAND_TIMEOUT;
        let mut extra_roots = Vec::new();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "tls" => tls = Some(value.into_owned()),
                "connect_timeout" => connect_timeout = seconds(&key, &value)?,
                "command_timeout" => command_timeout = seconds(&key, &value)?,
                "ca" => extra_roots = certificates(&value)?,
                other => {
                    return Err(format!(
                        "has an unknown parameter `{other}`: known are tls, connect_timeout, command_timeout, ca"
                    ));
                }
            }
        }
        let security = match (implicit, tls.as_deref()) {
            (true, None) => Security::Implicit,
            (true, Some(_)) => {
                return Err(
                    "has ?tls= with smtps://, which is TLS from the first byte: drop ?tls= or use smtp://".into(),
                );
            }
            (false, None | Some("none")) => Security::Plain,
            (false, Some("opportunistic")) => Security::Opportunistic,
            (false, Some("required")) => Security::Required,
            (false, Some(other)) => {
                return Err(format!(
                    "has tls=`{other}`: use tls=required, tls=opportunistic or tls=none"
                ));
            }
        };
        let port = url.port().unwrap_or(match security {
            Security::Plain => 25,
            Security::Opportunistic | Security::Required => 587,
            Security::Implicit => 465,
        });

        let login = if url.username().is_empty() {
            None
        } else {
            let user = decode(url.username(), "user name")?;
            let password = decode(url.password().unwrap_or_default(), "password")?;
            Some(Login {
                user,
                password: SecretString::from(password),
            })
        };
        let encrypted = matches!(security, Security::Required | Security::Implicit);
        if login.is_some() && !encrypted && !is_loopback(&host) {
            return Err(
                "has a login but no required TLS: use smtps:// or ?tls=required, so the password never crosses the network in clear"
                    .into(),
            );
        }

        Ok(Self {
            host,
            port,
            security,
            login,
            connect_timeout,
            command_timeout,
            extra_roots,
        })
    }
}

/// The certificates in the PEM file at `path`: at least one.
fn certificates(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("has ca=`{path}`, which cannot be read: {e}"))?;
    match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        _ => Err(format!("has ca=`{path}`, which holds no PEM certificate")),
    }
}

fn seconds(key: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "has {key}=`{value}`: give a positive number of seconds"
        )),
    }
}

fn decode(encoded: &str, what: &str) -> Result<String, String> {
    percent_decode_str(encoded)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("has a {what} that is not UTF-8 once percent-decoded"))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn plain_smtp_for_a_local_relay() {
        let url = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, 2525);
        assert_eq!(url.security, Security::Plain);
        assert!(url.login.is_none());
        assert_eq!(url.connect_timeout, CONNECT_TIMEOUT);
        assert_eq!(url.command_timeout, COMMAND_TIMEOUT);
    }

    #[test]
    fn starttls_modes_and_default_ports() {
        let url = SmtpUrl::parse("smtp://relay.example?tls=required").unwrap();
        assert_eq!((url.security, url.port), (Security::Required, 587));
        let url = SmtpUrl::parse("smtp://relay.example:2587?tls=opportunistic").unwrap();
        assert_eq!((url.security, url.port), (Security::Opportunistic, 2587));
        let url = SmtpUrl::parse("smtp://relay.example").unwrap();
        assert_eq!((url.security, url.port), (Security::Plain, 25));
        let url = SmtpUrl::parse("smtp://[::1]:2525").unwrap();
        assert_eq!(url.host, "::1");
    }

    #[test]
    fn implicit_tls_with_a_percent_encoded_login() {
        let url = SmtpUrl::parse("smtps://mailer%40example.org:p%3Ass%2Fw@relay.example").unwrap();
        assert_eq!((url.security, url.port), (Security::Implicit, 465));
        let login = url.login.unwrap();
        assert_eq!(login.user, "mailer@example.org");
        assert_eq!(login.password.expose_secret(), "p:ss/w");
    }

    #[test]
    fn timeouts_come_from_the_query() {
        let url =
            SmtpUrl::parse("smtp://127.0.0.1:25?connect_timeout=3&command_timeout=60").unwrap();
        assert_eq!(url.connect_timeout, Duration::from_secs(3));
        assert_eq!(url.command_timeout, Duration::from_secs(60));
        assert!(SmtpUrl::parse("smtp://h?command_timeout=0").is_err());
    }

    #[test]
    fn mistakes_are_named_and_the_password_never_repeated() {
        for (raw, expected) in [
            ("http://relay.example", "scheme `http`"),
            ("smtp://", "no host"),
            ("smtp://relay.example/inbox", "path"),
            ("smtp://relay.example?tls=yes", "tls=`yes`"),
            (
                "smtp://relay.example?timeout=5",
                "unknown parameter `timeout`",
            ),
            ("smtps://relay.example?tls=required", "smtps://"),
            ("smtp://u:secret-pw@relay.example:587", "no required TLS"),
            (
                "smtp://u:secret-pw@relay.example?tls=opportunistic",
                "no required TLS",
            ),
            ("not a url", "is not a URL"),
        ] {
            let err = SmtpUrl::parse(raw).unwrap_err();
            assert!(err.contains(expected), "{raw}: {err}");
            assert!(!err.contains("secret-pw"), "{raw}: {err}");
        }
    }

    #[test]
    fn extra_roots_come_from_a_pem_file() {
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp/ca.pem");
        let url = SmtpUrl::parse(&format!("smtps://relay.example?ca={ca}")).unwrap();
        assert_eq!(url.extra_roots.len(), 1);
        let key = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/smtp/server.key"
        );
        let err = SmtpUrl::parse(&format!("smtps://relay.example?ca={key}")).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        let err = SmtpUrl::parse("smtps://relay.example?ca=/nonexistent.pem").unwrap_err();
        assert!(err.contains("cannot be read"), "{err}");
    }

    #[test]
    fn a_login_over_plain_smtp_is_fine_on_this_machine() {
        let url = SmtpUrl::parse("smtp://u:pw@localhost:2525").unwrap();
        assert_eq!(url.login.unwrap().user, "u");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let url = SmtpUrl::parse("smtps://u:secret-pw@relay.example").unwrap();
        assert!(!format!("{url:?}").contains("secret-pw"));
    }
}
