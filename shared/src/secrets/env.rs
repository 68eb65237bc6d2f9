//! `env:NAME` secrets: the process environment, then an optional `.env` file.

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;

use super::{Secret, SecretError, SecretRef, SecretResolver};

/// Resolves `env:` references. Values from a `.env` file are kept in this
/// struct, not written into the process environment; the process
/// environment wins over the file.
#[derive(Debug, Default, Clone)]
pub struct EnvSecrets {
    file: HashMap<String, String>,
}

impl EnvSecrets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also read `KEY=value` lines from `path`, if it exists.
    pub fn with_dotenv(path: &Path) -> Result<Self, String> {
        let mut file = HashMap::new();
        if path.exists() {
            let iter =
                dotenvy::from_path_iter(path).map_err(|e| format!("{}: {e}", path.display()))?;
            for item in iter {
                let (k, v) = item.map_err(|e| format!("{}: {e}", path.display()))?;
                file.insert(k, v);
            }
        }
        Ok(Self { file })
    }

    /// Secrets from a map only (tests, embedding).
    pub fn from_map(map: HashMap<String, String>) -> Self {
        Self { file: map }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.file.get(name).cloned())
    }
}

#[async_trait]
impl SecretResolver for EnvSecrets {
    async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        match reference {
            SecretRef::Env(name) => self
                .lookup(name)
                .filter(|v| !v.is_empty())
                .map(Secret::new)
                .ok_or_else(|| SecretError::NotFound(reference.clone())),
            SecretRef::Ssm(_) => Err(SecretError::Unsupported(
                reference.clone(),
                "ssm: secrets need the aws feature",
            )),
            SecretRef::Db(_) => Err(SecretError::Unsupported(
                reference.clone(),
                "db: secrets live in the embedded gateway's database",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_values_resolve_and_missing_ones_say_which() {
        let s = EnvSecrets::from_map(HashMap::from([("SLUICE_T_A".into(), "abc".into())]));
        let got = s.resolve(&"env:SLUICE_T_A".parse().unwrap()).await.unwrap();
        assert_eq!(got.expose(), "abc");
        let err = s
            .resolve(&"env:SLUICE_T_MISSING_X".parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "secret env:SLUICE_T_MISSING_X is not set");
    }

    #[test]
    fn references_parse_and_reject_unknown_schemes() {
        assert_eq!(
            "env:A".parse::<SecretRef>().unwrap(),
            SecretRef::Env("A".into())
        );
        assert_eq!(
            "ssm:/a/b".parse::<SecretRef>().unwrap(),
            SecretRef::Ssm("/a/b".into())
        );
        assert_eq!(
            "db:sub.deploys.1".parse::<SecretRef>().unwrap(),
            SecretRef::Db("sub.deploys.1".into())
        );
        assert!("plain:x".parse::<SecretRef>().is_err());
        assert!("env:".parse::<SecretRef>().is_err());
        assert!("nothing".parse::<SecretRef>().is_err());
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
