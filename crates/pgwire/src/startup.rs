//! The startup phase: TLS/GSS refusal, the StartupMessage, who may connect, authentication.
//!
//! ```text
//!  client                                server
//!  SSLRequest ───────────────────────────▶
//!            ◀─────────────────────────── 'N'        (no TLS yet; same for GSSENCRequest)
//!  StartupMessage(user, database, ...) ──▶            role and database checked here
//!            ◀── NegotiateProtocolVersion             (only if the client asked for > 3.0)
//!            ◀── AuthenticationSASL      ┐
//!  SASLInitialResponse ─────────────────▶│ SCRAM-SHA-256, only when a password is configured;
//!            ◀── AuthenticationSASLContinue  otherwise trust, and only from loopback
//!  SASLResponse ────────────────────────▶│
//!            ◀── AuthenticationSASLFinal ┘
//!            ◀── AuthenticationOk
//! ```
//!
//! A CancelRequest also arrives here, as the first message of a connection of its own.

use std::net::SocketAddr;

use bytes::Bytes;
use cairn_sql::{SqlError, SqlState};
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramSecret, ScramServerAuth};
use pgwire::error::PgWireError;
use pgwire::messages::startup::{Authentication, NegotiateProtocolVersion};
use pgwire::messages::PgWireBackendMessage;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::errors::{password_failed, protocol_violation};
use crate::frontend::{parse_sasl_initial, Frontend, Startup};
use crate::registry::{random_u64, Registry};
use crate::spin::Polling;
use crate::wire::{Stop, Wire};

/// The only role.
pub(crate) const ROLE: &str = "postgres";
/// The only database.
pub(crate) const DATABASE: &str = "postgres";
/// Protocol 3.0 as a version number (the only version spoken).
const PROTOCOL_3_0: i32 = 3 << 16;
/// The SCRAM mechanism offered.
const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// PBKDF2 iterations for the SCRAM verifier (PostgreSQL's default).
const SCRAM_ITERATIONS: usize = 4096;

/// The server's SCRAM secret, derived once from the configured password.
pub(crate) struct Credential {
    salt: Vec<u8>,
    salted_password: Vec<u8>,
}

impl Credential {
    /// Salts and hashes `password` (PBKDF2, 4096 rounds: a few milliseconds, done once).
    pub(crate) fn new(password: &str) -> Credential {
        let salt: Vec<u8> = [random_u64(), random_u64()]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        let salted_password = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
        Credential {
            salt,
            salted_password,
        }
    }

    fn secret(&self) -> ScramSecret {
        ScramSecret::SaltedPassword {
            salt: self.salt.clone(),
            salted_password: self.salted_password.clone(),
        }
    }
}

/// A client that completed startup and authentication.
pub(crate) struct Accepted {
    pub(crate) user: String,
    pub(crate) database: String,
    /// The other startup parameters (application_name, client_encoding, DateStyle, ...), for
    /// the session to apply.
    pub(crate) settings: Vec<(String, String)>,
}

/// Runs the startup phase. `Ok(None)`: the connection was a CancelRequest (handled) and ends
/// without a reply.
pub(crate) async fn startup<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    peer: SocketAddr,
    credential: Option<&Credential>,
    registry: &Registry,
) -> Result<Option<Accepted>, Stop> {
    let (mut ssl_refused, mut gss_refused) = (false, false);
    let (major, minor, params) = loop {
        match wire.read_startup().await? {
            Startup::Ssl if !ssl_refused => {
                ssl_refused = true;
                wire.send_byte(b'N');
                wire.flush().await?;
            }
            Startup::Gss if !gss_refused => {
                gss_refused = true;
                wire.send_byte(b'N');
                wire.flush().await?;
            }
            Startup::Ssl | Startup::Gss => {
                return Err(Stop::Fatal(protocol_violation(
                    "repeated SSL or GSS negotiation",
                )));
            }
            Startup::Cancel { pid, secret } => {
                let cancelled = registry.cancel(pid, &secret);
                tracing::debug!(pid, cancelled, "cancel request");
                return Ok(None);
            }
            Startup::Start {
                major,
                minor,
                params,
            } => break (major, minor, params),
        }
    };

    if major != 3 {
        return Err(Stop::Fatal(SqlError::unsupported(format!(
            "unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0"
        ))));
    }
    let unsupported: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.starts_with("_pq_."))
        .map(|(k, _)| k.clone())
        .collect();
    if minor > 0 || !unsupported.is_empty() {
        wire.send(PgWireBackendMessage::NegotiateProtocolVersion(
            NegotiateProtocolVersion::new(PROTOCOL_3_0, unsupported),
        ));
    }

    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let Some(user) = param("user").filter(|u| !u.is_empty()) else {
        return Err(Stop::Fatal(SqlError::new(
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            "no PostgreSQL user name specified in startup packet",
        )));
    };
    let database = param("database")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| user.clone());
    if let Some(replication) = param("replication") {
        if !matches!(
            replication.to_ascii_lowercase().as_str(),
            "false" | "off" | "no" | "0"
        ) {
            return Err(Stop::Fatal(SqlError::unsupported(
                "replication connections are not supported",
            )));
        }
    }
    if user != ROLE {
        return Err(Stop::Fatal(SqlError::new(
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            format!("role \"{user}\" does not exist"),
        )));
    }
    if database != DATABASE {
        return Err(Stop::Fatal(SqlError::new(
            SqlState::INVALID_CATALOG_NAME,
            format!("database \"{database}\" does not exist"),
        )));
    }

    match credential {
        Some(credential) => scram(wire, credential, &user).await?,
        None if peer.ip().is_loopback() => {}
        None => {
            return Err(Stop::Fatal(
                SqlError::new(
                    SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                    format!(
                        "no pg_hba.conf entry for host \"{}\", user \"{user}\", database \"{database}\", no encryption",
                        peer.ip()
                    ),
                )
                .with_hint("Without a configured password only loopback connections are accepted."),
            ));
        }
    }
    wire.send(PgWireBackendMessage::Authentication(Authentication::Ok));
    let mut settings: Vec<(String, String)> = Vec::new();
    for (name, value) in params {
        match name.as_str() {
            "user" | "database" | "replication" => {}
            "options" => settings.extend(parse_options(&value).map_err(Stop::Fatal)?),
            _ if name.starts_with("_pq_.") => {}
            _ => settings.push((name, value)),
        }
    }
    Ok(Some(Accepted {
        user,
        database,
        settings,
    }))
}

