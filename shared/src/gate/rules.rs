//! The rules of the gate, as pure functions over one subscription's
//! [`GateState`]: every adapter loads the state, applies these, and saves
//! it (atomically, where deliverers run in parallel).
//!
//! - **Rate.** Sends start at least [`Rate::interval`] apart, measured at
//!   the send: the limit holds however late or early a deferred task
//!   comes back. A deferred task is told a slot in a line (spaced a tenth
//!   wider than the interval, to absorb timing jitter), so a burst spreads
//!   out instead of coming back at once. The line is a hint: under
//!   contention the order is approximate, the limit exact.
//! - **In flight.** A send holds a slot until it finishes, or until its
//!   claim's lease passes if its holder died.
//! - **Circuit.** `failures` consecutive failed attempts open it, or (when
//!   `failure_percent` is set) that share of failures among at least
//!   `min_attempts` attempts in one `window`. While
//!   open, tasks are held until the probe time; then the first task to
//!   come is the one probe, and the others wait for its verdict. A healthy
//!   answer closes the circuit; a failed probe reopens it with a doubled
//!   wait, or, once the circuit has been open for `disable_after`, expires
//!   it: the subscription is disabled.
//!
//! [`Rate::interval`]: super::Rate::interval

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Admission, CircuitChange, Controls, Deferral, Pass, Verdict};

/// How often a task held behind a live probe looks again: a probe is one
/// request, so its verdict is usually in well before this, and the held
/// tasks follow soon after a success.
pub const PROBE_RECHECK: Duration = Duration::from_secs(2);

/// The shortest wait for an in-flight slot.
const MIN_SLOT_WAIT_MS: i64 = 50;

/// One subscription's gate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateState {
    /// When the last paced send started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_ms: Option<i64>,
    /// The end of the line of deferred tasks: the next one comes back then.
    #[serde(default)]
    pub line_until_ms: i64,
    /// The sends out now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight: Vec<Holder>,
    /// A moving average of the attempts' latency, for the in-flight line.
    #[serde(default)]
    pub latency_ms: i64,
    #[serde(default)]
    pub circuit: Circuit,
    /// The attempts of the current window, for `failure_percent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

/// Attempts counted since `start_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: i64,
    pub attempts: u32,
    pub failures: u32,
}

/// An in-flight send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub owner: String,
    pub until_ms: i64,
}

/// The breaker's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Circuit {
    Closed {
        /// Consecutive failed attempts so far.
        #[serde(default)]
        failures: u32,
    },
    /// Held: no task is sent before `probe_at_ms`.
    Open {
        since_ms: i64,
        probe_at_ms: i64,
        /// Consecutive openings (failed probes included): the probe's
        /// backoff.
        opened: u32,
        failures: u32,
    },
    /// One task, `owner`'s, is testing the destination.
    Probing {
        since_ms: i64,
        opened: u32,
        failures: u32,
        owner: String,
        until_ms: i64,
    },
}

impl Default for Circuit {
    fn default() -> Self {
        Self::Closed { failures: 0 }
    }
}

impl Circuit {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::Open { .. } => "open",
            Self::Probing { .. } => "probing",
        }
    }

    pub fn failures(&self) -> u32 {
        match self {
            Self::Closed { failures }
            | Self::Open { failures, .. }
            | Self::Probing { failures, .. } => *failures,
        }
    }
}

