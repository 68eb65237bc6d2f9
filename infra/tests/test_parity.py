"""The SAM template and the Terraform module deploy the same stack, and
that stack is the one the code needs.

* Every environment variable the code reads (shared/src/aws/settings.rs)
  is set on every function that reads it, pointing at the right resource.
* Each function's role grants exactly what it needs: the SDK calls its
  code makes (SDK_CALLS/SDK_RESOURCES in functions/<f>/src/lib.rs, which
  tests/tests/aws_functions.rs keeps equal to the calls observed against
  moto), what its event source mapping needs, and writing its own logs.
* Queue, stream, mapping, schedule, table, function, API and alarm
  settings agree between the two templates and with the code (retry
  schedule, timeouts, attribute names).
* The dashboards are the same in both, show every metric the functions
  emit and no other (namespace, names and dimensions as the code has
  them), and the stack's own queues and functions.

`make infra-check` runs this with the pinned pytest of .venv-infra.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest

import codefacts
from codefacts import SSM_HANDSHAKE_PARAMETERS, SSM_PARAMETERS
import hcl2

from templates import DASHBOARD, TF_MODULE, snake
from templates import KMS_KEY, KMS_KEY_GIVEN, STREAM_FAILURE_QUEUE, Grant, Stack, load_sam, load_terraform, log_group

CODE = codefacts.load()
TF_EXAMPLE = TF_MODULE.parents[1] / "examples/complete"
SAM = load_sam()
TF = load_terraform()
STACKS = [pytest.param(SAM, id="sam"), pytest.param(TF, id="terraform")]

EVENTS, DELIVERIES, CONFIG = "SLUICE_EVENTS_TABLE", "SLUICE_DELIVERIES_TABLE", "SLUICE_CONFIG_TABLE"
POLLERS, GATES = "SLUICE_POLLERS_TABLE", "SLUICE_GATES_TABLE"
QUEUE, DLQ = "SLUICE_QUEUE_URL", "SLUICE_DLQ_URL"
TABLE_VARS = {EVENTS, DELIVERIES, CONFIG, POLLERS, GATES}
QUEUE_VARS = {QUEUE, DLQ}

# Which function each event source feeds (DESIGN.md): the events table's
# stream -> enqueue, the delivery queue -> deliver, the webhook route ->
# receive.
STREAM_FUNCTION, QUEUE_FUNCTION = "enqueue", "deliver"
# The EventBridge Scheduler schedule -> poll, with the event of
# tests/events (what the handler tests parse).
SCHEDULE_FUNCTION = "poll"
SCHEDULE_EVENT = codefacts.ROOT / "tests/events/scheduler-poll.json"
WEBHOOK_ROUTE = ("POST /hooks/{source}", "receive")
# The providers' checks of the endpoint (pipeline/challenge.rs): public too.
HANDSHAKE_ROUTES = ("GET /hooks/{source}", "HEAD /hooks/{source}")
ADMIN_ROUTE = ("ANY /admin/{proxy+}", "admin")

# What an event source mapping needs from the function's role (Lambda's
# pollers act as the function): AWSLambdaDynamoDBExecutionRole and
# AWSLambdaSQSQueueExecutionRole, scoped to the source, and SendMessage on
# a stream mapping's on-failure queue.
STREAM_POLLER = {
    ("dynamodb:DescribeStream", "#stream"),
    ("dynamodb:GetRecords", "#stream"),
    ("dynamodb:GetShardIterator", "#stream"),
    ("dynamodb:ListStreams", "#stream/*"),
}
QUEUE_POLLER = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}


def expected_grants(stack: Stack, function: str) -> set[Grant]:
    """What `function`'s role must grant, and all it may grant."""
    fn = CODE.functions[function]
    grants = {Grant(action, resource) for action, resource in fn.sdk_resources}
    grants |= {Grant(action, log_group(function)) for action in LOGS}
    mapping = stack.mappings.get(function)
    if mapping is not None:
        source = mapping["source"]
        if source.endswith("#stream"):
            table = source.removesuffix("#stream")
            grants |= {Grant(action, table + suffix) for action, suffix in STREAM_POLLER}
            if mapping["on_failure"] is not None:
                grants.add(Grant("sqs:SendMessage", mapping["on_failure"]))
        else:
            grants |= {Grant(action, source) for action in QUEUE_POLLER}
    # SecureString parameters are decrypted by SSM with their KMS key. With
    # the default key (aws/ssm) the key policy already allows it for any
    # principal of the account that may call GetParameter: nothing to
    # grant. With a customer managed key, kms:Decrypt on that key alone, only
    # through SSM, and only when the key is given.
    if "ssm:GetParameter" in fn.sdk_calls:
        via_ssm = (("StringEquals", "kms:ViaService", ("ssm.{region}.amazonaws.com",)),)
        grants.add(Grant("kms:Decrypt", KMS_KEY, KMS_KEY_GIVEN, via_ssm))
    return grants


