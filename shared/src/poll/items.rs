//! One page of a polled app, read into items: a JSON array found by
//! pointers, or the entries of an RSS or Atom feed (parsed by feed-rs),
//! and the page's `Link: rel="next"`.

use bytes::Bytes;
use http::HeaderMap;
use http::header::LINK;
use serde_json::{Value, json};
use url::Url;

use super::config::{PollFormat, Poller, TypeSource};
use crate::pipeline::receive::MAX_EVENT_ID_BYTES;

/// One item of a page: what becomes an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub event_type: String,
    /// The item's time as it had it (`since_param` sends it back), and in
    /// milliseconds when it reads as a time (the emit order).
    pub timestamp: Option<(String, Option<i64>)>,
    /// The item as JSON: the event's body.
    pub body: Bytes,
}

/// A page's items, and why any item was left out.
#[derive(Debug, Default)]
pub struct PageItems {
    pub items: Vec<Item>,
    pub skipped: Vec<String>,
}

/// Why a page could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("the response is not JSON: {0}")]
    NotJson(String),
    #[error("nothing at items pointer {0:?}")]
    NoItems(String),
    #[error("items pointer {0:?} is not an array")]
    NotAnArray(String),
    #[error("the response is not an RSS or Atom feed: {0}")]
    NotAFeed(String),
}

/// Read `body` as the poller's format says.
pub fn read_page(poller: &Poller, body: &[u8]) -> Result<PageItems, PageError> {
    match poller.format {
        PollFormat::Json => json_items(poller, body),
        PollFormat::Feed => feed_items(poller, body),
    }
}

fn json_items(poller: &Poller, body: &[u8]) -> Result<PageItems, PageError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| PageError::NotJson(e.to_string()))?;
    let pointer = poller.items.as_deref().unwrap_or("");
    let list = doc
        .pointer(pointer)
        .ok_or_else(|| PageError::NoItems(pointer.to_owned()))?
        .as_array()
        .ok_or_else(|| PageError::NotAnArray(pointer.to_owned()))?;
    let id_pointer = poller.item_id.as_deref().unwrap_or("/id");
    let mut page = PageItems::default();
    for (n, value) in list.iter().enumerate() {
        match json_item(poller, id_pointer, value) {
            Ok(item) => page.items.push(item),
            Err(why) => page.skipped.push(format!("item {n}: {why}")),
        }
    }
    Ok(page)
}

fn json_item(poller: &Poller, id_pointer: &str, value: &Value) -> Result<Item, String> {
    let id = value
        .pointer(id_pointer)
        .and_then(scalar_text)
        .ok_or_else(|| format!("no id (a string or a number) at {id_pointer:?}"))?;
    let event_type = match &poller.event_type {
        TypeSource::Fixed(t) => t.clone(),
        TypeSource::Pointer(p) => value.pointer(p).and_then(scalar_text).unwrap_or_default(),
    };
    let timestamp = poller
        .timestamp
        .as_deref()
        .and_then(|p| value.pointer(p))
        .and_then(|v| Some((scalar_text(v)?, time_ms(v))));
    item(poller, id, event_type, timestamp, value)
}

/// The checks every item passes, whatever its format.
fn item(
    poller: &Poller,
    id: String,
    event_type: String,
    timestamp: Option<(String, Option<i64>)>,
    value: &Value,
) -> Result<Item, String> {
    if id.is_empty() {
        return Err("its id is empty".into());
    }
    if id.len() > MAX_EVENT_ID_BYTES {
        return Err(format!(
            "its id is {} bytes, over the limit of {MAX_EVENT_ID_BYTES}",
            id.len()
        ));
    }
    let body = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    if body.len() > poller.max_item_bytes {
        return Err(format!(
            "item {id:?} is {} bytes, over the event limit of {}",
            body.len(),
            poller.max_item_bytes
        ));
    }
    Ok(Item {
        id,
        event_type,
        timestamp,
        body: Bytes::from(body),
    })
}

/// A string as itself, a number in its JSON form; nothing else is an id.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An RFC 3339 string, or a number of Unix seconds (milliseconds when it
/// is that large), as Unix milliseconds.
fn time_ms(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        Value::Number(n) => {
            let x = n.as_f64()?;
            // Past 1e11 seconds (year 5138) it can only be milliseconds.
            let ms = if x.abs() >= 1e11 { x } else { x * 1000.0 };
            ms.is_finite().then_some(ms as i64)
        }
        _ => None,
    }
}

