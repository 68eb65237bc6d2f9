"""What the Rust code says the deployment must provide.

Facts are read from the source: the environment variables of
shared/src/aws/settings.rs, each function's SDK_CALLS and SDK_RESOURCES
(which tests/tests/aws_functions.rs keeps equal to the calls the handlers
really make), the EMF metrics each function emits (namespace and
dimensions from shared/src/aws/metrics.rs, the names from the calls that
count them), the item attribute names, the default retry schedule, the
delivery timeout and the deliveries' retention. Only the templates must be
parsed as what they are; reading these few Rust constants with patterns is
enough, and every pattern fails loudly when it stops matching.
"""

from __future__ import annotations

import ast
import operator
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# The resource name SDK_RESOURCES uses for the SSM parameters below the
# deployment's prefix (see tests/src/sdk_calls.rs).
SSM_PARAMETERS = "ssm:{prefix}/*"
# The parameters the receive function may write: handshakes' secrets.
SSM_HANDSHAKE_PARAMETERS = "ssm:{prefix}/handshake/*"


def _read(rel: str) -> str:
    return (ROOT / rel).read_text()


def _one(pattern: str, text: str, what: str, flags: int = 0) -> re.Match[str]:
    found = re.search(pattern, text, flags)
    if found is None:
        raise AssertionError(f"cannot find {what} (pattern {pattern!r}); update infra/tests/codefacts.py")
    return found


def _int_expr(text: str, names: dict[str, int] | None = None) -> int:
    """An integer expression of the Rust source: literals, named
    constants, `*` and `+` (`14 * 24 * 3600`, `5 * MIN`)."""
    names = names or {}
    ops = {ast.Mult: operator.mul, ast.Add: operator.add}

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.left), ev(node.right))
        raise AssertionError(f"unsupported expression in the Rust source: {text!r}")

    return ev(ast.parse(text.replace("_", ""), mode="eval").body)


@dataclass(frozen=True)
class Function:
    """One Lambda function crate."""

    name: str  # the binary, also the FUNCTION constant
    crate: str
    reads_settings: bool  # main.rs calls AwsSettings::from_env()
    sdk_calls: tuple[str, ...]
    sdk_resources: frozenset[tuple[str, str]]
    # the EMF metric names it emits (its `Function` dimension is `name`);
    # empty for a function that counts nothing
    metrics: frozenset[str]


@dataclass(frozen=True)
class Emf:
    """What shared/src/aws/metrics.rs makes of the counts."""

    namespace: str
    # the dimension names: `Function` always, the others when known
    dimensions: tuple[str, ...]
    # the one metric that carries a `Reason` (Metrics::rejected)
    reason_metric: str
    # the one timing, in Milliseconds (Metrics::latency_ms)
    latency_metric: str
    # the names of the module's table (its documentation)
    documented: frozenset[str]


@dataclass(frozen=True)
class Code:
    functions: dict[str, Function]
    all_vars: tuple[str, ...]
    # output name (CloudFormation; Terraform's is its snake_case) -> the
    # variable it carries, as the CLI reads them (STACK_OUTPUTS)
    stack_outputs: dict[str, str]
    # the same, for the outputs the CLI reads when present
    optional_stack_outputs: dict[str, str]
    required_vars: tuple[str, ...]
    # optional variables set only on the functions whose SDK_RESOURCES name
    # their resource (PER_FUNCTION_VARS)
    per_function_vars: tuple[str, ...]
    # optional variable -> its default when unset (whole seconds, or text)
    var_defaults: dict[str, int | str]
    key_attributes: dict[str, tuple[str, ...]]  # table variable -> (hash, range?)
    ttl_attributes: dict[str, str]  # table variable -> TTL attribute
    retry_schedule_secs: tuple[int, ...]
    retry_jitter: float
    # the redrive's maxReceiveCount the schedule cap assumes (retry.rs)
    queue_max_receive_count: int
    http_timeout_secs: int
    delivery_retention_secs: int
    # how long a poll's claim lasts (poll::state::CLAIM_DURATION)
    poll_claim_secs: int
    emf: Emf


