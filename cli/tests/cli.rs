//! The `sluice` operator CLI as a real process, against a running gateway
//! on the same database, with a real HTTP destination on 127.0.0.1.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sluice_tests::{
    Harness, ListApp, Running, ServeProcess, Sink, eventually, github_headers,
    standard_webhooks_valid,
};

const GH_SECRET: &str = "gh-secret-for-cli-tests";
const WAIT: Duration = Duration::from_secs(20);

/// What one run of the binary did.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    /// A failure: the documented exit code and one `sluice: …` line.
    fn fails(self, code: i32) -> Self {
        assert_eq!(self.code, code, "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:?}");
        assert!(lines[0].starts_with("sluice: "), "{self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        self
    }
}

struct Sluice {
    db: PathBuf,
    env_file: PathBuf,
}

impl Sluice {
    fn of(h: &Harness) -> Self {
        Self {
            db: h.db_path(),
            env_file: h.opts.env_file.clone(),
        }
    }

    /// Run `sluice --db … --env-file … ARGS` with no terminal on stdin.
    async fn run(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.arg("--db")
            .arg(&self.db)
            .arg("--env-file")
            .arg(&self.env_file)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// `sources add github`, verifying with the harness's GH_SECRET.
    async fn add_github_source(&self) {
        self.run(&[
            "sources",
            "add",
            "github",
            "--provider",
            "github",
            "--secret",
            "env:GH_SECRET",
        ])
        .await
        .ok();
    }

    /// Run until `cond` holds for the JSON it prints.
    async fn until(&self, args: &[&str], what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let out = self.run(args).await.ok();
            let v = out.json();
            if cond(&v) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn harness() -> Harness {
    // The gateway starts with no sources: the CLI registers them.
    let mut h = Harness::new("", &[("GH_SECRET", GH_SECRET)]);
    // These tests are about the commands: the gateway never polls the
    // pollers they create (tests/tests/pollers.rs polls).
    h.opts.runtime.poll_tick = Duration::from_secs(24 * 3600);
    h
}

/// Post a signed push until the gateway (which notices config written by
/// another process within 2 s) accepts it.
async fn send_push(gw: &Running, delivery: &str, body: &[u8]) {
    let headers = github_headers(GH_SECRET, delivery, "push", body);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, reply) = gw.post("github", &headers, body).await;
        if status == 200 {
            assert_eq!(reply["status"], "accepted", "{reply}");
            return;
        }
        assert_eq!(status, 404, "{reply}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "source never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn delivery<'a>(event: &'a Value, sub: &str) -> &'a Value {
    event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["subscription"] == sub)
        .unwrap_or_else(|| panic!("no delivery to {sub}: {event}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operate_a_running_gateway_register_inspect_fail_replay_redrive() {
    let sink = Sink::start(200).await;
    let h = harness();
    let gw = h.start().await;
    let cli = Sluice::of(&h);

    // Register a source and a subscription; the signing secret is shown once.
    cli.add_github_source().await;
    // Asana's source waits for the handshake that brings its secret.
    let asana = cli
        .run(&[
            "sources",
            "add",
            "asana",
            "--provider",
            "asana",
            "--secret",
            "db:asana-hook",
        ])
        .await
        .ok();
    let handshake = asana.stdout.lines().find(|l| l.starts_with("handshake:"));
    assert_eq!(
        handshake.map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["handshake:", "awaiting"]),
        "{asana:?}"
    );
    let github = cli.run(&["sources", "show", "github"]).await.ok();
    assert!(!github.stdout.contains("handshake"), "{github:?}");
    let created = cli
        .run(&[
            "subscriptions",
            "add",
            "--id",
            "deploys",
            "--source",
            "github",
            "--url",
            &sink.url(),
            "--events",
            "push",
            "--retry-schedule",
            "100ms,100ms",
            "--allow-local",
            "--json",
        ])
        .await
        .ok()
        .json();
    let whsec = created["signing_secret"].as_str().unwrap().to_owned();
    assert!(whsec.starts_with("whsec_"), "{created}");
    let listed = cli.run(&["subscriptions", "list"]).await.ok();
    assert!(listed.stdout.starts_with("ID "), "{listed:?}");
    assert!(listed.stdout.contains("deploys"), "{listed:?}");
    assert!(!listed.stdout.contains(&whsec), "shown once only");
    let shown = cli
        .run(&["subscriptions", "show", "deploys", "--json"])
        .await
        .ok();
    assert!(!shown.stdout.contains("whsec_"), "{shown:?}");

    // A signed webhook is delivered, signed with that secret.
    let body = br#"{"ref":"refs/heads/main","n":1}"#;
    send_push(&gw, "d-1", body).await;
    eventually(WAIT, "first delivery", || sink.count() == 1).await;
    let got = &sink.received()[0];
    assert!(standard_webhooks_valid(&whsec, &got.headers, &got.body));

    let events = cli
        .until(&["events", "list", "--json"], "d-1 delivered", |v| {
            v["events"][0]["status"] == "delivered"
        })
        .await;
    assert_eq!(events["events"][0]["id"], "github#d-1");
    let table = cli
        .run(&["events", "list", "--source", "github"])
        .await
        .ok();
    let row = table.stdout.lines().nth(1).unwrap();
    assert!(
        row.starts_with("github#d-1 ") && row.contains("delivered"),
        "{table:?}"
    );

    let shown = cli.run(&["events", "show", "github#d-1"]).await.ok();
    assert!(shown.stdout.contains("x-github-delivery: d-1"), "{shown:?}");
    assert!(
        shown.stdout.contains(r#""ref":"refs/heads/main""#),
        "{shown:?}"
    );
    let row = shown
        .stdout
        .lines()
        .find(|l| l.starts_with("deploys "))
        .unwrap();
    assert!(row.contains("delivered") && row.contains(" 200 "), "{row}");

    // The destination fails: three attempts, then a dead letter.
    sink.set_default(500);
    send_push(&gw, "d-2", br#"{"n":2}"#).await;
    let dlq = cli
        .until(&["dlq", "list", "--json"], "a dead letter", |v| {
            v["dead_letters"].as_array().is_some_and(|d| d.len() == 1)
        })
        .await;
    assert_eq!(dlq["dead_letters"][0]["event"], "github#d-2");
    let failed = cli
        .until(
            &["events", "show", "github#d-2", "--json"],
            "d-2 failed",
            |v| v["status"] == "failed",
        )
        .await;
    let d = delivery(&failed, "deploys");
    assert_eq!(d["attempts"]["total"], 3, "{d}");
    assert_eq!(d["attempts"]["failed"], 3, "{d}");
    assert_eq!(d["attempts"]["succeeded"], 0, "{d}");
    assert_eq!(d["last_attempt"]["status_code"], 500, "{d}");
    assert!(d["last_attempt"]["latency_ms"].is_u64(), "{d}");
    let filtered = cli
        .run(&["events", "list", "--status", "failed", "--json"])
        .await
        .ok()
        .json();
    let ids: Vec<&Value> = filtered["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(ids, vec!["github#d-2"]);

    // It recovers; a replay written by this other process is delivered by
    // the running gateway.
    sink.set_default(200);
    let replay = cli.run(&["replay", "github#d-2"]).await.ok();
    assert!(
        replay
            .stdout
            .starts_with("queued replay github#d-2#replay-1 of github#d-2"),
        "{replay:?}"
    );
    eventually(WAIT, "the replay delivered", || {
        sink.successes()
            .iter()
            .any(|r| &r.body[..] == br#"{"n":2}"#)
    })
    .await;
    cli.until(
        &["dlq", "list", "--json"],
        "the replay settles the dead letter",
        |v| v["dead_letters"].as_array().is_some_and(Vec::is_empty),
    )
    .await;

    // Another failure, listed by a bulk dry run, then redriven from the DLQ.
    sink.set_default(503);
    send_push(&gw, "d-3", br#"{"n":3}"#).await;
    let dlq = cli
        .until(&["dlq", "list", "--json"], "d-3 dead-lettered", |v| {
            v["dead_letters"].as_array().is_some_and(|d| d.len() == 1)
        })
        .await;
    assert_eq!(dlq["dead_letters"][0]["event"], "github#d-3");
    let preview = cli
        .run(&["replay", "--status", "failed", "--dry-run", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(preview["replayed"], 1, "{preview}");
    assert_eq!(preview["replays"][0]["event"], "github#d-3", "{preview}");
    // By id, as a dry run: counted, nothing moves.
    let id = dlq["dead_letters"][0]["id"].as_str().unwrap().to_owned();
    let dry = cli
        .run(&["dlq", "redrive", &id, "--dry-run", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(dry["redriven"], 1, "{dry}");
    let still = cli.run(&["dlq", "list", "--json"]).await.ok().json();
    assert_eq!(still["dead_letters"][0]["id"], id.as_str());
    sink.set_default(200);
    let redrive = cli
        .run(&["dlq", "redrive", "--all", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(redrive["redriven"], 1, "{redrive}");
    eventually(WAIT, "the redrive delivered", || {
        sink.successes()
            .iter()
            .any(|r| &r.body[..] == br#"{"n":3}"#)
    })
    .await;
    let table = cli.run(&["dlq", "list"]).await.ok();
    assert_eq!(table.stdout, "no dead letters\n");
    // Nothing failed is left un-replayed: a bulk replay finds nothing again.
    let again = cli
        .run(&["replay", "--status", "failed", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(again["replayed"], 0, "{again}");

    // Refusals: one line, the documented code, nothing changed.
    cli.run(&["sources", "rm", "github"]).await.fails(1);
    cli.run(&["events", "show", "github#nope"]).await.fails(1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_shows_the_diff_applies_once_and_then_has_nothing_to_do() {
    let sink = Sink::start(200).await;
    let h = harness();
    let gw = h.start().await;
    let cli = Sluice::of(&h);
    let file = h.dir.path().join("more.toml");
    let write = |events: &str| {
        std::fs::write(
            &file,
            format!(
                r#"
[[sources]]
id = "github"
provider = "github"
secrets = ["env:GH_SECRET"]

[[pollers]]
id = "feed"
url = "https://example.com/feed.xml"
format = "feed"

[[subscriptions]]
id = "all"
source = "github"
events = [{events}]
url = "{}"
allow_local = true
"#,
                sink.url()
            ),
        )
        .unwrap();
    };
    write(r#""push""#);
    let path = file.to_str().unwrap();

    let dry = cli.run(&["apply", path, "--dry-run"]).await.ok();
    assert!(dry.stdout.contains("+ source github"), "{dry:?}");
    assert!(dry.stdout.contains("+ subscription all"), "{dry:?}");
    assert!(dry.stdout.contains("+ poller feed"), "{dry:?}");
    // Without a terminal and without --yes: refused, nothing written.
    cli.run(&["apply", path]).await.fails(2);
    let none = cli.run(&["sources", "list", "--json"]).await.ok().json();
    assert_eq!(none["sources"], Value::Array(vec![]));

    let applied = cli
        .run(&["apply", path, "--yes", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(applied["applied"], true);
    assert_eq!(applied["create"].as_array().unwrap().len(), 3, "{applied}");
    let again = cli.run(&["apply", path, "--yes"]).await.ok();
    assert_eq!(again.stdout, "no changes (3 unchanged)\n");
    let pollers = cli.run(&["pollers", "list", "--json"]).await.ok().json();
    assert_eq!(pollers["pollers"][0]["origin"], "file", "{pollers}");
    let again = cli
        .run(&["apply", path, "--yes", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(again["applied"], false);
    assert!(again["create"].as_array().unwrap().is_empty());
    assert!(again["update"].as_array().unwrap().is_empty());
    assert!(again["delete"].as_array().unwrap().is_empty());

    // A change shows field by field; the running gateway serves the result.
    write(r#""push", "issues""#);
    let diff = cli.run(&["apply", path, "--yes"]).await.ok();
    assert!(diff.stdout.contains("~ subscription all"), "{diff:?}");
    assert!(
        diff.stdout
            .contains(r#"events: ["push"] -> ["push","issues"]"#),
        "{diff:?}"
    );
    send_push(&gw, "a-1", b"{}").await;
    eventually(WAIT, "delivery of the applied config", || sink.count() == 1).await;

    // A file that does not parse, or names a secret that does not resolve.
    std::fs::write(&file, "[[sources]]\nid = 3\n").unwrap();
    cli.run(&["apply", path, "--yes"]).await.fails(2);
    write(r#""push""#);
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("env:GH_SECRET", "env:NOT_SET");
    std::fs::write(&file, text).unwrap();
    let out = cli.run(&["apply", path, "--yes"]).await.fails(2);
    assert!(out.stderr.contains("NOT_SET"), "{out:?}");
    gw.stop().await;
}

/// `sluice pollers …` mirrors `sluice subscriptions …`: add, list (the URL
/// without its query), show, disable, enable, rm; a subscription names a
/// poller as its source, and a webhook to a poller's id stays 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_are_added_listed_shown_disabled_and_removed() {
    let h = harness();
    let gw = h.start().await;
    let cli = Sluice::of(&h);
    let out = cli
        .run(&[
            "pollers",
            "add",
            "--id",
            "items",
            "--url",
            "https://poll.invalid/v1/items?api_key=hush",
            "--item-id",
            "/id",
            "--items",
            "/data",
            "--type",
            "/kind",
            "--interval",
            "5m",
            "--header",
            "Authorization=env:GH_SECRET",
            "--header",
            "Accept=application/json",
            "--max-pages",
            "3",
            "--emit-existing",
        ])
        .await
        .ok();
    assert!(out.stdout.starts_with("created poller\n"), "{out:?}");
    assert!(
        out.stdout.contains("Authorization=env:GH_SECRET"),
        "{out:?}"
    );
    assert!(!out.stdout.contains(GH_SECRET), "never the value: {out:?}");

    let list = cli.run(&["pollers", "list"]).await.ok();
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{list:?}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID", "URL", "INTERVAL", "ENABLED", "LAST", "POLL", "RESULT", "EMITTED", "NEXT",
            "POLL", "LAST", "ERROR"
        ]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row,
        [
            "items",
            "https://poll.invalid/v1/items",
            "5m",
            "yes",
            "-",
            "-",
            "-",
            "-",
            "-"
        ],
        "the URL without its query, never polled: {list:?}"
    );
    let v = cli
        .run(&["pollers", "show", "items", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(v["items"], "/data");
    assert_eq!(v["type"], "/kind");
    assert_eq!(v["max_pages"], 3);
    assert_eq!(v["emit_existing"], true);
    assert_eq!(v["headers"]["Authorization"], "env:GH_SECRET");

    // A subscription on the poller; the poller cannot go while it has one.
    cli.run(&[
        "subscriptions",
        "add",
        "--id",
        "on-items",
        "--source",
        "items",
        "--url",
        "https://example.com/in",
        "--events",
        "*",
    ])
    .await
    .ok();
    let out = cli.run(&["pollers", "rm", "items"]).await.fails(1);
    assert!(out.stderr.contains("on-items"), "{out:?}");
    let (status, _) = gw
        .post(
            "items",
            &github_headers(GH_SECRET, "p-1", "push", b"{}"),
            b"{}",
        )
        .await;
    assert_eq!(status, 404, "a poller is not a webhook source");

    let out = cli.run(&["pollers", "disable", "items"]).await.ok();
    assert_eq!(out.stdout, "poller items disabled\n");
    let v = cli.run(&["pollers", "list", "--json"]).await.ok().json();
    assert_eq!(v["pollers"][0]["enabled"], false);
    cli.run(&["pollers", "enable", "items"]).await.ok();

    // Bad input: 422 (exit 2) naming the field, 409 (exit 1) for a taken id.
    let out = cli
        .run(&[
            "pollers",
            "add",
            "--id",
            "fast",
            "--url",
            "https://api.example.com/x",
            "--item-id",
            "/id",
            "--interval",
            "1s",
        ])
        .await
        .fails(2);
    assert!(out.stderr.contains("interval"), "{out:?}");
    let out = cli
        .run(&[
            "pollers",
            "add",
            "--id",
            "x",
            "--url",
            "https://a.example/",
            "--header",
            "Accept",
        ])
        .await
        .fails(2);
    assert!(out.stderr.contains("NAME=VALUE"), "{out:?}");
    cli.add_github_source().await;
    cli.run(&[
        "pollers",
        "add",
        "--id",
        "github",
        "--url",
        "https://api.example.com/x",
        "--item-id",
        "/id",
    ])
    .await
    .fails(1);

    cli.run(&["subscriptions", "rm", "on-items"]).await.ok();
    let out = cli.run(&["pollers", "rm", "items"]).await.ok();
    assert_eq!(out.stdout, "deleted poller items\n");
    cli.run(&["pollers", "show", "items"]).await.fails(1);
    let out = cli.run(&["pollers", "list"]).await.ok();
    assert_eq!(out.stdout, "no pollers\n");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_line_and_the_documented_exit_code() {
    let h = harness();
    // The database exists once a gateway has opened it.
    h.store();
    let cli = Sluice::of(&h);
    // Usage: a bad value, an unknown flag, a missing argument.
    let out = cli
        .run(&["events", "list", "--status", "bogus"])
        .await
        .fails(2);
    assert!(out.stderr.contains("status"), "{out:?}");
    cli.run(&["events", "list", "--since", "soon"])
        .await
        .fails(2);
    cli.run(&["events", "list", "--bogus"]).await.fails(2);
    let out = cli.run(&["sources", "add", "x"]).await.fails(2);
    assert!(out.stderr.contains("--provider"), "{out:?}");
    cli.run(&["replay"]).await.fails(2);
    cli.run(&["dlq", "redrive"]).await.fails(2);
    // serve is embedded only; an outputs file that is not there.
    cli.run(&["--aws", "serve"]).await.fails(2);
    let nowhere = h.dir.path().join("no-outputs.json");
    let out = cli
        .run(&[
            "--outputs-file",
            nowhere.to_str().unwrap(),
            "--region",
            "us-east-1",
            "events",
            "list",
        ])
        .await
        .fails(2);
    assert!(out.stderr.contains("terraform output -json"), "{out:?}");
    cli.run(&[
        "subscriptions",
        "add",
        "--source",
        "nope",
        "--url",
        "https://example.com/x",
        "--events",
        "push",
    ])
    .await
    .fails(2);
    // Not found.
    cli.run(&["sources", "show", "nope"]).await.fails(1);
    cli.run(&["subscriptions", "rm", "nope"]).await.fails(1);
    // No database there: the backend is unavailable, and none is created.
    let missing = h.dir.path().join("elsewhere.db");
    let other = Sluice {
        db: missing.clone(),
        env_file: h.opts.env_file.clone(),
    };
    other.run(&["events", "list"]).await.fails(3);
    assert!(!missing.exists());
    // An empty listing is still a table (or JSON), exit 0.
    let out = cli.run(&["events", "list"]).await.ok();
    assert_eq!(out.stdout, "no events\n");
    let out = cli.run(&["events", "list", "--json"]).await.ok().json();
    assert_eq!(out["events"], Value::Array(vec![]));
}

/// SIGTERM to `sluice serve` with a client stalled halfway through its
/// headers: the gateway stops accepting, waits `--http-grace` for the
/// connection, drops it, and exits 0. Before, it waited for the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_the_http_grace_despite_a_stalled_client() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let h = harness();
    // The stall is in the headers, which would time out after 30 s.
    let served = ServeProcess::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_sluice")),
        &h,
        &["--http-grace", "1s", "--header-timeout", "30s"],
    );
    let (mut child, addr, log) = (served.child, served.addr, served.log);

    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"POST /hooks/github HTTP/1.1\r\nhost: sluice\r\nx-half")
        .await
        .unwrap();
    // Let the gateway accept it and start reading.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let signalled = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(6) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running 6 s after SIGTERM: {:?}", log.join().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = signalled.elapsed();
    let lines = log.join().unwrap();
    assert!(status.success(), "{status:?}: {lines:?}");
    // The grace was given (the client was not cut at once), then it ended.
    assert!(took >= Duration::from_millis(900), "exited after {took:?}");
    assert!(took < Duration::from_secs(4), "exited after {took:?}");
    assert!(
        lines.iter().any(|l| l.contains("dropped")),
        "the dropped connection is logged: {lines:?}"
    );
    // At start, the open-file limit (raised to the hard one) is logged.
    let limit = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "open-file limit")
        .unwrap_or_else(|| panic!("no open-file limit line: {lines:?}"));
    assert_eq!(limit["soft"], limit["hard"], "{limit}");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(1), stalled.read(&mut buf))
        .await
        .expect("the stalled connection was closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "the stalled client got no response");
}

/// `sluice verify --source github --headers H --body B`.
async fn verify(cli: &Sluice, headers: &std::path::Path, body: &std::path::Path) -> Out {
    let (h, b) = (headers.to_str().unwrap(), body.to_str().unwrap());
    cli.run(&["verify", "--source", "github", "--headers", h, "--body", b])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_says_offline_whether_a_captured_request_verifies_and_why_not() {
    let h = harness();
    h.store();
    let cli = Sluice::of(&h);
    cli.add_github_source().await;
    let dir = h.dir.path();
    let body = br#"{"ref":"refs/heads/main"}"#;
    let write_headers = |name: &str, pairs: &[(String, String)]| {
        // As a proxy log shows them: a request line, then `Name: value`.
        let mut text = String::from("POST /hooks/github HTTP/1.1\r\n");
        for (k, v) in pairs {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let good = write_headers(
        "good.txt",
        &github_headers(GH_SECRET, "cap-1", "push", body),
    );
    let body_file = dir.join("body.json");
    std::fs::write(&body_file, body).unwrap();
    let out = verify(&cli, &good, &body_file).await.ok();
    assert_eq!(out.stdout, "verifies: event id cap-1, type push\n");

    // Another body: no secret matched; the expected tag is never shown.
    let other = dir.join("other.json");
    std::fs::write(&other, b"{}").unwrap();
    let out = verify(&cli, &good, &other).await.fails(1);
    assert!(
        out.stderr
            .contains("signature does not match (invalid_signature)"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains(GH_SECRET) && out.stdout.is_empty(),
        "{out:?}"
    );

    // No signature header: it is named.
    let unsigned: Vec<(String, String)> = github_headers(GH_SECRET, "cap-2", "push", body)
        .into_iter()
        .filter(|(k, _)| k != "x-hub-signature-256")
        .collect();
    let out = verify(&cli, &write_headers("unsigned.txt", &unsigned), &body_file)
        .await
        .fails(1);
    assert!(
        out.stderr.contains("missing header x-hub-signature-256"),
        "{out:?}"
    );

    // --json prints the verdict too; nothing was committed.
    let out = cli
        .run(&[
            "--json",
            "verify",
            "--source",
            "github",
            "--headers",
            good.to_str().unwrap(),
            "--body",
            other.to_str().unwrap(),
        ])
        .await
        .fails(1);
    assert_eq!(out.json()["error"], "invalid_signature");
    let events = cli.run(&["--json", "events", "list"]).await.ok().json();
    assert_eq!(events["events"], serde_json::json!([]));

    // A file that is not headers, or a source that does not exist.
    let junk = dir.join("junk.txt");
    std::fs::write(&junk, "no colon here\n").unwrap();
    let out = verify(&cli, &junk, &body_file).await.fails(2);
    assert!(out.stderr.contains("line 1"), "{out:?}");
    let out = cli
        .run(&[
            "verify",
            "--source",
            "nope",
            "--headers",
            good.to_str().unwrap(),
            "--body",
            body_file.to_str().unwrap(),
        ])
        .await
        .fails(1);
    assert!(out.stderr.contains("no source"), "{out:?}");
    // A disabled source is not served; it says so.
    cli.run(&["sources", "disable", "github"]).await.ok();
    let out = verify(&cli, &good, &body_file).await.fails(1);
    assert!(out.stderr.contains("is disabled"), "{out:?}");
}

/// `sluice pollers run` polls now (the gateway itself does not, here):
/// `--dry-run` prints what would be emitted and commits nothing; a run
/// emits it, and `pollers list` then shows the poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_run_prints_what_it_emitted_or_would() {
    let app = ListApp::start().await;
    app.add(serde_json::json!({ "id": "a-1", "type": "created" }));
    let h = harness();
    let gw = h.start().await;
    let cli = Sluice::of(&h);
    let url = app.url();
    cli.run(&[
        "pollers",
        "add",
        "--id",
        "app",
        "--url",
        &url,
        "--item-id",
        "/id",
        "--type",
        "/type",
        "--emit-existing",
        "--allow-local",
    ])
    .await
    .ok();

    let out = cli.run(&["pollers", "run", "app", "--dry-run"]).await.ok();
    assert_eq!(
        out.stdout,
        "app: 1 items read, would emit 1, 0 already committed\n  would emit a-1 (created)\n"
    );
    let events = cli.run(&["events", "list", "--json"]).await.ok().json();
    assert_eq!(
        events["events"],
        Value::Array(vec![]),
        "a dry run commits nothing"
    );

    let out = cli.run(&["pollers", "run", "app"]).await.ok();
    assert_eq!(
        out.stdout,
        "app: 1 items read, emitted 1, 0 already committed\n  emitted a-1 (created)\n"
    );
    let events = cli.run(&["events", "list", "--json"]).await.ok().json();
    assert_eq!(events["events"][0]["event_id"], "a-1", "{events}");
    let out = cli.run(&["pollers", "run", "app"]).await.ok();
    assert_eq!(out.stdout, "app: not modified since the last poll\n");

    let list = cli.run(&["pollers", "list"]).await.ok();
    let row: Vec<&str> = list
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[0], "app");
    assert!(row.contains(&"not_modified"), "{list:?}");
    assert_eq!(row.last(), Some(&"-"), "no error: {list:?}");
    gw.stop().await;
}

/// Delivery controls from the command line: set at `add`, shown with the
/// circuit by `show`; a bad rate is refused naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_controls_are_set_and_shown_with_the_circuit() {
    let h = harness();
    let _gw = h.start().await;
    let cli = Sluice::of(&h);
    cli.add_github_source().await;
    let add = |extra: &'static [&'static str]| {
        let mut args = vec![
            "subscriptions",
            "add",
            "--id",
            "paced",
            "--source",
            "github",
            "--url",
            "https://example.com/hook",
            "--events",
            "push",
        ];
        args.extend_from_slice(extra);
        args
    };
    let refused = cli.run(&add(&["--rate-limit", "5/d"])).await.fails(2);
    assert!(refused.stderr.contains("rate_limit"), "{refused:?}");
    cli.run(&add(&[
        "--rate-limit",
        "5/m",
        "--max-in-flight",
        "2",
        "--breaker-failures",
        "3",
        "--breaker-probe-after",
        "10s",
        "--breaker-disable-after",
        "3d",
    ]))
    .await
    .ok();
    let shown = cli.run(&["subscriptions", "show", "paced"]).await.ok();
    for line in [
        "rate limit:",
        "5/m",
        "max in flight:",
        "after 3 failures in a row, first probe after 10s, disable after 3days open",
        "circuit:",
        "closed",
    ] {
        assert!(shown.stdout.contains(line), "{line}: {}", shown.stdout);
    }
    let json = cli
        .run(&["subscriptions", "show", "paced", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(json["delivery_controls"]["max_in_flight"], 2, "{json}");
}