# ------------------------------------------------------------ the code itself


def test_the_code_facts_hold_together() -> None:
    assert {"receive", "enqueue", "deliver", "admin", "poll"} <= set(CODE.functions)
    for fn in CODE.functions.values():
        assert fn.reads_settings, f"{fn.name}: main.rs reads AwsSettings::from_env()"
        assert list(fn.sdk_calls) == sorted(set(fn.sdk_calls)), f"{fn.name}: SDK_CALLS sorted, no repeats"
        assert {a for a, _ in fn.sdk_resources} == set(fn.sdk_calls), fn.name
        for action, resource in fn.sdk_resources:
            assert resource in CODE.all_vars or resource in (SSM_PARAMETERS, SSM_HANDSHAKE_PARAMETERS), (
                fn.name,
                action,
                resource,
            )
            assert action.split(":")[0] in {"dynamodb", "sqs", "ssm"}, (fn.name, action)
    assert CODE.retry_schedule_secs and all(w > 0 for w in CODE.retry_schedule_secs)
    assert 0 <= CODE.retry_jitter < 1
    # The pipeline's three functions count what they did (EMF).
    emf = CODE.emf
    assert emf.dimensions[0] == "Function" and len(set(emf.dimensions)) == len(emf.dimensions), emf.dimensions
    for name in ("receive", "enqueue", "deliver"):
        assert CODE.functions[name].metrics, f"{name} emits no metrics"
    assert emf.reason_metric in CODE.functions["receive"].metrics
    assert emf.latency_metric in CODE.functions["deliver"].metrics
    emitted = set().union(*(fn.metrics for fn in CODE.functions.values()))
    # The table of shared/src/aws/metrics.rs documents exactly those.
    assert emf.documented == emitted, (
        f"shared/src/aws/metrics.rs documents {sorted(emf.documented - emitted)} (not emitted), "
        f"omits {sorted(emitted - emf.documented)}"
    )


# ------------------------------------------------------------- environment


@pytest.mark.parametrize("stack", STACKS)
def test_each_function_gets_every_variable_it_reads(stack: Stack) -> None:
    assert set(stack.functions) == set(CODE.functions), f"{stack.source}: functions"
    for name, fn in CODE.functions.items():
        env = stack.environment[name]
        wanted = set(CODE.all_vars) if fn.reads_settings else set()
        missing = sorted(set(CODE.required_vars) & wanted - set(env))
        assert not missing, f"{stack.source}: {name} lacks required {missing}"
        unknown = sorted(v for v in env if v.startswith("SLUICE_") and v not in CODE.all_vars)
        assert not unknown, f"{stack.source}: {name} sets {unknown}, which the code does not read"
        # A per-function resource: set exactly where the code makes calls on it.
        for var in CODE.per_function_vars:
            uses = any(resource == var for _, resource in fn.sdk_resources)
            assert (var in env) == uses, (
                f"{stack.source}: {name} {'lacks' if uses else 'sets'} {var}, "
                f"which its SDK_RESOURCES {'name' if uses else 'do not name'}"
            )
        for var in set(CODE.all_vars) - set(CODE.required_vars) - set(CODE.per_function_vars):
            assert var in env, f"{stack.source}: {name} lacks {var} (optional, but the template's knob)"
            assert env[var].startswith("{param:"), f"{stack.source}: {name} {var} comes from a parameter"
            param = env[var][len("{param:") : -1]
            assert stack.parameters[param] == CODE.var_defaults[var], (
                f"{stack.source}: {param} defaults to the code's {var} default"
            )