def _settings() -> tuple[tuple[str, ...], tuple[str, ...], dict[str, int], tuple[str, ...]]:
    text = _read("shared/src/aws/settings.rs")
    consts = dict(re.findall(r'pub const (\w+): &str = "([\w/]+)";', text))
    body = _one(r"pub const ALL_VARS: \[&str; \d+\] = \[(.*?)\];", text, "ALL_VARS", re.S).group(1)
    all_vars = tuple(consts[n] for n in re.findall(r"\w+", body))
    lookup = _one(r"fn from_lookup\(.*?\n    \}\n", text, "AwsSettings::from_lookup", re.S).group(0)
    required = tuple(consts[n] for n in re.findall(r"required\((\w+)\)", lookup))
    assert required and set(required) <= set(all_vars), (required, all_vars)
    # secs(CONFIG_TTL_SECS, DEFAULT_CONFIG_TTL) and the constant's value
    durations = dict(re.findall(r"pub const (\w+): Duration = Duration::from_secs\((\d+)\);", text))
    defaults: dict[str, int | str] = {
        consts[var]: int(durations[d]) for var, d in re.findall(r"secs\((\w+), (\w+)\)", lookup)
    }
    # text(SSM_PREFIX, DEFAULT_SSM_PREFIX) and the constant's value
    defaults |= {consts[var]: consts[d] for var, d in re.findall(r"text\((\w+), (\w+)\)", lookup)}
    body = _one(r"pub const PER_FUNCTION_VARS: \[&str; \d+\] = \[(.*?)\];", text, "PER_FUNCTION_VARS", re.S).group(1)
    per_function = tuple(consts[n] for n in re.findall(r"\w+", body))
    assert set(per_function) <= set(all_vars) - set(required), per_function
    assert set(defaults) == set(all_vars) - set(required) - set(per_function), (defaults, all_vars, required)
    return all_vars, required, defaults, per_function


def _stack_outputs(const: str = "STACK_OUTPUTS") -> dict[str, str]:
    text = _read("shared/src/aws/settings.rs")
    consts = dict(re.findall(r'pub const (\w+): &str = "([\w/]+)";', text))
    body = _one(rf"pub const {const}: \[\(&str, &str\); \d+\] = \[(.*?)\];", text, const, re.S).group(1)
    pairs = re.findall(r'\(\s*"(\w+)",\s*(\w+)\s*\)', body)
    assert pairs, f"{const} is empty"
    return {name: consts[var] for name, var in pairs}


def _string_list(text: str, name: str) -> tuple[str, ...]:
    body = _one(rf"pub const {name}: &\[&str\] = &\[(.*?)\];", text, name, re.S).group(1)
    return tuple(re.findall(r'"([^"]*)"', body))


def _pair_list(text: str, name: str) -> frozenset[tuple[str, str]]:
    body = _one(rf"pub const {name}: &\[\(&str, &str\)\] = &\[(.*?)\];", text, name, re.S).group(1)
    return frozenset(re.findall(r'\(\s*"([^"]*)",\s*"([^"]*)"\s*\)', body))


def _fn_body(text: str, signature: str, what: str) -> str:
    """The body of the function whose declaration starts with `signature`,
    up to the closing brace at the declaration's indentation."""
    m = _one(rf"^( *){re.escape(signature)}[^\n]*\{{\n(.*?)\n\1\}}", text, what, re.S | re.M)
    return m.group(2)


def _emf() -> Emf:
    text = _read("shared/src/aws/metrics.rs")
    code = text.split("\n#[cfg(test)]\nmod tests", 1)[0]
    namespace = _one(r'pub const NAMESPACE: &str = "(\w+)";', code, "NAMESPACE").group(1)
    to_emf = _fn_body(code, "pub fn to_emf(", "Metrics::to_emf")
    first = _one(r'let mut names = vec!\["(\w+)"\];', to_emf, "the dimension every line has").group(1)
    others = re.findall(r'names\.push\("(\w+)"\);', to_emf)
    assert others, "cannot find the optional dimensions (names.push) in Metrics::to_emf"
    reason = re.findall(r'\.entry\("(\w+)"\)', _fn_body(code, "pub fn rejected(", "Metrics::rejected"))
    assert len(reason) == 1, f"Metrics::rejected counts one named metric, found {reason}"
    latency = set(re.findall(r'json!\(\{ "Name": "(\w+)", "Unit": "Milliseconds" \}\)', code))
    assert len(latency) == 1, f"one Milliseconds metric in Metrics::to_emf, found {latency}"
    table = re.findall(r"^//! \| `(\w+)` \|", text, re.M)
    assert table, "cannot find the metrics table of shared/src/aws/metrics.rs"
    return Emf(
        namespace=namespace,
        dimensions=(first, *others),
        reason_metric=reason[0],
        latency_metric=latency.pop(),
        documented=frozenset(table),
    )


def _call_args(text: str, start: int) -> list[str]:
    """The top-level arguments of the call whose `(` is at `start`."""
    depth, args, current = 0, [], ""
    for ch in text[start:]:
        if ch in "([{":
            depth += 1
            if depth == 1:
                continue
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                args.append(current.strip())
                return args
        if ch == "," and depth == 1:
            args.append(current.strip())
            current = ""
        else:
            current += ch
    raise AssertionError(f"unbalanced call at {text[start:start + 60]!r}")