/// SCRAM-SHA-256 without channel binding (there is no TLS to bind to yet), using pgwire's
/// server-side SCRAM state machine.
async fn scram<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    credential: &Credential,
    user: &str,
) -> Result<(), Stop> {
    wire.send(PgWireBackendMessage::Authentication(Authentication::SASL(
        vec![SCRAM_SHA_256.to_owned()],
    )));
    wire.flush().await?;

    let (mechanism, client_first) =
        parse_sasl_initial(password_message(wire).await?).map_err(Stop::Fatal)?;
    if mechanism != SCRAM_SHA_256 {
        return Err(Stop::Fatal(protocol_violation(
            "client selected an invalid SASL authentication mechanism",
        )));
    }
    let (server_first, waiting) = ScramServerAuth::new()
        .on_client_first_message_with_secret(&client_first, credential.secret())
        .map_err(|e| Stop::Fatal(scram_error(e, user)))?;
    wire.send(PgWireBackendMessage::Authentication(
        Authentication::SASLContinue(Bytes::from(server_first)),
    ));
    wire.flush().await?;

    let client_final = password_message(wire).await?;
    let server_final = waiting
        .on_client_final_message(&client_final)
        .map_err(|e| Stop::Fatal(scram_error(e, user)))?;
    wire.send(PgWireBackendMessage::Authentication(
        Authentication::SASLFinal(Bytes::from(server_final)),
    ));
    Ok(())
}

/// The `options` startup parameter, as libpq's `PGOPTIONS` sends it: command-line switches
/// `-c name=value` (or `-cname=value`, `--name=value`), separated by spaces; a backslash
/// escapes the next character.
fn parse_options(options: &str) -> Result<Vec<(String, String)>, SqlError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_ascii_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let invalid = |arg: &str| {
        SqlError::new(
            SqlState::PROTOCOL_VIOLATION,
            format!("invalid command-line argument for server process: {arg}"),
        )
        .with_hint("Only -c name=value and --name=value are accepted in options.")
    };
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let setting = if word == "-c" {
            words.next().ok_or_else(|| invalid(&word))?
        } else if let Some(rest) = word.strip_prefix("--").or_else(|| word.strip_prefix("-c")) {
            rest.to_owned()
        } else {
            return Err(invalid(&word));
        };
        let Some((name, value)) = setting.split_once('=') else {
            return Err(invalid(&setting));
        };
        settings.push((name.replace('-', "_"), value.to_owned()));
    }
    Ok(settings)
}

async fn password_message<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
) -> Result<Bytes, Stop> {
    loop {
        match wire.try_message()? {
            Some(Frontend::Password(body)) => return Ok(body),
            Some(Frontend::Terminate) => return Err(Stop::Closed),
            Some(_) => {
                return Err(Stop::Fatal(protocol_violation(
                    "expected a SASL response during authentication",
                )))
            }
            None => wire.fill(Polling::Allowed).await?,
        }
    }
}

fn scram_error(error: PgWireError, user: &str) -> SqlError {
    match error {
        PgWireError::InvalidPassword(_) => password_failed(user),
        other => {
            tracing::debug!(error = %other, "SCRAM exchange failed");
            protocol_violation(format!("malformed SCRAM message: {other}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_carry_settings_as_postgres_parses_them() {
        let parsed =
            parse_options("-c search_path=a\\ b  -cstatement_timeout=5 --lock-timeout=1").unwrap();
        assert_eq!(
            parsed,
            vec![
                ("search_path".to_owned(), "a b".to_owned()),
                ("statement_timeout".to_owned(), "5".to_owned()),
                ("lock_timeout".to_owned(), "1".to_owned()),
            ]
        );
        assert!(parse_options("").unwrap().is_empty());
        for bad in ["-x", "-c", "-c novalue", "plain"] {
            assert_eq!(
                parse_options(bad).unwrap_err().state,
                SqlState::PROTOCOL_VIOLATION,
                "{bad}"
            );
        }
    }
}