fn feed_items(poller: &Poller, body: &[u8]) -> Result<PageItems, PageError> {
    // An entry without an id is known by its first link; feed-rs would
    // otherwise make up a random one, new on every poll.
    let feed = feed_rs::parser::Builder::new()
        .id_generator(|links, _title, _uri| {
            links.first().map(|l| l.href.clone()).unwrap_or_default()
        })
        .build()
        .parse(body)
        .map_err(|e| PageError::NotAFeed(e.to_string()))?;
    let feed_title = feed.title.as_ref().map(|t| t.content.clone());
    let mut page = PageItems::default();
    for (n, entry) in feed.entries.iter().enumerate() {
        let time = entry.published.or(entry.updated);
        let value = json!({
            "id": entry.id,
            "title": entry.title.as_ref().map(|t| &t.content),
            "link": entry.links.first().map(|l| &l.href),
            "links": entry.links.iter().map(|l| &l.href).collect::<Vec<_>>(),
            "summary": entry.summary.as_ref().map(|t| &t.content),
            "content": entry.content.as_ref().and_then(|c| c.body.as_ref()),
            "published": entry.published.map(|t| t.to_rfc3339()),
            "updated": entry.updated.map(|t| t.to_rfc3339()),
            "authors": entry.authors.iter().filter_map(|p| p.name.as_ref()).collect::<Vec<_>>(),
            "categories": entry.categories.iter().map(|c| &c.term).collect::<Vec<_>>(),
            "feed": { "title": feed_title },
        });
        let event_type = match &poller.event_type {
            TypeSource::Fixed(t) => t.clone(),
            TypeSource::Pointer(p) => value.pointer(p).and_then(scalar_text).unwrap_or_default(),
        };
        let timestamp = time.map(|t| (t.to_rfc3339(), Some(t.timestamp_millis())));
        match item(poller, entry.id.clone(), event_type, timestamp, &value) {
            Ok(item) => page.items.push(item),
            Err(why) => page.skipped.push(format!("entry {n}: {why}")),
        }
    }
    Ok(page)
}

/// The page's `Link: <…>; rel="next"`, resolved against `current`. A next
/// page on another origin is refused: the poller's credentials go with
/// every page.
pub fn next_page(current: &Url, headers: &HeaderMap) -> Result<Option<Url>, String> {
    for value in headers.get_all(LINK) {
        let Ok(text) = value.to_str() else { continue };
        let Ok(links) = parse_link_header::parse_with_rel(text) else {
            continue;
        };
        let Some(next) = links.get("next") else {
            continue;
        };
        let url = current
            .join(&next.raw_uri)
            .map_err(|e| format!("the next-page link is not a URL: {e}"))?;
        if url.origin() != current.origin() {
            return Err(format!(
                "the next-page link leaves {} (the poller's headers would go with it)",
                current.origin().ascii_serialization()
            ));
        }
        return Ok(Some(url));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::config::Policy;
    use crate::poll::config::{PollerConfig, resolve_poller};
    use crate::secrets::EnvSecrets;

    async fn poller(extra: &str) -> Poller {
        let text = format!("id = \"p\"\nurl = \"https://app.example/items\"\n{extra}");
        let config: PollerConfig = toml::from_str(&text).expect("toml");
        resolve_poller(&config, &Policy::EMBEDDED, &EnvSecrets::default())
            .await
            .expect("resolves")
    }

    #[tokio::test]
    async fn json_items_by_pointer_with_numbers_as_ids() {
        let p =
            poller("items = \"/data\"\nitem_id = \"/id\"\ntype = \"/kind\"\ntimestamp = \"/at\"\n")
                .await;
        let body = br#"{"data":[{"id":7,"kind":"push","at":"2026-01-02T03:04:05Z"},{"id":"b","at":1700000000},{"name":"no id"}]}"#;
        let page = read_page(&p, body).expect("page");
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[0].id, "7");
        assert_eq!(page.items[0].event_type, "push");
        assert_eq!(
            page.items[0].timestamp,
            Some(("2026-01-02T03:04:05Z".into(), Some(1_767_323_045_000)))
        );
        assert_eq!(
            &page.items[0].body[..],
            br#"{"at":"2026-01-02T03:04:05Z","id":7,"kind":"push"}"#
        );
        assert_eq!(
            page.items[1].event_type, "",
            "a missing type field is empty"
        );
        assert_eq!(
            page.items[1].timestamp,
            Some(("1700000000".into(), Some(1_700_000_000_000)))
        );
        assert_eq!(
            page.skipped,
            vec!["item 2: no id (a string or a number) at \"/id\"".to_owned()]
        );
    }

    #[tokio::test]
    async fn a_page_that_is_not_a_list_is_an_error() {
        let p = poller("item_id = \"/id\"\nitems = \"/data\"\n").await;
        assert_eq!(
            read_page(&p, b"{\"data\":{}}").unwrap_err(),
            PageError::NotAnArray("/data".into())
        );
        assert_eq!(
            read_page(&p, b"{}").unwrap_err(),
            PageError::NoItems("/data".into())
        );
        assert!(matches!(
            read_page(&p, b"<html>").unwrap_err(),
            PageError::NotJson(_)
        ));
    }

    #[tokio::test]
    async fn an_oversized_item_or_id_is_skipped_not_fatal() {
        let p = poller("item_id = \"/id\"\n").await;
        let long_id = "x".repeat(MAX_EVENT_ID_BYTES + 1);
        let big = "y".repeat(p.max_item_bytes);
        let body =
            serde_json::to_vec(&json!([{"id": long_id}, {"id": "big", "pad": big}, {"id": "ok"}]))
                .expect("json");
        let page = read_page(&p, &body).expect("page");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id, "ok");
        assert_eq!(page.skipped.len(), 2);
    }

    const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>