def _outcome_names() -> dict[str, Any]:
    """The outcome names both backends share (docs/ARCHITECTURE.md,
    Metrics): receive's Receipt::outcome and refusal_outcome, deliver's
    Outcome::metric and UNAVAILABLE (by variant: a variant whose fields
    say why, such as Deferred, has a name per reason), and the circuit
    changes' names (CircuitChange::as_str)."""
    receive = _read("shared/src/pipeline/receive.rs")
    receipt = re.findall(r'=> "(\w+)"', _fn_body(receive, "pub fn outcome(&self)", "Receipt::outcome"))
    refusal = re.findall(r'"(\w+)"', _fn_body(receive, "pub fn refusal_outcome(", "refusal_outcome"))
    deliver = _read("shared/src/pipeline/deliver.rs")
    arms = re.findall(
        r'Self::(\w+)(?:\([^)]*\)|\s*\{[^}]*\})? => "(\w+)"',
        _fn_body(deliver, "pub fn metric(self)", "deliver::Outcome::metric"),
    )
    by_variant: dict[str, set[str]] = {}
    for variant, name in arms:
        by_variant.setdefault(variant, set()).add(name)
    unavailable = _one(r'pub const UNAVAILABLE: &str = "(\w+)";', deliver, "deliver::UNAVAILABLE").group(1)
    gate = _read("shared/src/gate/mod.rs")
    circuit = re.findall(r'=> "(\w+)"', _fn_body(gate, "impl CircuitChange", "CircuitChange::as_str"))
    assert receipt and refusal and arms and circuit, (receipt, refusal, arms, circuit)
    return {
        "receipt": set(receipt),
        "refusal": set(refusal),
        "deliver": by_variant,
        "unavailable": unavailable,
        "circuit": set(circuit),
    }


# What each method of Metrics counts under: the name argument (its index),
# or the fixed metric of Metrics::rejected / Metrics::latency_ms.
_COUNTING = {
    "incr": 1,
    "add": 1,
    "delivery": 1,
    "rejected": "reason",
    "latency_ms": "latency",
    "delivery_latency_ms": "latency",
}


def _metric_names(crate: str, lib: str, emf: Emf, outcomes: dict[str, Any]) -> frozenset[str]:
    """The names a function's lib.rs counts: every `metrics.<method>(…)`
    call outside its tests, each name argument a literal or one of the
    shared outcome functions. Anything else fails, naming the call."""
    code = lib.split("\n#[cfg(test)]\nmod tests", 1)[0]
    if "Metrics::new(FUNCTION)" not in code:
        assert not re.search(r"\bmetrics\.(incr|add|delivery|rejected|latency_ms|delivery_latency_ms)\(", code), f"{crate}: counts without Metrics::new(FUNCTION)"
        return frozenset()

    def names_of(expr: str) -> set[str]:
        if m := re.fullmatch(r'"(\w+)"', expr):
            return {m.group(1)}
        if expr == "receipt.outcome()":
            return set(outcomes["receipt"])
        # match refusal_outcome(…) { "rejected" => …, other => metrics.incr(…, other) }
        if re.search(rf"match refusal_outcome\([^{{]*\{{[^}}]*\b{re.escape(expr)} => metrics\.incr\(", code):
            literal_arms = set(re.findall(r'"(\w+)" => metrics\.', code))
            return set(outcomes["refusal"]) - literal_arms
        if expr == "change.as_str()":
            return set(outcomes["circuit"])
        if expr == "outcome.metric()":
            # The function's own MessageOutcome::metric, over deliver's names.
            found: set[str] = set()
            for arm in re.findall(r"=> ([^,\n]+),", _fn_body(code, "fn metric(&self)", f"{crate}: fn metric")):
                arm = arm.strip()
                if arm == "report.outcome.metric()":
                    found |= set().union(*outcomes["deliver"].values())
                elif m := re.fullmatch(r"deliver::Outcome::(\w+)\.metric\(\)", arm):
                    found |= outcomes["deliver"][m.group(1)]
                elif arm == "deliver::UNAVAILABLE":
                    found.add(outcomes["unavailable"])
                else:
                    raise AssertionError(f"{crate}: fn metric arm {arm!r}; teach infra/tests/codefacts.py")
            return found
        raise AssertionError(f"{crate}: a metric named by {expr!r}; teach infra/tests/codefacts.py what it counts")

    found: set[str] = set()
    for call in re.finditer(r"\bmetrics\.(\w+)\(", code):
        method = call.group(1)
        if method == "emit":
            continue
        assert method in _COUNTING, f"{crate}: metrics.{method}(…); teach infra/tests/codefacts.py what it counts"
        how = _COUNTING[method]
        if how == "reason":
            found.add(emf.reason_metric)
        elif how == "latency":
            found.add(emf.latency_metric)
        else:
            found |= names_of(_call_args(code, call.end() - 1)[how])
    assert found, f"{crate}: Metrics::new(FUNCTION) but no metrics.incr/add calls found"
    return frozenset(found)


