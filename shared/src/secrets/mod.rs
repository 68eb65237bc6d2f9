//! Secret references (`env:NAME`, `ssm:/path`) and the port that resolves them.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod env;
pub use env::EnvSecrets;

/// Where a secret lives. The config never holds the secret itself.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    Env(String),
    Ssm(String),
    /// A value held by the gateway's own secret store (the embedded
    /// database): secrets created through the admin API.
    Db(String),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::Ssm(path) => write!(f, "ssm:{path}"),
            Self::Db(name) => write!(f, "db:{name}"),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for SecretRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("secret reference {s:?} must start with env:, ssm: or db:"))?;
        if rest.is_empty() {
            return Err(format!(
                "secret reference {s:?} names nothing after {scheme}:"
            ));
        }
        match scheme {
            "env" => Ok(Self::Env(rest.to_owned())),
            "ssm" => Ok(Self::Ssm(rest.to_owned())),
            "db" => Ok(Self::Db(rest.to_owned())),
            _ => Err(format!(
                "secret reference {s:?}: unknown scheme {scheme:?} (use env:, ssm: or db:)"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Written as its text, like its Serialize and FromStr.
impl utoipa::PartialSchema for SecretRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^(env|ssm|db):.+$"))
            .description(Some(
                "A secret reference, never the value: env:NAME, ssm:/path, or db:NAME \
                 (a value the gateway keeps)",
            ))
            .examples(["env:GITHUB_SECRET"])
            .into()
    }
}

impl utoipa::ToSchema for SecretRef {}

/// A resolved secret. Its Debug form never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0} is not set")]
    NotFound(SecretRef),
    #[error("secret {0}: this backend cannot resolve it ({1})")]
    Unsupported(SecretRef, &'static str),
    #[error("secret {0}: {1}")]
    Backend(SecretRef, String),
}

#[async_trait]
pub trait SecretResolver: Send + Sync {
    async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError>;
}

/// Where secrets created through the admin API are kept (embedded: the
/// database; AWS: SSM SecureString parameters). Values are never logged.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Keep `value` under `name` (a unique, plain name); returns the
    /// reference to write into the config.
    async fn put_secret(&self, name: &str, value: &Secret) -> Result<SecretRef, SecretError>;

    /// Forget a secret this store created. Other references are ignored.
    async fn delete_secret(&self, reference: &SecretRef) -> Result<(), SecretError>;

    /// Whether `reference` is one [`Self::delete_secret`] would delete.
    fn owns(&self, reference: &SecretRef) -> bool;
}

/// Where a secret that a provider sends in its handshake (Asana's
/// `X-Hook-Secret`) is written: once, by the first handshake. Embedded:
/// `db:` names in the database; AWS: SSM parameters below the one path the
/// receive function may write.
#[async_trait]
pub trait SecretKeeper: Send + Sync {
    /// Write `value` at `reference` unless something is there already, in
    /// one conditional write; if something is, it is left as it is and
    /// compared with `value`.
    async fn keep_if_absent(
        &self,
        reference: &SecretRef,
        value: &Secret,
    ) -> Result<Keep, SecretError>;
}

/// What [`SecretKeeper::keep_if_absent`] found at the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Nothing: the value is kept now.
    Kept,
    /// The same value, kept earlier (the provider retrying a handshake
    /// whose answer it never got).
    Same,
    /// Another value, which stays.
    Other,
}

impl Keep {
    /// `Same` or `Other`, as `existing` is `value` or not (compared in
    /// constant time).
    pub fn compare(existing: &Secret, value: &Secret) -> Self {
        let digests = crate::verify::SecretDigests::new(std::slice::from_ref(existing));
        if digests.matches(value.expose().as_bytes()) {
            Self::Same
        } else {
            Self::Other
        }
    }
}