/// May `owner` send now?
pub fn admit(
    state: &mut GateState,
    controls: &Controls,
    owner: &str,
    now_ms: i64,
    lease: Duration,
) -> Admission {
    if !controls.breaker.enabled() {
        state.circuit = Circuit::default();
        state.window = None;
    }
    let probe = match &state.circuit {
        Circuit::Closed { .. } => false,
        Circuit::Open { probe_at_ms, .. } if now_ms < *probe_at_ms => {
            return wait_ms(*probe_at_ms - now_ms, Deferral::CircuitOpen);
        }
        Circuit::Probing { until_ms, .. } if now_ms < *until_ms => {
            let left = (*until_ms - now_ms).min(ms(PROBE_RECHECK));
            return wait_ms(left, Deferral::CircuitOpen);
        }
        // Due for a probe, or the last probe's holder vanished.
        Circuit::Open { .. } | Circuit::Probing { .. } => true,
    };
    state.in_flight.retain(|h| h.until_ms > now_ms);
    if let Some(max) = controls.max_in_flight
        && state.in_flight.len() >= max as usize
    {
        let earliest = now_ms + slot_step(state, controls);
        return defer(state, controls, now_ms, earliest, Deferral::InFlight);
    }
    if let (Some(rate), Some(last)) = (controls.rate, state.last_sent_ms) {
        let next = last.saturating_add(ms(rate.interval()));
        if now_ms < next {
            return defer(state, controls, now_ms, next, Deferral::RateLimited);
        }
    }
    let until_ms = now_ms.saturating_add(ms(lease));
    if controls.rate.is_some() {
        state.last_sent_ms = Some(now_ms);
    }
    if controls.max_in_flight.is_some() {
        state.in_flight.push(Holder {
            owner: owner.to_owned(),
            until_ms,
        });
    }
    if probe {
        let (since_ms, opened, failures) = match &state.circuit {
            Circuit::Open {
                since_ms,
                opened,
                failures,
                ..
            }
            | Circuit::Probing {
                since_ms,
                opened,
                failures,
                ..
            } => (*since_ms, *opened, *failures),
            Circuit::Closed { failures } => (now_ms, 0, *failures),
        };
        state.circuit = Circuit::Probing {
            since_ms,
            opened,
            failures,
            owner: owner.to_owned(),
            until_ms,
        };
    }
    Admission::Go(Pass {
        owner: owner.to_owned(),
        probe,
        tracked: controls.limited()
            || probe
            || state.circuit.failures() > 0
            || controls.breaker.failure_percent.is_some(),
    })
}

/// After `pass`'s send: free its slot, and feed the breaker.
pub fn finish(
    state: &mut GateState,
    controls: &Controls,
    pass: &Pass,
    verdict: Verdict,
    now_ms: i64,
    latency: Duration,
) -> Option<CircuitChange> {
    state.in_flight.retain(|h| h.owner != pass.owner);
    if controls.max_in_flight.is_some() && verdict != Verdict::Unknown {
        let sample = ms(latency);
        state.latency_ms = if state.latency_ms == 0 {
            sample
        } else {
            (state.latency_ms * 3 + sample) / 4
        };
    }
    let breaker = controls.breaker;
    if !breaker.enabled() {
        state.circuit = Circuit::default();
        state.window = None;
        return None;
    }
    let own_probe =
        matches!(&state.circuit, Circuit::Probing { owner, .. } if *owner == pass.owner);
    match (verdict, &mut state.circuit) {
        (Verdict::Unknown, Circuit::Probing { .. }) if own_probe => {
            // Nothing was sent: the next task probes at once.
            reopen(state, now_ms, 0, 0);
            None
        }
        (Verdict::Unknown, _) => None,
        (Verdict::Healthy, Circuit::Closed { failures }) => {
            *failures = 0;
            count(&mut state.window, &breaker, now_ms, false);
            None
        }
        (Verdict::Healthy, _) => {
            state.circuit = Circuit::default();
            state.window = None;
            Some(CircuitChange::Closed)
        }
        (Verdict::Failing, Circuit::Closed { failures }) => {
            *failures += 1;
            let in_a_row = breaker.failures > 0 && *failures >= breaker.failures;
            let share = count(&mut state.window, &breaker, now_ms, true);
            if !in_a_row && !share {
                return None;
            }
            let failures = *failures;
            state.window = None;
            state.circuit = Circuit::Open {
                since_ms: now_ms,
                probe_at_ms: now_ms.saturating_add(ms(breaker.probe_wait(1))),
                opened: 1,
                failures,
            };
            Some(CircuitChange::Opened)
        }
        (
            Verdict::Failing,
            Circuit::Probing {
                since_ms, failures, ..
            },
        ) if own_probe
            && breaker
                .disable_after
                .is_some_and(|d| now_ms - *since_ms >= ms(d)) =>
        {
            state.circuit = Circuit::Open {
                since_ms: now_ms,
                probe_at_ms: now_ms.saturating_add(ms(breaker.probe_wait(1))),
                opened: 1,
                failures: *failures + 1,
            };
            Some(CircuitChange::Expired)
        }
        (Verdict::Failing, Circuit::Probing { opened, .. }) if own_probe => {
            let opened = *opened + 1;
            reopen(state, now_ms, opened, ms(breaker.probe_wait(opened)));
            None
        }
        // A send let through before the circuit opened.
        (Verdict::Failing, Circuit::Open { failures, .. } | Circuit::Probing { failures, .. }) => {
            *failures += 1;
            None
        }
    }
}

