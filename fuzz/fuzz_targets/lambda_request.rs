//! The receive function's request mapping: the input as an API Gateway
//! HTTP API (payload 2.0) event, through `sluice_receive::map_request`,
//! then, when it maps, the pipeline's pure part (`verify_and_build`) for
//! the source the path names, URL-signing ones included.

#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use libfuzzer_sys::fuzz_target;
use sluice::config::{ConfigFile, Policy, Registry, Source};
use sluice::pipeline::receive::verify_and_build;
use sluice::secrets::EnvSecrets;
use sluice_receive::{Mapped, map_request};

/// One source per kind of check: body HMAC, timestamped, URL-signing
/// without a `public_url` (the URL API Gateway saw) and with one.
const CONFIG: &str = r#"
[[sources]]
id = "github"
provider = "github"
secrets = ["env:S"]

[[sources]]
id = "stripe"
provider = "stripe"
secrets = ["env:S"]

[[sources]]
id = "square"
provider = "square"
secrets = ["env:S"]

[[sources]]
id = "twilio"
provider = "twilio"
secrets = ["env:S"]
public_url = "https://hooks.example.com/hooks/twilio"
"#;

fn sources() -> &'static HashMap<String, Arc<Source>> {
    static SOURCES: OnceLock<HashMap<String, Arc<Source>>> = OnceLock::new();
    SOURCES.get_or_init(|| {
        futures::executor::block_on(async {
            let secrets =
                EnvSecrets::from_map(HashMap::from([("S".to_owned(), "s3cret".to_owned())]));
            let mut out = HashMap::new();
            // Not ConfigFile::parse: it validates under the embedded
            // policy, which wants a public_url for every URL-signing source.
            let registry = match toml::from_str::<ConfigFile>(CONFIG) {
                Ok(config) => config
                    .resolve_with(&Policy::aws(false), &secrets)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let registry = match registry {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("the fuzz config does not resolve: {e}");
                    return out;
                }
            };
            for id in ["github", "stripe", "square", "twilio"] {
                if let Ok(Some(s)) = registry.source(id).await {
                    out.insert(id.to_owned(), s);
                }
            }
            out
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let sources = sources();
    assert_eq!(sources.len(), 4, "the fuzz config must resolve");
    let Ok(mut request) = serde_json::from_slice::<ApiGatewayV2httpRequest>(data) else {
        return;
    };
    match map_request(&mut request) {
        Ok(Mapped::Delivery(input)) => {
            // An unknown source would be a 404 before verification: try
            // the request on one that exists instead.
            let source = sources.get(&input.source).unwrap_or(&sources["square"]);
            let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let target = input.sent_to.target();
            let _ = verify_and_build(source, input.headers, input.body, target, now);
        }
        // Answered by the challenge step, which reads the source's config.
        Ok(Mapped::Check(_)) => {}
        Err(e) => assert!(matches!(e.status(), 400 | 404), "{e:?}"),
    }
});