def _allow_local_var() -> str:
    text = (codefacts.ROOT / "shared/src/aws/settings.rs").read_text()
    return re.search(r'pub const ALLOW_LOCAL_DESTINATIONS: &str = "(\w+)";', text).group(1)


@pytest.mark.parametrize("stack", STACKS)
def test_no_function_may_reach_loopback_destinations(stack: Stack) -> None:
    # allow_local on AWS would let an admin caller send deliveries to the
    # Lambda runtime API on 127.0.0.1 or into the VPC: off (absent) in
    # every deployed stack; only `make watch` and the tests turn it on.
    var = _allow_local_var()
    assert var == "SLUICE_ALLOW_LOCAL_DESTINATIONS"
    assert var not in CODE.all_vars, "a switch, not a template knob"
    for name in CODE.functions:
        assert var not in stack.environment[name], f"{stack.source}: {name} sets {var}"


@pytest.mark.parametrize("stack", STACKS)
def test_each_variable_names_its_own_resource(stack: Stack) -> None:
    for var in TABLE_VARS | QUEUE_VARS:
        targets = stack.wiring.get(var, set())
        assert len(targets) == 1, f"{stack.source}: {var} is set to one resource everywhere: {targets}"
        (target,) = targets
        if stack is SAM:
            kind = "AWS::DynamoDB::Table" if var in TABLE_VARS else "AWS::SQS::Queue"
            assert target.startswith("!Ref ") and target.endswith(f"({kind})"), (var, target)
        else:
            kind, attr = ("aws_dynamodb_table", "name") if var in TABLE_VARS else ("aws_sqs_queue", "url")
            assert target.startswith(kind + ".") and target.endswith("." + attr), (var, target)
    resources = [next(iter(t)) for v, t in stack.wiring.items() if v in TABLE_VARS | QUEUE_VARS]
    assert len(set(resources)) == len(resources), f"{stack.source}: two variables name one resource"
    # The tables and queues the variables name are the ones the stack wires.
    assert set(stack.tables) == TABLE_VARS, stack.tables.keys()
    assert set(stack.queues) == QUEUE_VARS | {STREAM_FAILURE_QUEUE}, stack.queues.keys()
    assert stack.mappings[STREAM_FUNCTION]["source"] == EVENTS + "#stream"
    assert stack.mappings[QUEUE_FUNCTION]["source"] == QUEUE
    assert stack.queues[QUEUE]["redrive"][0] == DLQ


# --------------------------------------------------------------------- IAM


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("function", sorted(CODE.functions))
def test_each_role_grants_what_its_function_needs_and_no_more(stack: Stack, function: str) -> None:
    want = expected_grants(stack, function)
    got = stack.grants[function]
    missing = sorted(map(str, want - got))
    extra = sorted(map(str, got - want))
    assert not missing and not extra, (
        f"{stack.source}: the {function} role\n"
        f"  lacks: {missing}\n"
        f"  grants beyond the code's needs: {extra}\n"
        f"(the code's calls: SDK_CALLS/SDK_RESOURCES in functions/{function}/src/lib.rs)"
    )


@pytest.mark.parametrize("stack", STACKS)
def test_roles_are_for_lambda_and_name_no_wildcards(stack: Stack) -> None:
    for function, grants in stack.grants.items():
        assert stack.functions[function]["trust"] == [("Allow", '{"Service": "lambda.amazonaws.com"}', "sts:AssumeRole")]
        for g in grants:
            assert "*" not in g.action, f"{stack.source}: {function}: {g}"
            assert g.resource not in ("*", ""), f"{stack.source}: {function}: {g}"


