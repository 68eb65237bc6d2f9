//! `kill -9` of the real `sluice serve` with deliveries in flight: after
//! the restart, the tasks the dead process had claimed are delivered
//! within seconds, not after their 90 s claim; and a second gateway on the
//! same database is refused.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::{Harness, ServeProcess, Sink, eventually, github_headers};

const GH_SECRET: &str = "gh-secret-for-crash-tests";
const WAIT: Duration = Duration::from_secs(20);

fn serve(h: &Harness) -> ServeProcess {
    ServeProcess::spawn(std::path::Path::new(env!("CARGO_BIN_EXE_sluice")), h, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_the_claimed_tasks_are_delivered_within_seconds_of_the_restart() {
    let sink = Sink::start(200).await;
    // Attempts hang: the tasks stay claimed by the process that dies.
    sink.set_delay(Duration::from_secs(120));
    let config = format!(
        r#"
[[sources]]
id = "github"
provider = "github"
secrets = ["env:GH_SECRET"]

[[subscriptions]]
id = "deploys"
source = "github"
events = ["push"]
url = "{}"
allow_local = true
"#,
        sink.url()
    );
    let h = Harness::new(&config, &[("GH_SECRET", GH_SECRET)]);
    let mut first = serve(&h);
    let client = reqwest::Client::new();
    for n in 0..5 {
        let body = format!(r#"{{"ref":"refs/heads/main","n":{n}}}"#).into_bytes();
        let mut req = client
            .post(format!("http://{}/hooks/github", first.addr))
            .body(body.clone());
        for (k, v) in github_headers(GH_SECRET, &format!("k-{n}"), "push", &body) {
            req = req.header(k, v);
        }
        assert_eq!(req.send().await.unwrap().status(), 200);
    }
    eventually(WAIT, "the attempts in flight", || sink.count() == 5).await;

    // A second gateway on the same database is refused while one runs.
    let second = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(&h.opts.config)
        .arg("--db")
        .arg(h.db_path())
        .arg("--env-file")
        .arg(&h.opts.env_file)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another `sluice serve`"), "{err}");

    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    let _ = first.log.join();

    sink.set_delay(Duration::ZERO);
    let restarted = Instant::now();
    let mut again = serve(&h);
    eventually(WAIT, "the claimed tasks delivered", || {
        sink.successes().len() >= 10
    })
    .await;
    let took = restarted.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let _ = again.child.kill();
    let _ = again.child.wait();
    let lines = again.log.join().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("claims left by a stopped gateway released")),
        "{lines:?}"
    );
}
