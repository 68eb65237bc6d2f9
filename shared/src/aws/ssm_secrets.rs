//! `SecretResolver` for `ssm:/path` (SSM Parameter Store, decrypted) with an
//! in-memory cache; `env:` references go to [`EnvSecrets`]. Values are never
//! logged: errors name the reference only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_sdk_ssm::operation::put_parameter::PutParameterError;
use aws_sdk_ssm::types::ParameterType;

use crate::secrets::{
    EnvSecrets, Keep, Secret, SecretError, SecretKeeper, SecretRef, SecretResolver,
};

pub struct SsmSecrets {
    client: Client,
    env: EnvSecrets,
    ttl: Duration,
    /// Parameter name → (value, when it was fetched). The lock is never
    /// held across an await.
    cache: Mutex<HashMap<String, (Secret, Instant)>>,
}

/// Shows neither values nor the `env:` file's contents.
impl std::fmt::Debug for SsmSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsmSecrets")
            .field("ttl", &self.ttl)
            .field("cached", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl SsmSecrets {
    pub fn new(client: Client, env: EnvSecrets, ttl: Duration) -> Self {
        Self {
            client,
            env,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Forget every cached value (the next resolve fetches again).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Secret, Instant)>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cached(&self, name: &str) -> Option<Secret> {
        self.lock()
            .get(name)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }
}

/// The decrypted value of parameter `name` (`reference` names it in errors).
async fn fetch(client: &Client, reference: &SecretRef, name: &str) -> Result<Secret, SecretError> {
    let out = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(GetParameterError::ParameterNotFound(_)) => {
                SecretError::NotFound(reference.clone())
            }
            _ => SecretError::Backend(
                reference.clone(),
                format!(
                    "GetParameter: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(&e)
                ),
            ),
        })?;
    let value = out
        .parameter()
        .and_then(|p| p.value())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SecretError::NotFound(reference.clone()))?;
    Ok(Secret::new(value))
}

#[async_trait]
impl SecretResolver for SsmSecrets {
    async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        let name = match reference {
            SecretRef::Env(_) | SecretRef::Db(_) => return self.env.resolve(reference).await,
            SecretRef::Ssm(name) => name,
        };
        if let Some(hit) = self.cached(name) {
            return Ok(hit);
        }
        let value = fetch(&self.client, reference, name).await?;
        self.lock()
            .insert(name.clone(), (value.clone(), Instant::now()));
        Ok(value)
    }
}

/// The secrets of handshakes (Asana's `X-Hook-Secret`), written as SSM
/// SecureString parameters below `{prefix}/handshake/`: the one path the
/// receive function may write, so it can never replace a secret an
/// operator set. `Overwrite` is off: of two handshakes the first stays,
/// and what is there is read (GetParameter) to compare.
#[derive(Debug, Clone)]
pub struct SsmSecretKeeper {
    client: Client,
    /// `{prefix}/handshake/`
    below: String,
}

impl SsmSecretKeeper {
    pub fn new(client: Client, prefix: &str) -> Self {
        Self {
            client,
            below: Self::path_below(prefix),
        }
    }

    /// Where handshakes' secrets go, below the deployment's `prefix`.
    pub fn path_below(prefix: &str) -> String {
        format!("{}/handshake/", prefix.trim_end_matches('/'))
    }
}

#[async_trait]
impl SecretKeeper for SsmSecretKeeper {
    async fn keep_if_absent(
        &self,
        reference: &SecretRef,
        value: &Secret,
    ) -> Result<Keep, SecretError> {
        let SecretRef::Ssm(name) = reference else {
            return Err(SecretError::Unsupported(
                reference.clone(),
                "a handshake's secret is kept at an ssm: reference",
            ));
        };
        if !name.starts_with(&self.below) || name.len() == self.below.len() {
            return Err(SecretError::Backend(
                reference.clone(),
                format!(
                    "a handshake's secret is kept below {}, the one path the receive \
                     function may write",
                    self.below
                ),
            ));
        }
        let sent = self
            .client
            .put_parameter()
            .name(name)
            .value(value.expose())
            .r#type(ParameterType::SecureString)
            .overwrite(false)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Keep::Kept),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutParameterError::ParameterAlreadyExists(_))
                ) =>
            {
                let existing = fetch(&self.client, reference, name).await?;
                Ok(Keep::compare(&existing, value))
            }
            Err(e) => Err(SecretError::Backend(
                reference.clone(),
                format!(
                    "PutParameter: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(&e)
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::testing::{MotoServer, unique_name};

    async fn put(client: &Client, name: &str, value: &str) {
        client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn secure_strings_resolve_and_are_cached_for_the_ttl() {
        let clients = MotoServer::shared().clients().await;
        let name = format!("/sluice/test/{}", unique_name("secret"));
        put(&clients.ssm, &name, "whsec_first").await;
        let secrets = SsmSecrets::new(
            clients.ssm.clone(),
            EnvSecrets::new(),
            Duration::from_millis(1500),
        );
        let r: SecretRef = format!("ssm:{name}").parse().unwrap();
        assert_eq!(secrets.resolve(&r).await.unwrap().expose(), "whsec_first");
        // Changed in SSM: within the TTL the cached value is served…
        put(&clients.ssm, &name, "whsec_second").await;
        assert_eq!(secrets.resolve(&r).await.unwrap().expose(), "whsec_first");
        // …and after it, the new one.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(secrets.resolve(&r).await.unwrap().expose(), "whsec_second");
        put(&clients.ssm, &name, "whsec_third").await;
        secrets.clear();
        assert_eq!(secrets.resolve(&r).await.unwrap().expose(), "whsec_third");
        let debug = format!("{secrets:?}");
        assert!(!debug.contains("whsec"), "{debug}");
    }

    #[tokio::test]
    async fn missing_parameters_and_env_references() {
        let clients = MotoServer::shared().clients().await;
        let secrets = SsmSecrets::new(
            clients.ssm.clone(),
            EnvSecrets::from_map(HashMap::from([("SLUICE_T_SSM_ENV".into(), "e".into())])),
            Duration::from_secs(60),
        );
        let missing: SecretRef = format!("ssm:/sluice/{}", unique_name("missing"))
            .parse()
            .unwrap();
        let err = secrets.resolve(&missing).await.unwrap_err();
        assert!(matches!(err, SecretError::NotFound(_)), "{err}");
        let env: SecretRef = "env:SLUICE_T_SSM_ENV".parse().unwrap();
        assert_eq!(secrets.resolve(&env).await.unwrap().expose(), "e");
        // A backend failure names the reference, not a value.
        let broken = SsmSecrets::new(
            MotoServer::unreachable_clients().await.ssm,
            EnvSecrets::new(),
            Duration::from_secs(60),
        );
        let r: SecretRef = "ssm:/sluice/x".parse().unwrap();
        let err = broken.resolve(&r).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("secret ssm:/sluice/x: GetParameter"),
            "{err}"
        );
    }
}