# ---------------------------------------------------------- the two agree


def _without_build(functions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f: {k: v for k, v in s.items() if k != "build"} for f, s in functions.items()}


@pytest.mark.parametrize(
    "aspect",
    ["environment", "grants", "tables", "queues", "mappings", "schedules", "routes", "throttling", "alarms", "outputs", "dashboard"],
)
def test_sam_and_terraform_agree(aspect: str) -> None:
    assert getattr(SAM, aspect) == getattr(TF, aspect), aspect


def test_sam_and_terraform_functions_agree() -> None:
    assert _without_build(SAM.functions) == _without_build(TF.functions)


def test_sam_parameters_are_terraform_variables_with_the_same_defaults() -> None:
    for name, default in SAM.parameters.items():
        assert name in TF.parameters, f"SAM parameter {name} has no Terraform variable"
        assert TF.parameters[name] == default, f"{name}: SAM {default!r}, Terraform {TF.parameters[name]!r}"
    only_tf = set(TF.parameters) - set(SAM.parameters)
    assert only_tf == {"name", "lambda_artifacts_dir", "tags"}, only_tf


# --------------------------------------------------------------- functions


@pytest.mark.parametrize("stack", STACKS)
def test_functions_are_arm64_al2023_json_logging(stack: Stack) -> None:
    for name, fn in stack.functions.items():
        assert fn["runtime"] == "provided.al2023", name
        assert fn["architectures"] == ["arm64"], name
        assert fn["handler"] == "bootstrap", name
        assert fn["log_format"] == "JSON", name
        # EMF metric lines carry no level: Lambda files them under INFO.
        assert fn["application_log_level"] == "INFO", name
        assert fn["log_group"] == log_group(name), name
        assert 128 <= fn["memory"] <= 1024, name
    # Deliver outlasts one HTTP attempt (the transport's timeout).
    assert stack.functions[QUEUE_FUNCTION]["timeout"] > CODE.http_timeout_secs
    # Providers give up after 10 s (GitHub); receive answers within that.
    assert stack.functions[WEBHOOK_ROUTE[1]]["timeout"] <= 10
    # A poll run outlasts one page (the transport's timeout), and a run cut
    # short leaves a claim that ends before the next run could need it.
    poll = stack.functions[SCHEDULE_FUNCTION]["timeout"]
    assert CODE.http_timeout_secs < poll < CODE.poll_claim_secs


def test_sam_builds_each_binary_of_the_workspace_with_cargo_lambda() -> None:
    for name, fn in SAM.functions.items():
        method, code_uri = fn["build"]
        assert method == "rust-cargolambda", name
        assert code_uri == codefacts.ROOT, f"{name}: CodeUri is the repository root"
        assert "workspace" in tomllib.loads((code_uri / "Cargo.toml").read_text())


def test_terraform_deploys_the_zips_of_make_build() -> None:
    for name, fn in TF.functions.items():
        assert fn["build"] == ("cargo-lambda-zip", "{param:lambda_artifacts_dir}/" + name + "/bootstrap.zip")


# ------------------------------------------------------------------ tables


@pytest.mark.parametrize("stack", STACKS)
def test_tables_match_the_item_layout(stack: Stack) -> None:
    for var, table in stack.tables.items():
        assert table["keys"] == CODE.key_attributes[var], var
        assert set(table["key_types"]) == {"S"}, var
        assert table["ttl"] == CODE.ttl_attributes.get(var), f"{var}: TTL attribute"
        assert table["billing"] == "PAY_PER_REQUEST", var
        assert table["pitr"] is True, var
        assert table["sse"] is True, var
        assert table["stream"] == ("NEW_IMAGE" if var == EVENTS else None), var


# ------------------------------------------------------------------ queues


