//! Pollers' state for the admin API's views, and "poll now"
//! (`POST /admin/pollers/{id}/run`).

use std::collections::HashMap;
use std::time::SystemTime;

use serde::Deserialize;
use utoipa::ToSchema;

use super::config_ops::Reply;
use super::input::{json_body, rfc3339};
use super::ports::{ConfigItem, Kind};
use super::{Admin, AdminError};
use crate::poll::engine::{PollOutcome, PollPorts, Trigger, poll};
use crate::poll::state::StoredPoller;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PollRunRequest)]
pub(super) struct RunInput {
    /// Fetch and report what would be emitted; commit and store nothing.
    #[serde(default)]
    #[schema(default = false)]
    dry_run: bool,
}

impl Admin {
    /// Every poller's state, by id.
    pub(crate) async fn poller_states(&self) -> Result<HashMap<String, StoredPoller>, AdminError> {
        Ok(self
            .ports
            .pollers
            .states
            .list()
            .await?
            .into_iter()
            .collect())
    }

    pub(crate) async fn poller_state(&self, id: &str) -> Result<Option<StoredPoller>, AdminError> {
        Ok(self.ports.pollers.states.get(id).await?)
    }

    /// Poll now, due or not: 200 with the poll's report (also when the
    /// app failed: the report says how), 409 when another runner is
    /// polling it or it is disabled (a dry run may test a disabled one).
    pub(crate) async fn run_poller(&self, id: &str, body: &[u8]) -> Result<Reply, AdminError> {
        let input: RunInput = json_body(body)?;
        let entry = self.entry(Kind::Poller, id).await?;
        let ConfigItem::Poller(config) = &entry.item else {
            return Err(AdminError::NotFound(format!("poller {id:?}")));
        };
        if !entry.enabled && !input.dry_run {
            return Err(AdminError::Conflict(format!(
                "poller {id:?} is disabled; enable it first, or send {{\"dry_run\": true}}"
            )));
        }
        let pollers = &self.ports.pollers;
        let ports = PollPorts {
            states: pollers.states.as_ref(),
            store: pollers.store.as_ref(),
            fetch: pollers.fetch.as_ref(),
            secrets: self.ports.secrets.as_ref(),
            notify: !input.dry_run && crate::notify::wanted(self.ports.registry.as_ref()).await,
        };
        let trigger = if input.dry_run {
            Trigger::DryRun
        } else {
            Trigger::Now
        };
        // Boxed: a poll's future is large, and it would otherwise be part
        // of every admin request's future (and stack).
        let report = Box::pin(poll(
            config,
            &self.ports.policy,
            &ports,
            SystemTime::now(),
            trigger,
        ))
        .await;
        match &report.outcome {
            PollOutcome::Busy { until_ms } => Err(AdminError::Conflict(format!(
                "poller {id:?} is being polled by another runner (claimed until {}); try again then",
                rfc3339(*until_ms)
            ))),
            PollOutcome::Unavailable { error } => {
                Err(crate::error::Unavailable::new(error.clone()).into())
            }
            _ => Reply::json(200, &report),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::routing::get;
    use http::Method;
    use serde_json::{Value, json};

    use super::super::tests::{Fixture, fixture};
    use crate::model::EventKey;
    use crate::poll::state::{PollLease, PollerStates};

    /// An app on 127.0.0.1 listing `items` (newest first).
    async fn app(items: Arc<Mutex<Vec<Value>>>) -> String {
        let router = axum::Router::new().route(
            "/items",
            get(move || {
                let items = items.clone();
                async move { axum::Json(items.lock().unwrap().clone()) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}/items")
    }

    async fn local_poller(f: &Fixture, url: &str) {
        let (s, v) = f
            .call(
                Method::POST,
                "/admin/pollers",
                json!({"id": "app", "url": url, "item_id": "/id", "allow_local": true}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    #[tokio::test]
    async fn run_polls_now_and_the_state_shows_in_the_views() {
        let f = fixture().await;
        let items = Arc::new(Mutex::new(vec![json!({"id": "1"})]));
        let url = app(items.clone()).await;
        local_poller(&f, &url).await;
        let (_, v) = f.call(Method::GET, "/admin/pollers/app", Value::Null).await;
        assert_eq!(v["state"], Value::Null, "never polled: {v}");

        let (s, v) = f
            .call(Method::POST, "/admin/pollers/app/run", Value::Null)
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["result"], "primed");
        assert_eq!(v["recorded"], 1);

        items.lock().unwrap().insert(0, json!({"id": "2"}));
        let (s, v) = f
            .call(
                Method::POST,
                "/admin/pollers/app/run",
                json!({"dry_run": true}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["dry_run"].clone(), v["emitted"].clone()),
            (json!(true), json!([{"id": "2", "event_type": "item"}]))
        );
        assert!(
            f.poll_store.events.lock().unwrap().is_empty(),
            "a dry run commits nothing"
        );

        let (s, v) = f
            .call(Method::POST, "/admin/pollers/app/run", Value::Null)
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["result"], "polled");
        assert!(
            f.poll_store
                .events
                .lock()
                .unwrap()
                .contains_key(&EventKey::new("app", "2"))
        );

        let (_, v) = f.call(Method::GET, "/admin/pollers", Value::Null).await;
        let state = &v["pollers"][0]["state"];
        assert_eq!(state["last_result"], "polled", "{v}");
        assert_eq!(state["emitted_total"], 1);
        assert_eq!(state["last_error"], Value::Null);
        assert!(state["next_poll_at"].is_string());

        let (s, _) = f
            .call(Method::DELETE, "/admin/pollers/app", Value::Null)
            .await;
        assert_eq!(s, 204);
        assert!(
            f.poll_states.polls.lock().unwrap().is_empty(),
            "its state went with it"
        );
    }

    #[tokio::test]
    async fn run_refuses_a_disabled_or_busy_poller_and_an_unknown_one() {
        let f = fixture().await;
        let url = app(Arc::new(Mutex::new(vec![]))).await;
        local_poller(&f, &url).await;
        let (s, _) = f
            .call(Method::POST, "/admin/pollers/nope/run", Value::Null)
            .await;
        assert_eq!(s, 404);

        f.call(Method::POST, "/admin/pollers/app/disable", Value::Null)
            .await;
        let (s, v) = f
            .call(Method::POST, "/admin/pollers/app/run", Value::Null)
            .await;
        assert_eq!(s, 409, "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("is disabled"),
            "{v}"
        );
        let (s, v) = f
            .call(
                Method::POST,
                "/admin/pollers/app/run",
                json!({"dry_run": true}),
            )
            .await;
        assert_eq!(s, 200, "a dry run may test a disabled poller: {v}");
        f.call(Method::POST, "/admin/pollers/app/enable", Value::Null)
            .await;

        f.poll_states
            .claim(
                "app",
                &PollLease::new(crate::time::now_ms()),
                crate::time::now_ms(),
                true,
            )
            .await
            .unwrap();
        let (s, v) = f
            .call(Method::POST, "/admin/pollers/app/run", Value::Null)
            .await;
        assert_eq!(s, 409, "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("being polled"),
            "{v}"
        );
        let (_, v) = f.call(Method::GET, "/admin/pollers/app", Value::Null).await;
        assert!(v["state"]["polling_until"].is_string(), "{v}");
    }
}