/// Count an attempt in the window (a new one when the last is over), if
/// the breaker has a `failure_percent`; whether its share of failures is
/// now reached.
fn count(window: &mut Option<Window>, breaker: &super::Breaker, now_ms: i64, failed: bool) -> bool {
    let Some(percent) = breaker.failure_percent else {
        return false;
    };
    let w = match window {
        Some(w) if now_ms - w.start_ms < ms(breaker.window) => w,
        _ => window.insert(Window {
            start_ms: now_ms,
            attempts: 0,
            failures: 0,
        }),
    };
    w.attempts += 1;
    w.failures += u32::from(failed);
    w.attempts >= breaker.min_attempts
        && u64::from(w.failures) * 100 >= u64::from(percent) * u64::from(w.attempts)
}

/// Back to open after a probe, the next probe `wait_ms` from now.
fn reopen(state: &mut GateState, now_ms: i64, opened: u32, wait_ms: i64) {
    if let Circuit::Probing {
        since_ms,
        opened: was,
        failures,
        ..
    } = state.circuit
    {
        state.circuit = Circuit::Open {
            since_ms,
            probe_at_ms: now_ms.saturating_add(wait_ms),
            opened: opened.max(was),
            failures: failures + u32::from(wait_ms > 0),
        };
    }
}

/// A place in the line, no earlier than `earliest`.
fn defer(
    state: &mut GateState,
    controls: &Controls,
    now_ms: i64,
    earliest: i64,
    why: Deferral,
) -> Admission {
    let slot = state.line_until_ms.max(earliest).max(now_ms);
    state.line_until_ms = slot.saturating_add(slot_step(state, controls));
    wait_ms(slot - now_ms, why)
}

/// The spacing of the line: the rate's interval and a tenth, or the time
/// one in-flight slot frees up on average, whichever is longer.
fn slot_step(state: &GateState, controls: &Controls) -> i64 {
    let paced = controls.rate.map_or(0, |r| {
        let i = ms(r.interval());
        i + (i / 10).max(1)
    });
    let slots = controls.max_in_flight.map_or(0, |m| {
        (state.latency_ms / i64::from(m.max(1))).max(MIN_SLOT_WAIT_MS)
    });
    paced.max(slots).max(1)
}