def _functions(emf: Emf) -> dict[str, Function]:
    workspace = tomllib.loads(_read("Cargo.toml"))
    outcomes = _outcome_names()
    found = {}
    for member in workspace["workspace"]["members"]:
        if not member.startswith("functions/"):
            continue
        manifest = tomllib.loads(_read(f"{member}/Cargo.toml"))
        (binary,) = manifest["bin"]
        lib = _read(f"{member}/{manifest['lib']['path']}")
        main = _read(f"{member}/{binary['path']}")
        name = binary["name"]
        function_const = _one(r'pub const FUNCTION: &str = "(\w+)";', lib, f"{member} FUNCTION").group(1)
        assert function_const == name, f"{member}: binary {name} but FUNCTION {function_const}"
        found[name] = Function(
            name=name,
            crate=manifest["package"]["name"],
            reads_settings="AwsSettings::from_env()" in main,
            sdk_calls=_string_list(lib, "SDK_CALLS"),
            sdk_resources=_pair_list(lib, "SDK_RESOURCES"),
            metrics=_metric_names(member, lib, emf, outcomes),
        )
    assert found, "no functions/* members in the workspace"
    return found


def load() -> Code:
    all_vars, required, defaults, per_function = _settings()
    emf = _emf()
    item = _read("shared/src/aws/item.rs")
    pk = _one(r'pub const PK: &str = "(\w+)";', item, "PK").group(1)
    sk = _one(r'pub const SK: &str = "(\w+)";', item, "SK").group(1)
    ttl = {}
    for module, var in (("ev", "SLUICE_EVENTS_TABLE"), ("dl", "SLUICE_DELIVERIES_TABLE")):
        block = _one(rf"pub mod {module} \{{(.*?)\n\}}", item, f"item::{module}", re.S).group(1)
        ttl[var] = _one(r'pub const EXPIRES_AT: &str = "(\w+)";', block, f"{module}::EXPIRES_AT").group(1)

    retry = _read("shared/src/retry.rs")
    default = _one(r"impl Default for RetryPolicy \{(.*?)\n\}", retry, "RetryPolicy::default", re.S).group(1)
    units = {n: _int_expr(v) for n, v in re.findall(r"const (\w+): u64 = ([\d_]+);", default)}
    schedule = _one(r"schedule: \[(.*?)\]", default, "the default schedule", re.S).group(1)
    steps = tuple(_int_expr(s.strip(), units) for s in schedule.split(",") if s.strip())
    jitter = float(_one(r"jitter: ([\d.]+)", default, "the default jitter").group(1))
    max_receives = int(
        _one(r"pub const QUEUE_MAX_RECEIVE_COUNT: u32 = (\d+);", retry, "QUEUE_MAX_RECEIVE_COUNT").group(1)
    )

    http = _read("shared/src/delivery/http.rs")
    http_default = _one(r"impl Default for HttpOptions \{(.*?)\n\}", http, "HttpOptions::default", re.S).group(1)
    http_timeout = _int_expr(_one(r"\btimeout: Duration::from_secs\(([^)]+)\)", http_default, "timeout").group(1))

    store = _read("shared/src/aws/dynamo_store.rs")
    retention = _one(
        r"DEFAULT_DELIVERY_RETENTION: Duration = Duration::from_secs\(([^)]+)\)", store, "delivery retention"
    ).group(1)

    state = _read("shared/src/poll/state.rs")
    claim = _one(r"pub const CLAIM_DURATION: Duration = Duration::from_secs\(([^)]+)\);", state, "CLAIM_DURATION").group(1)

    return Code(
        functions=_functions(emf),
        all_vars=all_vars,
        stack_outputs=_stack_outputs(),
        optional_stack_outputs=_stack_outputs("OPTIONAL_STACK_OUTPUTS"),
        required_vars=required,
        per_function_vars=per_function,
        var_defaults=defaults,
        key_attributes={
            "SLUICE_EVENTS_TABLE": (pk,),
            "SLUICE_DELIVERIES_TABLE": (pk, sk),
            "SLUICE_CONFIG_TABLE": (pk,),
            "SLUICE_POLLERS_TABLE": (pk,),
            "SLUICE_GATES_TABLE": (pk,),
        },
        ttl_attributes=ttl,
        retry_schedule_secs=steps,
        retry_jitter=jitter,
        queue_max_receive_count=max_receives,
        http_timeout_secs=http_timeout,
        delivery_retention_secs=_int_expr(retention),
        poll_claim_secs=_int_expr(claim),
        emf=emf,
    )
