//! Microsoft Graph change notifications: nothing is signed. Each
//! notification in the body's `value` array carries the `clientState` given
//! when the subscription was created, and every one of them must equal a
//! configured secret (compared in constant time). The body, and so the
//! event log and destinations, hold that value: Graph sends it that way.
//! The subscription's validation (a POST with `?validationToken=`, no
//! body) is answered in `pipeline::challenge`.

use std::borrow::Cow;

use serde::Deserialize;

use super::VerifyError;
use super::common::{SecretDigests, ok_if};
use crate::secrets::Secret;

pub(super) struct Msgraph {
    digests: SecretDigests,
}

#[derive(Deserialize)]
struct Batch<'a> {
    #[serde(borrow)]
    value: Vec<Notification<'a>>,
}

#[derive(Deserialize)]
struct Notification<'a> {
    #[serde(rename = "clientState", borrow, default)]
    client_state: Option<Cow<'a, str>>,
}

impl Msgraph {
    pub(super) fn new(secrets: &[Secret]) -> Self {
        Self {
            digests: SecretDigests::new(secrets),
        }
    }

    pub(super) fn key_count(&self) -> usize {
        self.digests.len()
    }

    pub(super) fn verify(&self, body: &[u8]) -> Result<(), VerifyError> {
        let batch: Batch = serde_json::from_slice(body)
            .map_err(|_| VerifyError::MissingBodyField("value[].clientState"))?;
        if batch.value.is_empty() {
            return Err(VerifyError::MissingBodyField("value[].clientState"));
        }
        let mut all = true;
        for n in &batch.value {
            let state = n
                .client_state
                .as_deref()
                .ok_or(VerifyError::MissingBodyField("value[].clientState"))?;
            // No early exit: the time does not tell which one failed.
            all &= self.digests.matches(state.as_bytes());
        }
        ok_if(all)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::Case;

    const STATE: &str = "graph-client-state-5b1c";

    fn body(states: &[Option<&str>]) -> Vec<u8> {
        let items: Vec<serde_json::Value> = states
            .iter()
            .map(|s| {
                let mut n = serde_json::json!({
                    "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
                    "changeType": "created",
                    "resource": "Users/ea4d/Messages/AAMk",
                    "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95"
                });
                if let Some(s) = s {
                    n["clientState"] = serde_json::json!(s);
                }
                n
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "value": items })).unwrap()
    }

    fn case(secrets: &[&str], body: Vec<u8>) -> Case {
        Case::new(Provider::Msgraph, secrets).body(&body)
    }

    #[test]
    fn every_notification_must_carry_the_client_state() {
        case(&[STATE], body(&[Some(STATE)])).passes();
        case(&[STATE], body(&[Some(STATE), Some(STATE)])).passes();
        case(&["old-state", STATE], body(&[Some(STATE)])).passes();
        case(
            &[STATE],
            body(&[Some(STATE), Some("graph-client-state-5b1d")]),
        )
        .fails(InvalidSignature);
        case(&[STATE], body(&[Some("")])).fails(InvalidSignature);
        case(&[STATE], body(&[Some(STATE), None])).fails(MissingBodyField("value[].clientState"));
        case(&[STATE], body(&[])).fails(MissingBodyField("value[].clientState"));
        for junk in [&b""[..], b"{}", b"[]", b"{\"value\":{}}", b"not json"] {
            case(&[STATE], junk.to_vec()).fails(MissingBodyField("value[].clientState"));
        }
    }
}
