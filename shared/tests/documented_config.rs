//! The chat examples in README.md and examples/sluice.toml load: their
//! formats parse and their templates compile.

use std::path::Path;

use sluice::config::ConfigFile;

const SOURCES: &str = r#"
[[sources]]
id = "github"
provider = "github"
secrets = ["env:GITHUB_SECRET"]

[[sources]]
id = "stripe"
provider = "stripe"
secrets = ["env:STRIPE_SECRET"]
"#;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[test]
fn readme_chat_examples_load() {
    let readme = read("README.md");
    let section = readme
        .split("### Chat destinations")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Chat destinations section");
    let blocks: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .collect();
    assert!(blocks.len() >= 2, "{blocks:?}");
    for block in blocks {
        let config = format!("{SOURCES}\n{block}");
        if let Err(e) = ConfigFile::parse(&config) {
            panic!("{e}\n{block}");
        }
    }
}

#[test]
fn example_config_loads_with_its_chat_subscription_uncommented() {
    let example = read("examples/sluice.toml");
    ConfigFile::parse(&example).unwrap();
    let (head, chat) = example
        .split_once("# [[subscriptions]]")
        .expect("examples/sluice.toml has a commented chat subscription");
    let uncommented: String = std::iter::once("[[subscriptions]]")
        .chain(chat.lines().map(|l| l.strip_prefix("# ").unwrap_or(l)))
        .collect::<Vec<_>>()
        .join("\n");
    let config = format!("{head}\n{uncommented}\n");
    let parsed = ConfigFile::parse(&config).unwrap_or_else(|e| panic!("{e}\n{config}"));
    assert!(parsed.subscriptions.iter().any(|s| s.id == "team-chat"));
}

#[test]
fn readme_poller_examples_load() {
    let readme = read("README.md");
    let section = readme
        .split("\n## Apps without webhooks")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has an Apps without webhooks section");
    let blocks: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .collect();
    assert_eq!(blocks.len(), 2, "a JSON API and a feed: {blocks:?}");
    for block in blocks {
        let parsed = ConfigFile::parse(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        assert_eq!(parsed.pollers.len(), 1, "{block}");
        assert_eq!(parsed.subscriptions[0].source, parsed.pollers[0].id);
    }
}

/// The README's provider table is the one the presets generate
/// (`sluice providers --markdown`): one row per preset, in the order of
/// `Provider::ALL`, with each preset's replay window.
#[test]
fn readme_provider_table_is_generated_from_the_presets() {
    let readme = read("README.md");
    let table = readme
        .split("### Providers\n\n")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .expect("README has a Providers table");
    let generated = sluice::verify::catalogue::markdown_table();
    assert!(
        table == generated.trim_end(),
        "the README's provider table is stale: paste `sluice providers --markdown` under `### Providers`"
    );
    let rows = table.lines().skip(2).count();
    assert_eq!(rows, sluice::verify::Provider::ALL.len());
}

/// The source examples of the README's Providers section (the generic
/// schemes, Meta's verify_token, a public_url) load and resolve: each
/// builds its verifier, with a value for every secret it names.
#[test]
fn readme_source_examples_resolve() {
    let readme = read("README.md");
    let section = readme
        .split("### Providers")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("README has a Providers section");
    let blocks: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .filter(|b| b.contains("[[sources]]"))
        .collect();
    assert!(blocks.len() >= 4, "{blocks:?}");
    for block in blocks {
        let config = ConfigFile::parse(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        let values: std::collections::HashMap<String, String> = block
            .split("env:")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(|name| (name.to_owned(), "documented-secret".to_owned()))
            .collect();
        let secrets = EmptyDatabase(sluice::secrets::EnvSecrets::from_map(values));
        let registry = futures::executor::block_on(config.resolve(&secrets))
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
        // A `db:` reference, empty here, is one a handshake fills (Asana).
        for s in &config.sources {
            let source =
                futures::executor::block_on(sluice::config::Registry::source(&registry, &s.id))
                    .unwrap()
                    .unwrap();
            let in_db = s.secrets.iter().any(|r| r.to_string().starts_with("db:"));
            assert_eq!(source.awaits_handshake(), in_db, "{block}");
        }
    }
}

/// The embedded gateway's database before any secret is kept in it: every
/// `db:` reference is not found; the rest resolve from the environment.
struct EmptyDatabase(sluice::secrets::EnvSecrets);

#[async_trait::async_trait]
impl sluice::secrets::SecretResolver for EmptyDatabase {
    async fn resolve(
        &self,
        reference: &sluice::secrets::SecretRef,
    ) -> Result<sluice::secrets::Secret, sluice::secrets::SecretError> {
        match reference {
            sluice::secrets::SecretRef::Db(_) => {
                Err(sluice::secrets::SecretError::NotFound(reference.clone()))
            }
            _ => self.0.resolve(reference).await,
        }
    }
}
