//! Telegram bots: `setWebhook`'s `secret_token` comes back, as it is, in
//! `X-Telegram-Bot-Api-Secret-Token` (1–256 characters of `A-Z a-z 0-9 _
//! -`). Nothing is signed and there is no timestamp; dedup on the update's
//! `update_id` covers Telegram's retries.

use http::HeaderName;

pub(super) const TOKEN: HeaderName = HeaderName::from_static("x-telegram-bot-api-secret-token");

#[cfg(test)]
mod tests {
    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::Case;

    const TOKEN: &str = "bot_hook-token_4f1c";
    const BODY: &[u8] = br#"{"update_id":10000,"message":{"message_id":1,"text":"hi"}}"#;

    fn case(secrets: &[&str], value: Option<&str>) -> Case {
        let c = Case::new(Provider::Telegram, secrets).body(BODY);
        match value {
            Some(v) => c.header("X-Telegram-Bot-Api-Secret-Token", v),
            None => c,
        }
    }

    #[test]
    fn the_configured_token_passes_and_anything_else_fails() {
        case(&[TOKEN], Some(TOKEN)).passes();
        case(&["old_token", TOKEN], Some(TOKEN)).passes();
        case(&[TOKEN], Some("bot_hook-token_4f1d")).fails(InvalidSignature);
        case(&[TOKEN], Some(&TOKEN[..5])).fails(InvalidSignature);
        case(&[TOKEN], Some("")).fails(MalformedSignature);
        case(&[TOKEN], None).fails(MissingHeader("x-telegram-bot-api-secret-token".into()));
    }
}