fn wait_ms(wait: i64, why: Deferral) -> Admission {
    Admission::Wait {
        wait: Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
        why,
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::gate::Breaker;

    const LEASE: Duration = Duration::from_secs(75);

    fn controls(rate: Option<&str>, in_flight: Option<u32>, failures: u32) -> Controls {
        Controls::new(
            Format::Raw,
            rate,
            in_flight,
            Some(Breaker {
                failures,
                probe_after: Duration::from_secs(30),
                ..Breaker::default()
            }),
        )
        .unwrap()
    }

    fn go(a: Admission) -> Pass {
        match a {
            Admission::Go(p) => p,
            other => panic!("expected Go, got {other:?}"),
        }
    }

    fn waits(a: Admission) -> (i64, Deferral) {
        match a {
            Admission::Wait { wait, why } => (wait.as_millis() as i64, why),
            other => panic!("expected Wait, got {other:?}"),
        }
    }

    #[test]
    fn an_unlimited_closed_gate_lets_everything_through_untracked() {
        let c = controls(None, None, 10);
        let mut s = GateState::default();
        for i in 0..100 {
            let p = go(admit(&mut s, &c, &format!("o{i}"), 1000, LEASE));
            assert!(!p.tracked && !p.probe);
        }
        assert_eq!(s, GateState::default(), "nothing to save");
    }

    #[test]
    fn sends_are_paced_at_the_interval_and_a_burst_gets_distinct_slots() {
        let c = controls(Some("20/s"), None, 0);
        let mut s = GateState::default();
        assert!(go(admit(&mut s, &c, "a", 1000, LEASE)).tracked);
        // The burst: each later task gets its own slot, 55 ms apart.
        let slots: Vec<i64> = (0..5)
            .map(|i| {
                let (w, why) = waits(admit(&mut s, &c, &format!("b{i}"), 1000, LEASE));
                assert_eq!(why, Deferral::RateLimited);
                1000 + w
            })
            .collect();
        assert_eq!(slots, [1050, 1105, 1160, 1215, 1270]);
        // Back at its slot, the first goes; one a moment early does not.
        go(admit(&mut s, &c, "b0", 1050, LEASE));
        assert!(matches!(
            admit(&mut s, &c, "b1", 1099, LEASE),
            Admission::Wait { .. }
        ));
        go(admit(&mut s, &c, "b1", 1105, LEASE));
    }

    #[test]
    fn no_window_of_one_interval_ever_holds_two_sends() {
        // Tasks arriving at arbitrary times, retried when told: the sends
        // are never closer than the interval.
        let c = controls(Some("10/s"), None, 0);
        let mut s = GateState::default();
        let mut pending: Vec<(i64, usize)> = (0..50).map(|i| ((i as i64 * 37) % 400, i)).collect();
        let mut sent = Vec::new();
        while let Some(pos) = (0..pending.len()).min_by_key(|&i| pending[i].0) {
            let (at, id) = pending.swap_remove(pos);
            match admit(&mut s, &c, &id.to_string(), at, LEASE) {
                Admission::Go(_) => sent.push(at),
                Admission::Wait { wait, .. } => pending.push((at + wait.as_millis() as i64, id)),
            }
        }
        assert_eq!(sent.len(), 50);
        assert!(sent.windows(2).all(|w| w[1] - w[0] >= 100), "{sent:?}");
    }

    #[test]
    fn in_flight_slots_are_held_until_finish_or_the_lease() {
        let c = controls(None, Some(2), 0);
        let mut s = GateState::default();
        let a = go(admit(&mut s, &c, "a", 0, LEASE));
        go(admit(&mut s, &c, "b", 0, LEASE));
        let (_, why) = waits(admit(&mut s, &c, "c", 10, LEASE));
        assert_eq!(why, Deferral::InFlight);
        finish(
            &mut s,
            &c,
            &a,
            Verdict::Healthy,
            200,
            Duration::from_millis(200),
        );
        assert_eq!(s.latency_ms, 200);
        go(admit(&mut s, &c, "c", 210, LEASE));
        // b's holder died: its slot frees when its lease ends.
        assert!(matches!(
            admit(&mut s, &c, "d", 74_999, LEASE),
            Admission::Wait { .. }
        ));
        s.in_flight.retain(|h| h.owner != "c");
        go(admit(&mut s, &c, "d", 75_001, LEASE));
    }

    #[test]
    fn the_circuit_opens_after_n_failures_holds_then_probes_one_at_a_time() {
        let c = controls(None, None, 3);
        let mut s = GateState::default();
        let fail = |s: &mut GateState, owner: &str, at: i64| {
            let p = go(admit(s, &c, owner, at, LEASE));
            finish(s, &c, &p, Verdict::Failing, at, Duration::ZERO)
        };
        assert_eq!(fail(&mut s, "a", 0), None);
        assert_eq!(fail(&mut s, "b", 1), None);
        assert_eq!(fail(&mut s, "c", 2), Some(CircuitChange::Opened));
        assert_eq!(s.circuit.name(), "open");
        // Held until the probe time.
        assert_eq!(
            waits(admit(&mut s, &c, "d", 1002, LEASE)),
            (29_000, Deferral::CircuitOpen)
        );
        // The first at the probe time is the probe; the others wait for it.
        let probe = go(admit(&mut s, &c, "e", 30_002, LEASE));
        assert!(probe.probe && probe.tracked);
        let (w, why) = waits(admit(&mut s, &c, "f", 30_003, LEASE));
        assert_eq!((w, why), (ms(PROBE_RECHECK), Deferral::CircuitOpen));
        // A failed probe reopens with a doubled wait.
        assert_eq!(
            finish(&mut s, &c, &probe, Verdict::Failing, 30_100, Duration::ZERO),
            None
        );
        assert!(
            matches!(s.circuit, Circuit::Open { probe_at_ms, opened: 2, .. } if probe_at_ms == 90_100)
        );
        let probe = go(admit(&mut s, &c, "g", 90_100, LEASE));
        assert_eq!(
            finish(&mut s, &c, &probe, Verdict::Healthy, 90_200, Duration::ZERO),
            Some(CircuitChange::Closed)
        );
        assert_eq!(s.circuit, Circuit::Closed { failures: 0 });
        assert!(!go(admit(&mut s, &c, "h", 90_300, LEASE)).tracked);
    }

    #[test]
    fn a_probe_that_fails_after_disable_after_expires_the_circuit() {
        let c = Controls::new(
            Format::Raw,
            None,
            None,
            Some(Breaker {
                failures: 1,
                probe_after: Duration::from_secs(30),
                disable_after: Some(Duration::from_secs(60)),
                ..Breaker::default()
            }),
        )
        .unwrap();
        let mut s = GateState::default();
        let p = go(admit(&mut s, &c, "a", 0, LEASE));
        assert_eq!(
            finish(&mut s, &c, &p, Verdict::Failing, 0, Duration::ZERO),
            Some(CircuitChange::Opened)
        );
        // Open for 30 s: a failed probe only backs off.
        let p = go(admit(&mut s, &c, "b", 30_000, LEASE));
        assert_eq!(
            finish(&mut s, &c, &p, Verdict::Failing, 30_000, Duration::ZERO),
            None
        );
        // Open for 90 s: the failed probe expires it, and the clock starts
        // again with the first probe wait.
        let p = go(admit(&mut s, &c, "c", 90_000, LEASE));
        assert_eq!(
            finish(&mut s, &c, &p, Verdict::Failing, 90_000, Duration::ZERO),
            Some(CircuitChange::Expired)
        );
        assert!(matches!(
            s.circuit,
            Circuit::Open {
                since_ms: 90_000,
                probe_at_ms: 120_000,
                opened: 1,
                ..
            }
        ));
        // Another task's failure let through earlier expires nothing.
        let late = Pass {
            owner: "late".into(),
            probe: false,
            tracked: true,
        };
        assert_eq!(
            finish(&mut s, &c, &late, Verdict::Failing, 200_000, Duration::ZERO),
            None
        );
    }

    #[test]
    fn a_success_resets_the_count_and_a_dead_probe_is_replaced() {
        let c = controls(None, None, 2);
        let mut s = GateState::default();
        let p = go(admit(&mut s, &c, "a", 0, LEASE));
        finish(&mut s, &c, &p, Verdict::Failing, 0, Duration::ZERO);
        let p = go(admit(&mut s, &c, "b", 0, LEASE));
        assert!(p.tracked, "a failure to reset");
        finish(&mut s, &c, &p, Verdict::Healthy, 0, Duration::ZERO);
        assert_eq!(s.circuit.failures(), 0);
        for o in ["c", "d"] {
            let p = go(admit(&mut s, &c, o, 0, LEASE));
            finish(&mut s, &c, &p, Verdict::Failing, 0, Duration::ZERO);
        }
        go(admit(&mut s, &c, "probe", 30_000, LEASE));
        // Its holder died: after the lease, another task probes.
        assert!(matches!(
            admit(&mut s, &c, "x", 100_000, LEASE),
            Admission::Wait { .. }
        ));
        let p = go(admit(&mut s, &c, "y", 105_001, LEASE));
        assert!(p.probe);
        // An unsent probe (the payload failed to build) lets the next one
        // probe at once.
        finish(&mut s, &c, &p, Verdict::Unknown, 105_002, Duration::ZERO);
        assert!(go(admit(&mut s, &c, "z", 105_003, LEASE)).probe);
    }

    #[test]
    fn a_share_of_failures_in_a_window_opens_the_circuit() {
        let c = Controls::new(
            Format::Raw,
            None,
            None,
            Some(Breaker {
                failures: 0,
                failure_percent: Some(50),
                window: Duration::from_secs(60),
                min_attempts: 4,
                probe_after: Duration::from_secs(30),
                disable_after: None,
            }),
        )
        .unwrap();
        let mut s = GateState::default();
        let attempt = |s: &mut GateState, at: i64, v: Verdict| {
            let p = go(admit(s, &c, "o", at, LEASE));
            assert!(p.tracked, "successes count too");
            finish(s, &c, &p, v, at, Duration::ZERO)
        };
        // Alternating: never two in a row, but half of them fail.
        assert_eq!(attempt(&mut s, 0, Verdict::Failing), None);
        assert_eq!(attempt(&mut s, 1, Verdict::Healthy), None);
        assert_eq!(
            attempt(&mut s, 2, Verdict::Failing),
            None,
            "3 < min_attempts"
        );
        // A new window: the old attempts no longer count.
        assert_eq!(attempt(&mut s, 60_000, Verdict::Healthy), None);
        assert_eq!(attempt(&mut s, 60_001, Verdict::Healthy), None);
        assert_eq!(attempt(&mut s, 60_002, Verdict::Failing), None);
        assert_eq!(
            attempt(&mut s, 60_003, Verdict::Failing),
            Some(CircuitChange::Opened),
            "2 of 4"
        );
        assert_eq!(s.window, None, "a fresh window after the circuit closes");
    }

    #[test]
    fn a_breaker_turned_off_closes_the_circuit() {
        let mut s = GateState::default();
        let on = controls(None, None, 1);
        let p = go(admit(&mut s, &on, "a", 0, LEASE));
        finish(&mut s, &on, &p, Verdict::Failing, 0, Duration::ZERO);
        assert_eq!(s.circuit.name(), "open");
        let off = controls(None, None, 0);
        go(admit(&mut s, &off, "b", 1, LEASE));
        assert_eq!(s.circuit.name(), "closed");
    }

    #[test]
    fn the_state_round_trips_through_json() {
        let mut s = GateState {
            last_sent_ms: Some(5),
            line_until_ms: 7,
            in_flight: vec![Holder {
                owner: "o".into(),
                until_ms: 9,
            }],
            latency_ms: 3,
            window: Some(Window {
                start_ms: 1,
                attempts: 2,
                failures: 1,
            }),
            circuit: Circuit::Open {
                since_ms: 1,
                probe_at_ms: 2,
                opened: 1,
                failures: 10,
            },
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<GateState>(&json).unwrap(), s);
        s = GateState::default();
        assert_eq!(serde_json::from_str::<GateState>("{}").unwrap(), s);
    }
}
