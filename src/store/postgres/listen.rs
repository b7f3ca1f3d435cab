//! The paid-fact channel of a fleet: the triggers of schema version 5 (see
//! [`super::schema::STEPS`]) `NOTIFY` [`PAID_CHANNEL`] with a contract hash from
//! every transaction that takes back (or alters) that contract's paid fact, and
//! each instance `LISTEN`s on a dedicated connection ([`listen`]) to drop the
//! fact from its cache. The connection is not pooled and carries the
//! `application_name` [`LISTEN_APPLICATION`], so an operator (or a test) can see
//! it in `pg_stat_activity`.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Config, NoTls};

use super::pg;
use crate::store::StoreResult;

/// The channel the triggers notify.
pub const PAID_CHANNEL: &str = "tollgate_paid";

/// The `application_name` of the listening connection.
pub const LISTEN_APPLICATION: &str = "tollgate-listen";

/// How long connecting may take unless the URL says (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the listening connection reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The paid fact of this contract hash changed.
    Changed([u8; 32]),
    /// A notification on the channel that is not a contract hash (its payload).
    Unreadable(String),
    /// The connection is gone (why): whatever was notified meanwhile is lost.
    Lost(String),
}

/// `config` for a dedicated (not pooled) connection named `application`, given a
/// connect timeout when the URL has none.
pub fn dedicated(config: &Config, application: &str) -> Config {
    let mut config = config.clone();
    config.application_name(application);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config
}

/// A connection `LISTEN`ing on [`PAID_CHANNEL`].
pub struct Listening {
    client: tokio_postgres::Client,
    notices: mpsc::UnboundedReceiver<Notice>,
}

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening").finish_non_exhaustive()
    }
}

/// Connects with `config` and `LISTEN`s. Notifications committed after this
/// returns `Ok` are reported by [`Listening::next`]; the connection is driven by a
/// task of the current runtime, which ends with it.
pub async fn listen(config: &Config) -> StoreResult<Listening> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(pg)?;
    let (tx, notices) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let lost = loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(parse(n.payload())).is_err() {
                        return; // nobody listens any more
                    }
                }
                Some(Ok(_)) => {} // a notice from the server
                Some(Err(e)) => break e.to_string(),
                None => break "the connection closed".to_string(),
            }
        };
        let _ = tx.send(Notice::Lost(lost));
    });
    client
        .batch_execute(&format!("LISTEN {PAID_CHANNEL}"))
        .await
        .map_err(pg)?;
    Ok(Listening { client, notices })
}

impl Listening {
    /// The next notice; [`Notice::Lost`] once the connection is gone.
    pub async fn next(&mut self) -> Notice {
        self.notices
            .recv()
            .await
            .unwrap_or_else(|| Notice::Lost("the connection closed".into()))
    }

    /// A round trip on the connection, so one that died silently is noticed.
    pub async fn ping(&self) -> StoreResult<()> {
        self.client.simple_query("").await.map_err(pg)?;
        Ok(())
    }
}

/// A notification's payload: a contract hash in hex.
fn parse(payload: &str) -> Notice {
    let mut hash = [0u8; 32];
    match hex::decode_to_slice(payload.trim(), &mut hash) {
        Ok(()) => Notice::Changed(hash),
        Err(_) => Notice::Unreadable(payload.chars().take(80).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_contract_hashes_in_hex() {
        assert_eq!(parse(&"ab".repeat(32)), Notice::Changed([0xab; 32]));
        assert_eq!(parse(&"AB".repeat(32)), Notice::Changed([0xab; 32]));
        for bad in ["", "zz", &"ab".repeat(31), &"ab".repeat(33)] {
            assert!(matches!(parse(bad), Notice::Unreadable(_)), "{bad}");
        }
        let Notice::Unreadable(long) = parse(&"x".repeat(10_000)) else {
            panic!("a long payload is unreadable");
        };
        assert_eq!(long.len(), 80);
    }

    #[test]
    fn dedicated_connections_are_named() {
        let url = super::super::config_of("postgres://u:secret@127.0.0.1:5432/db").unwrap();
        let c = dedicated(&url, LISTEN_APPLICATION);
        assert_eq!(c.get_application_name(), Some(LISTEN_APPLICATION));
        assert_eq!(c.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        let url = super::super::config_of("postgres://u@h/db?connect_timeout=3").unwrap();
        let c = dedicated(&url, LISTEN_APPLICATION);
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(3)));
        let e = super::super::config_of("postgres://u:secret@h/db?sslmode=bogus").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