<item><guid>g-2</guid><title>Second</title><link>https://news.example/2</link><pubDate>Tue, 02 Jan 2024 10:00:00 GMT</pubDate></item>
<item><title>First</title><link>https://news.example/1</link><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item>
<item><title>Nothing to know it by</title></item>
</channel></rss>"#;

    #[tokio::test]
    async fn rss_entries_by_guid_else_link() {
        let p = poller("format = \"feed\"\n").await;
        let page = read_page(&p, RSS.as_bytes()).expect("feed");
        let ids: Vec<_> = page.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["g-2", "https://news.example/1"]);
        assert_eq!(page.items[0].event_type, "entry");
        let body: Value = serde_json::from_slice(&page.items[0].body).expect("json");
        assert_eq!(body["title"], "Second");
        assert_eq!(body["link"], "https://news.example/2");
        assert_eq!(body["feed"]["title"], "News");
        assert_eq!(
            page.items[1].timestamp.as_ref().and_then(|t| t.1),
            Some(1_704_103_200_000)
        );
        assert_eq!(page.skipped, vec!["entry 2: its id is empty".to_owned()]);
        // The same bytes give the same ids: nothing random.
        let again = read_page(&p, RSS.as_bytes()).expect("feed");
        assert_eq!(again.items, page.items);
    }

    #[tokio::test]
    async fn atom_entries() {
        let p = poller("format = \"feed\"\ntype = \"release\"\n").await;
        let atom = r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Releases</title><id>urn:f</id><updated>2024-01-02T00:00:00Z</updated>
<entry><id>urn:e:1</id><title>v1.0</title><updated>2024-01-02T00:00:00Z</updated><link href="https://rel.example/1"/><summary>First release</summary></entry></feed>"#;
        let page = read_page(&p, atom.as_bytes()).expect("atom");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id, "urn:e:1");
        assert_eq!(page.items[0].event_type, "release");
        let body: Value = serde_json::from_slice(&page.items[0].body).expect("json");
        assert_eq!(body["summary"], "First release");
        assert!(matches!(
            read_page(&p, b"{}").unwrap_err(),
            PageError::NotAFeed(_)
        ));
    }

    #[test]
    fn next_page_link_same_origin_only() {
        let current = Url::parse("https://api.example/items?page=1").expect("url");
        let mut headers = HeaderMap::new();
        assert_eq!(next_page(&current, &headers), Ok(None));
        headers.insert(
            LINK,
            HeaderValue::from_static(
                r#"<https://api.example/items?page=1>; rel="prev", </items?page=2>; rel="next""#,
            ),
        );
        assert_eq!(
            next_page(&current, &headers),
            Ok(Some(
                Url::parse("https://api.example/items?page=2").expect("url")
            ))
        );
        headers.insert(
            LINK,
            HeaderValue::from_static(r#"<https://evil.example/steal>; rel="next""#),
        );
        assert!(
            next_page(&current, &headers)
                .unwrap_err()
                .contains("leaves https://api.example")
        );
    }
}
