//! Asana's `X-Hook-Secret` handshake: when a webhook is created, the
//! provider chooses its secret and POSTs it in a header, with no event, and
//! signs every later event with it. The gateway keeps the first secret a
//! source is sent at the source's one secret reference (a conditional
//! write: of two handshakes the first stays) and echoes it back, as the
//! provider requires. A repeated handshake with the kept secret is echoed
//! again; one with another secret is refused (409) and changes nothing. To
//! take a new webhook's secret, an operator points the source at a fresh
//! reference.

use http::{HeaderMap, HeaderValue};

use super::challenge::single_header;
use super::receive::Answer;
use crate::config::{Registry, Source};
use crate::error::ReceiveError;
use crate::secrets::{Keep, Secret};

/// Longest secret taken: far above the few dozen characters providers send.
pub const MAX_HANDSHAKE_SECRET_BYTES: usize = 256;

const ALREADY_KEPT: &str = "this source keeps the secret of an earlier handshake; to take a new \
                            one, an operator points the source at a fresh secret reference";

/// The answer to a secret handshake to `source`, if this is one: the
/// provider's header on a POST to a source whose provider sends one.
/// `None` for any other request, which is then verified as usual.
pub async fn answer_secret_handshake(
    registry: &dyn Registry,
    source: &Source,
    headers: &HeaderMap,
) -> Result<Option<Answer>, ReceiveError> {
    let (Some(name), Some(held)) = (
        source.provider.secret_handshake_header(),
        source.handshake_secret.as_ref(),
    ) else {
        return Ok(None);
    };
    if !headers.contains_key(name) {
        return Ok(None);
    }
    let sent = single_header(headers, name)?;
    // The secret becomes an HMAC key and an SSM or database value: plain
    // visible ASCII, as providers send, and nothing a config check would
    // later refuse (surrounding blanks).
    if sent.len() > MAX_HANDSHAKE_SECRET_BYTES || !sent.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ReceiveError::BadRequest(format!(
            "header {name} must be at most {MAX_HANDSHAKE_SECRET_BYTES} visible ASCII characters"
        )));
    }
    let kept_now = match &held.kept {
        Some(digests) if digests.matches(sent.as_bytes()) => false,
        Some(_) => return Err(ReceiveError::SecretAlreadyKept(ALREADY_KEPT)),
        // What this instance saw may be stale (another instance kept a
        // secret, or this one did and its answer was lost): the keeper
        // compares with what is there.
        None => match registry
            .keep_handshake_secret(&source.id, &held.reference, &Secret::new(sent))
            .await?
        {
            Keep::Kept => true,
            Keep::Same => false,
            Keep::Other => return Err(ReceiveError::SecretAlreadyKept(ALREADY_KEPT)),
        },
    };
    tracing::info!(source = %source.id, kept_now, "answered provider secret handshake");
    let mut value = HeaderValue::from_str(sent)
        .map_err(|_| ReceiveError::BadRequest(format!("header {name} is not readable text")))?;
    // Never shown by Debug, never compressed into HPACK tables.
    value.set_sensitive(true);
    Ok(Some(Answer::echo(name.clone(), value)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::SystemTime;

    use bytes::Bytes;
    use hmac::{Hmac, Mac};
    use http::HeaderMap;
    use sha2::Sha256;

    use super::*;
    use crate::admin::fakes::MemSecrets;
    use crate::config::{ConfigFile, LazyRegistry, Policy};
    use crate::pipeline::fakes::MemStore;
    use crate::pipeline::receive::{Reply, Target, receive};
    use crate::secrets::{SecretRef, SecretResolver};

    const CONFIG: &str = r#"
        [[sources]]
        id = "asana"
        provider = "asana"
        secrets = ["db:asana-hook"]
    "#;

    /// A registry as a function instance holds it, over `secrets` (the
    /// shared store every instance writes to and reads from).
    fn registry(secrets: &Arc<MemSecrets>) -> LazyRegistry {
        registry_of(CONFIG, secrets, true)
    }

    /// A registry of `config`, writing handshakes' secrets to `secrets`
    /// or (`keeps` false) nowhere.
    fn registry_of(config: &str, secrets: &Arc<MemSecrets>, keeps: bool) -> LazyRegistry {
        let keeper: Option<Arc<dyn crate::secrets::SecretKeeper>> =
            keeps.then(|| secrets.clone() as _);
        LazyRegistry::new(
            ConfigFile::parse(config).unwrap(),
            HashSet::new(),
            &HashSet::new(),
            Vec::new(),
            Policy::EMBEDDED,
            secrets.clone(),
        )
        .with_keeper(keeper)
    }

    fn handshake(secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-hook-secret", secret.parse().unwrap());
        h
    }

    fn event(secret: &str, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let mut h = HeaderMap::new();
        h.insert(
            "x-hook-signature",
            hex::encode(mac.finalize().into_bytes()).parse().unwrap(),
        );
        h
    }

    const BODY: &[u8] = br#"{"events":[{"action":"changed","resource":{"gid":"1"}}]}"#;

    async fn post(reg: &LazyRegistry, store: &MemStore, h: HeaderMap, body: &[u8]) -> Reply {
        let result = receive(
            reg,
            store,
            "asana",
            h,
            Bytes::copy_from_slice(body),
            Target::default(),
            SystemTime::now(),
        )
        .await;
        Reply::from_result(&result, "asana", "req-1")
    }

    fn echoed(reply: &Reply) -> Option<&str> {
        reply.echo.as_ref().map(|(name, value)| {
            assert_eq!(name, "x-hook-secret");
            assert!(value.is_sensitive());
            value.to_str().unwrap()
        })
    }

    async fn kept(secrets: &MemSecrets) -> Option<String> {
        secrets
            .resolve(&SecretRef::Db("asana-hook".into()))
            .await
            .ok()
            .map(|s| s.expose().to_owned())
    }

    /// Before its handshake a source verifies nothing (503: the provider
    /// retries); the first handshake's secret is kept and echoed, nothing
    /// is committed, and events signed with it are then accepted.
    #[tokio::test]
    async fn the_first_handshake_secret_is_kept_echoed_and_then_verifies_events() {
        let secrets = Arc::new(MemSecrets::new(&[]));
        let reg = registry(&secrets);
        let store = MemStore::default();

        let early = post(&reg, &store, event("anything", BODY), BODY).await;
        assert_eq!(early.status, 503, "{}", early.body);
        assert!(early.body.contains("awaiting_handshake"), "{}", early.body);

        let reply = post(&reg, &store, handshake("b2f1c0ffee"), b"").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, ""));
        assert_eq!(echoed(&reply), Some("b2f1c0ffee"));
        assert_eq!(kept(&secrets).await.as_deref(), Some("b2f1c0ffee"));
        assert!(
            store.events.lock().unwrap().is_empty(),
            "a handshake commits nothing"
        );

        let ok = post(&reg, &store, event("b2f1c0ffee", BODY), BODY).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert_eq!(store.events.lock().unwrap().len(), 1);
        let forged = post(&reg, &store, event("another", BODY), BODY).await;
        assert_eq!(forged.status, 401, "{}", forged.body);
    }

    /// The provider's retry of the same handshake is echoed again; a
    /// handshake with another secret is a 409 and the first stays.
    #[tokio::test]
    async fn a_repeated_handshake_is_echoed_and_another_secret_is_refused() {
        let secrets = Arc::new(MemSecrets::new(&[]));
        let reg = registry(&secrets);
        let store = MemStore::default();
        assert_eq!(
            post(&reg, &store, handshake("first"), b"").await.status,
            200
        );

        let again = post(&reg, &store, handshake("first"), b"").await;
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(echoed(&again), Some("first"));

        let other = post(&reg, &store, handshake("second"), b"").await;
        assert_eq!(other.status, 409, "{}", other.body);
        assert!(other.body.contains("secret_already_kept"), "{}", other.body);
        assert!(!other.body.contains("second") && !other.body.contains("first"));
        assert_eq!(other.echo, None);
        assert_eq!(kept(&secrets).await.as_deref(), Some("first"));
    }

    /// An instance that saw the source waiting, after the secret was kept
    /// elsewhere (another instance, or this one with its answer lost): the
    /// provider's retry with that secret is echoed, another is a 409.
    #[tokio::test]
    async fn a_stale_instance_echoes_the_kept_secret_and_refuses_another() {
        let secrets = Arc::new(MemSecrets::new(&[]));
        let store = MemStore::default();
        for (sent, status) in [("kept-earlier", 200), ("not-it", 409)] {
            secrets.stored.lock().unwrap().clear();
            let reg = registry(&secrets);
            assert!(
                reg.source("asana")
                    .await
                    .unwrap()
                    .unwrap()
                    .awaits_handshake()
            );
            secrets
                .stored
                .lock()
                .unwrap()
                .insert("asana-hook".into(), "kept-earlier".into());
            let reply = post(&reg, &store, handshake(sent), b"").await;
            assert_eq!(reply.status, status, "{sent}: {}", reply.body);
            assert_eq!(echoed(&reply), (status == 200).then_some(sent));
            assert_eq!(kept(&secrets).await.as_deref(), Some("kept-earlier"));
            // Either way the instance now serves what is kept.
            let ok = post(&reg, &store, event("kept-earlier", BODY), BODY).await;
            assert_eq!(ok.status, 200, "{}", ok.body);
        }
    }

    /// Two instances (each its own registry, one shared store) both see
    /// the source waiting and race their handshakes: exactly one secret
    /// is kept, its handshake alone is echoed, and it is what verifies.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_two_racing_handshakes_exactly_one_secret_is_kept() {
        for round in 0..20 {
            let secrets = Arc::new(MemSecrets::new(&[]));
            let (a, b) = (registry(&secrets), registry(&secrets));
            let store = MemStore::default();
            // Both resolve the source first: both see it waiting.
            assert!(a.source("asana").await.unwrap().unwrap().awaits_handshake());
            assert!(b.source("asana").await.unwrap().unwrap().awaits_handshake());
            let (ra, rb) = tokio::join!(
                post(&a, &store, handshake("secret-a"), b""),
                post(&b, &store, handshake("secret-b"), b""),
            );
            let mut statuses = [ra.status, rb.status];
            statuses.sort_unstable();
            assert_eq!(statuses, [200, 409], "round {round}: {ra:?} {rb:?}");
            let winner = if ra.status == 200 {
                "secret-a"
            } else {
                "secret-b"
            };
            assert_eq!(kept(&secrets).await.as_deref(), Some(winner));
            let reg = if ra.status == 200 { &a } else { &b };
            let ok = post(reg, &store, event(winner, BODY), BODY).await;
            assert_eq!(ok.status, 200, "round {round}: {}", ok.body);
        }
    }

    /// A repeated, empty, over-long or non-ASCII secret header is a 400
    /// and keeps nothing; other providers' sources ignore the header.
    #[tokio::test]
    async fn a_malformed_handshake_is_a_400_and_keeps_nothing() {
        let secrets = Arc::new(MemSecrets::new(&[]));
        let reg = registry(&secrets);
        let store = MemStore::default();
        let mut twice = handshake("one");
        twice.append("x-hook-secret", "two".parse().unwrap());
        let long = "a".repeat(MAX_HANDSHAKE_SECRET_BYTES + 1);
        for h in [
            twice,
            handshake(""),
            handshake(&long),
            handshake("has space"),
            handshake("tab\tinside"),
        ] {
            let reply = post(&reg, &store, h, b"").await;
            assert_eq!(reply.status, 400, "{}", reply.body);
            assert_eq!(reply.echo, None);
        }
        let mut latin = HeaderMap::new();
        latin.insert(
            "x-hook-secret",
            http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        assert_eq!(post(&reg, &store, latin, b"").await.status, 400);
        assert_eq!(kept(&secrets).await, None);
    }

    /// An unset `env:` variable is a config error, not a reference a
    /// handshake could fill: the source is unavailable and keeps nothing.
    #[tokio::test]
    async fn an_unset_env_reference_is_broken_not_waiting() {
        let secrets = Arc::new(MemSecrets::new(&[]));
        let reg = registry_of(
            &CONFIG.replace("db:asana-hook", "env:ASANA_UNSET"),
            &secrets,
            true,
        );
        let store = MemStore::default();
        for h in [handshake("s"), event("s", BODY)] {
            let reply = post(&reg, &store, h, BODY).await;
            assert_eq!(reply.status, 503, "{}", reply.body);
            assert!(reply.body.contains("source_unavailable"), "{}", reply.body);
        }
        assert!(secrets.stored.lock().unwrap().is_empty());
    }

    /// A source of another provider: `X-Hook-Secret` is not a handshake,
    /// the request is verified (and fails) as usual.
    #[tokio::test]
    async fn the_header_means_nothing_to_other_providers() {
        let secrets = Arc::new(MemSecrets::new(&[("GH", "gh-secret")]));
        let reg = registry_of(
            r#"
                [[sources]]
                id = "asana"
                provider = "github"
                secrets = ["env:GH"]
                "#,
            &secrets,
            true,
        );
        let reply = post(&reg, &MemStore::default(), handshake("s"), b"").await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert_eq!(reply.echo, None);
    }

    /// A source kept with the secret in a config file held as it stands
    /// (no keeper) cannot take one: 503, nothing echoed.
    #[tokio::test]
    async fn without_a_keeper_the_handshake_is_unavailable() {
        let secrets = Arc::new(MemSecrets::new(&[]));
        let reg = registry_of(CONFIG, &secrets, false);
        let reply = post(&reg, &MemStore::default(), handshake("s"), b"").await;
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert_eq!(reply.echo, None);
        assert!(
            !reply.body.contains("keeps no secrets"),
            "internals: {}",
            reply.body
        );
    }
}