@pytest.mark.parametrize("stack", STACKS)
def test_queues_hold_a_task_through_its_whole_retry_schedule(stack: Stack) -> None:
    longest_wait = sum(CODE.retry_schedule_secs) * (1 + CODE.retry_jitter)
    attempts = len(CODE.retry_schedule_secs) + 1
    queue = stack.queues[QUEUE]
    assert queue["retention"] >= longest_wait, "retention covers the default schedule with jitter"
    assert queue["retention"] <= CODE.delivery_retention_secs, "no task outlives its delivery record"
    assert queue["visibility"] >= 6 * stack.functions[QUEUE_FUNCTION]["timeout"]
    target, max_receives = queue["redrive"]
    assert target == DLQ
    assert max_receives > attempts, "the redrive never cuts the schedule short"
    # The config caps every schedule below this count (retry::MAX_ATTEMPTS).
    assert max_receives == CODE.queue_max_receive_count, "the redrive the schedule cap assumes"
    assert stack.queues[DLQ]["retention"] >= queue["retention"]
    for name, q in stack.queues.items():
        assert q["sse"] is not None, f"{name}: encrypted"


# ---------------------------------------------------------------- mappings


@pytest.mark.parametrize("stack", STACKS)
def test_stream_mapping_enqueues_inserts_with_bounded_retries(stack: Stack) -> None:
    m = stack.mappings[STREAM_FUNCTION]
    assert m["source"] == EVENTS + "#stream"
    assert m["filters"] == [{"eventName": ["INSERT"]}]
    assert m["bisect"] is True
    assert m["response_types"] == ["ReportBatchItemFailures"]
    assert isinstance(m["max_retries"], int) and 0 <= m["max_retries"] <= 100
    assert m["on_failure"] == STREAM_FAILURE_QUEUE
    assert m["starting_position"] == "TRIM_HORIZON"
    assert 1 <= m["batch_size"] <= 1000


@pytest.mark.parametrize("stack", STACKS)
def test_queue_mapping_reports_item_failures_with_bounded_concurrency(stack: Stack) -> None:
    m = stack.mappings[QUEUE_FUNCTION]
    assert m["source"] == QUEUE
    assert m["response_types"] == ["ReportBatchItemFailures"]
    assert 2 <= m["max_concurrency"] <= 1000
    # A batch is delivered concurrently inside one invocation.
    assert 1 <= m["batch_size"] <= 10
    assert set(stack.mappings) == {STREAM_FUNCTION, QUEUE_FUNCTION}


# --------------------------------------------------------------- schedule


@pytest.mark.parametrize("stack", STACKS)
def test_the_poll_function_runs_on_a_schedule_that_can_be_turned_off(stack: Stack) -> None:
    assert set(stack.schedules) == {SCHEDULE_FUNCTION}
    s = stack.schedules[SCHEDULE_FUNCTION]
    assert s["expression"] == "{param:poll_schedule}"
    assert stack.parameters["poll_schedule"] == "rate(1 minute)"
    assert s["state"] == "{param:poll_schedule_state}"
    assert stack.parameters["poll_schedule_state"] == "ENABLED"
    assert s["flexible_window"] == "OFF"
    # A missed run is not retried: the next one comes within the minute.
    assert s["retry"] == (0, 60)
    # Only the scheduler of this account may act as the role, and only to
    # start the poll function.
    assert s["trust"] == [
        ("Allow", '{"Service": "scheduler.amazonaws.com"}', "sts:AssumeRole", (("StringEquals", "aws:SourceAccount", ("{account}",)),))
    ]
    assert s["grants"] == {Grant("lambda:InvokeFunction", "function:" + SCHEDULE_FUNCTION)}
    # The event it sends is the one the handler tests parse, with the
    # scheduler's context attributes where the sample has their values.
    sample = json.loads(SCHEDULE_EVENT.read_text())
    event = s["input"]
    assert set(event) == set(sample), f"{stack.source}: the schedule's input has the sample's fields"
    for key in ("version", "detail-type", "source"):
        assert event[key] == sample[key], key
    for key in ("id", "time"):
        assert re.fullmatch(r"<aws\.scheduler\.[a-z-]+>", event[key]), key
    assert event["resources"] == ["<aws.scheduler.schedule-arn>"]


# ------------------------------------------------------------ API, alarms


@pytest.mark.parametrize("stack", STACKS)
def test_the_webhook_route_reaches_receive_with_nonzero_throttling(stack: Stack) -> None:
    route, function = WEBHOOK_ROUTE
    public = {route, *HANDSHAKE_ROUTES}
    for key in public:
        assert stack.routes[key] == {"function": function, "authorization": "NONE", "payload_format": "2.0"}, key
    for key, r in stack.routes.items():
        assert r["function"] in CODE.functions, key
        # The webhook routes are the only public ones (receive verifies the
        # providers' signatures and checks); any other (admin) is IAM-authorised.
        assert key in public or r["authorization"] == "AWS_IAM", f"{stack.source}: {key} is public"
    # The admin API is reachable only with SigV4 (IAM): the function trusts it.
    route, function = ADMIN_ROUTE
    assert stack.routes[route] == {"function": function, "authorization": "AWS_IAM", "payload_format": "2.0"}
    assert stack.throttling["rate"] >= 1 and stack.throttling["burst"] >= 1
    assert stack.throttling["access_logs"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_alarms_watch_the_dlq_errors_and_the_stream(stack: Stack) -> None:
    watched = {
        (dict(a)["namespace"], dict(a)["metric"], dict(a)["dimensions"], dict(a)["comparison"], dict(a)["threshold"])
        for a in stack.alarms
    }
    gt = "GreaterThanThreshold"
    for queue in (DLQ, STREAM_FAILURE_QUEUE):
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", queue),), gt, 0) in watched
    for function in CODE.functions:
        assert ("AWS/Lambda", "Errors", (("FunctionName", "function:" + function),), gt, 0) in watched
    ages = [w for w in watched if w[1] == "IteratorAge"]
    assert [w[2] for w in ages] == [(("FunctionName", "function:" + STREAM_FUNCTION),)]
    for a in stack.alarms:
        assert dict(a)["actions"] == "alarm_topic_arn != ''", "alarms notify the topic when one is given"


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_name_the_url_the_tables_and_the_queues(stack: Stack) -> None:
    assert {"webhook-base-url", "admin-base-url", *TABLE_VARS, *QUEUE_VARS, DASHBOARD} <= stack.outputs


# --------------------------------------------------------------- dashboard

DASHBOARD_NAMESPACES = {CODE.emf.namespace, "AWS/Lambda", "AWS/SQS"}
# Per function, on one widget each (Sum, Maximum or p99 over the period).
FUNCTION_METRICS = {"Errors", "Throttles", "Duration"}
# Per queue: its depth and the age of its oldest message.
QUEUE_METRICS = {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}
GRID_COLUMNS = 24


def _rows(stack: Stack) -> list[tuple[dict[str, Any], tuple]]:
    assert stack.dashboard is not None, f"{stack.source}: no dashboard"
    return [
        (w, row)
        for w in stack.dashboard["widgets"]
        for row in w["properties"].get("metrics", [])
    ]


def _emitted(function: str) -> set[str]:
    return set(CODE.functions[function].metrics)


_SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\}(?P<terms>[^']*)', '(?P<stat>\w+)', (?P<period>\d+)\)")


def _search(expression: str) -> tuple[str, tuple[str, ...], dict[str, str], set[str]]:
    """A SEARCH expression as (namespace, schema dimensions, `Name="v"`
    terms, names excluded with `NOT MetricName="v"`); any other term fails."""
    m = _SEARCH.fullmatch(expression)
    assert m, f"not a SEARCH('{{schema}} terms', 'stat', period): {expression!r}"
    namespace, *dims = [d.strip() for d in m["schema"].split(",")]
    terms = m["terms"]
    excluded = set(re.findall(r'\bNOT MetricName="(\w+)"', terms))
    terms = re.sub(r'\bNOT MetricName="\w+"', "", terms)
    pairs = dict(re.findall(r'(\w+)="([\w-]+)"', terms))
    leftover = re.sub(r'\w+="[\w-]+"', "", terms).strip()
    assert not leftover, f"unsupported search terms {leftover!r} in {expression!r}"
    return namespace, tuple(dims), pairs, excluded


@pytest.mark.parametrize("stack", STACKS)
def test_the_dashboard_is_named_after_the_stack_and_well_formed(stack: Stack) -> None:
    assert stack.dashboard is not None, f"{stack.source}: no dashboard"
    assert stack.dashboard["name"] == "{name}", "named after the stack (the module's var.name)"
    cells: set[tuple[int, int]] = set()
    for w in stack.dashboard["widgets"]:
        assert w["type"] in ("metric", "text"), w
        x, y, width, height = w["x"], w["y"], w["width"], w["height"]
        assert 0 <= x and x + width <= GRID_COLUMNS and width > 0 and height > 0, w
        mine = {(cx, cy) for cx in range(x, x + width) for cy in range(y, y + height)}
        assert not mine & cells, f"{stack.source}: widgets overlap at {w['properties'].get('title')!r}"
        cells |= mine
        props = w["properties"]
        if w["type"] == "text":
            assert props.get("markdown"), w
            continue
        assert props.get("title") and props["region"] == "{region}", props
        assert props["metrics"], props
        ids = [row[2].get("id") for row in props["metrics"] if row[0] == "expression"]
        assert all(i and re.fullmatch(r"[a-z]\w*", i) for i in ids), f"expression ids start lowercase: {ids}"
        assert len(ids) == len(set(ids)), f"repeated expression ids in {props['title']!r}"


@pytest.mark.parametrize("stack", STACKS)
def test_dashboard_sluice_metrics_are_the_ones_the_code_emits(stack: Stack) -> None:
    emf = CODE.emf
    optional = set(emf.dimensions) - {"Function"}
    for w, row in _rows(stack):
        title = w["properties"]["title"]
        if row[0] == "expression":
            namespace, schema, terms, excluded = _search(row[1])
            assert namespace in DASHBOARD_NAMESPACES, f"{title}: {row[1]}"
            if namespace != emf.namespace:
                continue
            # Every line of the code has Function, and Source or Reason
            # only as the code adds them; Reason only on its metric.
            assert schema[0] == "Function" and set(schema[1:]) <= optional, f"{title}: schema {schema}"
            assert set(terms) <= {"Function", "MetricName"}, f"{title}: {terms}"
            function = terms.get("Function")
            assert function in CODE.functions and CODE.functions[function].metrics, f"{title}: Function={function!r}"
            named = {terms["MetricName"]} if "MetricName" in terms else set()
            assert named | excluded <= _emitted(function), f"{title}: {function} emits no {sorted(named | excluded - _emitted(function))}"
            if "Reason" in schema:
                assert named == {emf.reason_metric}, f"{title}: only {emf.reason_metric} has a Reason"
            continue
        _, namespace, name, dims, _ = row
        assert namespace in DASHBOARD_NAMESPACES, f"{title}: namespace {namespace}"
        if namespace != emf.namespace:
            continue
        # Explicit metrics are a function's totals: [Function] alone (the
        # Source values are the config's, unknown to the template).
        assert [d for d, _ in dims] == ["Function"], f"{title}: {name} {dims}"
        function = dims[0][1]
        assert function in CODE.functions, f"{title}: Function={function!r} is no function"
        assert name in _emitted(function), f"{title}: {function} emits no {name!r} (it emits {sorted(_emitted(function))})"


@pytest.mark.parametrize("stack", STACKS)
def test_dashboard_shows_every_metric_the_code_emits(stack: Stack) -> None:
    shown: dict[str, set[str]] = {}
    for _, row in _rows(stack):
        if row[0] == "metric" and row[1] == CODE.emf.namespace:
            shown.setdefault(row[3][0][1], set()).add(row[2])
    for name, fn in CODE.functions.items():
        missing = sorted(_emitted(name) - shown.get(name, set()))
        assert not missing, f"{stack.source}: the dashboard lacks {name}'s {missing}"


@pytest.mark.parametrize("stack", STACKS)
def test_dashboard_aws_metrics_are_the_stacks_own(stack: Stack) -> None:
    seen: set[tuple[str, str, str]] = set()
    for w, row in _rows(stack):
        title = w["properties"]["title"]
        if row[0] == "expression":
            assert _search(row[1])[0] == CODE.emf.namespace, f"{title}: SEARCH only over the code's metrics"
            continue
        _, namespace, name, dims, _ = row
        if namespace == "AWS/Lambda":
            assert [d for d, _ in dims] == ["FunctionName"], f"{title}: {dims}"
            value = dims[0][1]
            assert value.startswith("function:") and value.removeprefix("function:") in stack.functions, (
                f"{stack.source}: {title}: {name} of {value!r}, not one of the stack's functions"
            )
        elif namespace == "AWS/SQS":
            assert [d for d, _ in dims] == ["QueueName"], f"{title}: {dims}"
            value = dims[0][1]
            assert value in stack.queues, f"{stack.source}: {title}: {name} of {value!r}, not one of the stack's queues"
        else:
            continue
        seen.add((namespace, name, value))
    for function in stack.functions:
        for metric in FUNCTION_METRICS:
            assert ("AWS/Lambda", metric, "function:" + function) in seen, f"{stack.source}: no {metric} of {function}"
    for queue in (QUEUE, DLQ):
        for metric in QUEUE_METRICS:
            assert ("AWS/SQS", metric, queue) in seen, f"{stack.source}: no {metric} of {queue}"
    # What the alarms watch is on the dashboard too.
    for alarm in map(dict, stack.alarms):
        (dim,) = alarm["dimensions"]
        assert (alarm["namespace"], alarm["metric"], dim[1]) in seen, f"{stack.source}: alarmed {alarm['metric']} of {dim[1]}"


@pytest.mark.parametrize("stack", STACKS)
def test_dashboard_marks_the_iterator_age_alarm_threshold(stack: Stack) -> None:
    (alarm,) = [dict(a) for a in stack.alarms if dict(a)["metric"] == "IteratorAge"]
    (widget,) = [
        w for w, row in _rows(stack) if row[0] == "metric" and row[1:3] == ("AWS/Lambda", "IteratorAge")
    ]
    lines = widget["properties"]["annotations"]["horizontal"]
    assert [line["value"] for line in lines] == ["{param:iterator_age_alarm_ms}"]
    assert stack.parameters["iterator_age_alarm_ms"] == alarm["threshold"]
    assert widget["properties"]["stat"] == alarm["statistic"] and widget["properties"]["period"] == alarm["period"]


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_carry_what_the_cli_reads_set_as_the_functions_are(stack: Stack) -> None:
    """`sluice --aws --stack` (CloudFormation names) and `--outputs-file`
    (Terraform's, snake_case) find the settings in the outputs: each is set
    to what the functions' variable is set to."""
    assert set(CODE.stack_outputs.values()) == set(CODE.required_vars) | {"SLUICE_SSM_PREFIX"}
    assert set(CODE.optional_stack_outputs.values()) == set(CODE.per_function_vars)
    for name, var in {**CODE.stack_outputs, **CODE.optional_stack_outputs}.items():
        if stack is TF:
            name = snake(name)
        assert name in stack.named_outputs, f"{stack.source}: no output {name} (for {var})"
        users = [f for f, env in stack.environment.items() if var in env]
        assert users, f"{stack.source}: no function gets {var}"
        for f in users:
            assert stack.named_outputs[name] == stack.environment[f][var], (stack.source, name, var, f)


def test_the_terraform_example_outputs_what_the_cli_reads() -> None:
    doc = hcl2.loads((TF_EXAMPLE / "main.tf").read_text())
    outputs = {name.strip('"'): body["value"] for block in doc.get("output", []) for name, body in block.items()}
    for name in map(snake, {**CODE.stack_outputs, **CODE.optional_stack_outputs}):
        assert outputs.get(name) == f"${{module.sluice.{name}}}", f"examples/complete: output {name}"
