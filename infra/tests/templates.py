"""The SAM template and the Terraform module, parsed into one shape.

Both are read with real parsers: the SAM template with a YAML loader that
understands the CloudFormation short tags (!Ref, !GetAtt, !Sub, !If, …),
the module with python-hcl2. References between resources are resolved
and every resource a function or a policy points at is named the same way
in both:

* a table or queue by the environment variable that carries it to the
  functions (`SLUICE_EVENTS_TABLE`), with `#stream` and `#stream/*` for the
  events table's stream ARN and the ARNs below it;
* the stream mapping's on-failure queue as `stream-failure-queue`;
* a function as `function:<name>` (where a policy names it: the
  schedule's role);
* a function's log group as `log-group:<function>` (its log streams:
  CloudFormation's LogGroup Arn already ends in `:*`, Terraform's gets it
  appended);
* the SSM parameters below the prefix as `ssm:{prefix}/*`, the optional
  customer managed key as `{param:secrets_kms_key_arn}`;
* the CloudWatch dashboard as `dashboard`.

The dashboard's body is parsed as what CloudWatch gets (the JSON of the
SAM template's Fn::Sub, the object of the module's jsonencode), with the
resources its metrics name canonicalised the same way.

Template parameters are named by their Terraform variable names
(SsmParameterPrefix is ssm_parameter_prefix) and carry their defaults.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2.utils import SerializationOptions

from codefacts import ROOT, SSM_HANDSHAKE_PARAMETERS, SSM_PARAMETERS

SAM_TEMPLATE = ROOT / "infra/sam/template.yaml"
TF_MODULE = ROOT / "infra/terraform/modules/sluice"

STREAM_FAILURE_QUEUE = "stream-failure-queue"


def log_group(function: str) -> str:
    return f"log-group:{function}"


# The optional customer managed key of the SecureString parameters.
KMS_KEY = "{param:secrets_kms_key_arn}"


# The only condition a statement may carry: "a customer managed key is set".
KMS_KEY_GIVEN = "secrets_kms_key_arn != ''"


@dataclass(frozen=True)
class Grant:
    """One action on one resource, as a policy grants it."""

    action: str
    resource: str
    # The template condition under which the statement exists, if any.
    only_if: str | None = None
    # IAM condition block, as sorted (operator, key, values) triples.
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def __str__(self) -> str:
        extra = f" if {self.only_if}" if self.only_if else ""
        cond = f" when {list(self.conditions)}" if self.conditions else ""
        return f"{self.action} on {self.resource}{extra}{cond}"


@dataclass
class Stack:
    """What a template deploys, in template-neutral terms."""

    source: str
    parameters: dict[str, Any] = field(default_factory=dict)
    # function -> settings (memory, timeout, runtime, …)
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # function -> variable -> the resource (canonical name) or value it is set to
    environment: dict[str, dict[str, Any]] = field(default_factory=dict)
    # function -> every grant of its role
    grants: dict[str, set[Grant]] = field(default_factory=dict)
    # table variable -> settings
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    # queue name -> settings
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    # function -> mapping settings (source: canonical name)
    mappings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # function -> its EventBridge Scheduler schedule (expression, state,
    # input, retry, and the scheduler role's trust and grants)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    # route key -> settings (function, authorization, payload version)
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    throttling: dict[str, Any] = field(default_factory=dict)
    # alarm settings, each a sorted tuple of items
    alarms: set[tuple[tuple[str, Any], ...]] = field(default_factory=set)
    # what the outputs expose (canonical names, or webhook-base-url)
    outputs: set[str] = field(default_factory=set)
    # output name -> what it is set to (canonical, as in `environment`)
    named_outputs: dict[str, Any] = field(default_factory=dict)
    # variable -> the resources (logical ids / addresses) it is set to,
    # over all functions: one each, and a different one per variable
    wiring: dict[str, set[str]] = field(default_factory=dict)
    # the CloudWatch dashboard: name, and widgets as dashboard_widgets()
    # makes them (None: the stack has none)
    dashboard: dict[str, Any] | None = None


DASHBOARD = "dashboard"


def dashboard_widgets(body: Any, resource) -> list[dict[str, Any]]:
    """A dashboard body's widgets, template-neutral: each metric row as
    ("metric", namespace, name, ((dimension, value), ...), {options}) or
    ("expression", text, {options}); a dimension value that names a
    resource of the stack is `resource(value)` (its canonical name), a
    parameter `{param:name}`; the "." shorthand is expanded."""

    def value(v: Any) -> Any:
        if isinstance(v, Param):
            return "{param:" + v.name + "}"
        if isinstance(v, dict):
            return {k: value(x) for k, x in v.items()}
        if isinstance(v, list):
            return [value(x) for x in v]
        return resource(v)

    assert isinstance(body, dict) and set(body) == {"widgets"}, f"a dashboard body is {{widgets: [...]}}: {body!r}"
    widgets = []
    for w in body["widgets"]:
        props = dict(w.get("properties", {}))
        rows, previous = [], []
        for row in props.pop("metrics", []):
            assert isinstance(row, list) and row, f"a metric row is a non-empty list: {row!r}"
            options = value(row[-1]) if isinstance(row[-1], dict) else {}
            row = row[:-1] if isinstance(row[-1], dict) else row
            if not row:
                assert "expression" in options, f"a row of options alone is an expression: {options!r}"
                rows.append(("expression", options.pop("expression"), options))
                previous = []
                continue
            row = [previous[i] if x == "." and i < len(previous) else x for i, x in enumerate(row)]
            previous = row
            assert len(row) >= 2 and len(row) % 2 == 0, f"namespace, name, then dimension pairs: {row!r}"
            dims = tuple((row[i], value(row[i + 1])) for i in range(2, len(row), 2))
            rows.append(("metric", row[0], row[1], dims, options))
        entry = {k: w[k] for k in ("type", "x", "y", "width", "height") if k in w}
        entry["properties"] = {**value(props), **({"metrics": rows} if rows else {})}
        widgets.append(entry)
    return widgets


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# --------------------------------------------------------------------- SAM


class CfnLoader(yaml.SafeLoader):
    """YAML with the CloudFormation short tags, as their long forms."""


def _construct_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def _no_duplicate_keys(loader: CfnLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise AssertionError(f"duplicate keys {sorted(dupes)} at line {node.start_mark.line + 1}")
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


CfnLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)
CfnLoader.construct_mapping = _no_duplicate_keys  # type: ignore[method-assign]


@dataclass(frozen=True)
class Ref:
    """A reference to a resource (a SAM logical id or a Terraform address)
    and one of its attributes (None: CloudFormation's Ref)."""

    target: str
    attr: str | None = None


@dataclass(frozen=True)
class Param:
    """A template parameter / Terraform variable, by its Terraform name."""

    name: str


@dataclass(frozen=True)
class Conditional:
    """A value that exists only when `condition` holds."""

    condition: str
    value: Any


_NO_VALUE = object()
_PSEUDO = {
    "AWS::Partition": "{partition}",
    "AWS::Region": "{region}",
    "AWS::AccountId": "{account}",
    "AWS::URLSuffix": "{url_suffix}",
    "AWS::StackName": "{name}",
}


class Sam:
    def __init__(self, path: Path = SAM_TEMPLATE):
        self.path = path
        self.doc = yaml.load(path.read_text(), Loader=CfnLoader)  # noqa: S506 (a SafeLoader)
        self.resources: dict[str, dict[str, Any]] = self.doc["Resources"]
        self.params: dict[str, dict[str, Any]] = self.doc.get("Parameters", {})
        self.conditions = {name: self._condition(body) for name, body in self.doc.get("Conditions", {}).items()}

    def _condition(self, body: Any) -> str:
        # The one shape used: !Not [!Equals [!Ref Param, ""]].
        match body:
            case {"Fn::Not": [{"Fn::Equals": [{"Ref": p}, ""]}]} if p in self.params:
                return f"{snake(p)} != ''"
        raise AssertionError(f"unsupported condition {body!r}")

    def resolve(self, value: Any) -> Any:
        match value:
            case {"Ref": "AWS::NoValue"}:
                return _NO_VALUE
            case {"Ref": str(name)} if name in _PSEUDO:
                return _PSEUDO[name]
            case {"Ref": str(name)} if name in self.params:
                return Param(snake(name))
            case {"Ref": str(name)}:
                assert name in self.resources, f"!Ref {name}: no such resource"
                return Ref(name)
            case {"Fn::GetAtt": [str(name), str(attr)]}:
                assert name in self.resources, f"!GetAtt {name}: no such resource"
                return Ref(name, attr)
            case {"Fn::Sub": str(text)}:
                return self._sub(text)
            case {"Fn::If": [str(cond), then, otherwise]}:
                assert self.resolve(otherwise) is _NO_VALUE, f"!If {cond}: only '… or nothing' is supported"
                return Conditional(self.conditions[cond], self.resolve(then))
            case dict():
                out = {k: self.resolve(v) for k, v in value.items()}
                return {k: v for k, v in out.items() if v is not _NO_VALUE}
            case list():
                return [r for r in (self.resolve(v) for v in value) if r is not _NO_VALUE]
        return value

    def _sub(self, text: str) -> str:
        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in _PSEUDO:
                return _PSEUDO[name]
            if name in self.params:
                return "{param:" + snake(name) + "}"
            target, _, attr = name.partition(".")
            assert target in self.resources, f"!Sub ${{{name}}}: no such resource"
            return "{ref:" + target + ("." + attr if attr else "") + "}"

        return re.sub(r"\$\{([\w:.]+)\}", one, text)

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resolve(self.resources[logical_id].get("Properties", {}))


def param_value(stack: Stack, value: Any) -> Any:
    """A setting's value: a parameter stands for its default."""
    if isinstance(value, Param):
        return stack.parameters[value.name]
    return value


def load_sam(path: Path = SAM_TEMPLATE) -> Stack:
    sam = Sam(path)
    stack = Stack(source=str(path.relative_to(ROOT)))
    for name, body in sam.params.items():
        default = body.get("Default")
        if body.get("Type") == "Number" and default is not None:
            default = int(default)
        if body.get("AllowedValues") == ["true", "false"]:
            default = default == "true"
        stack.parameters[snake(name)] = default

    globals_fn = sam.doc.get("Globals", {}).get("Function", {})
    functions: dict[str, str] = {}  # logical id -> binary
    for logical_id, res in sam.of_type("AWS::Serverless::Function").items():
        meta = res.get("Metadata", {})
        binary = meta.get("BuildProperties", {}).get("Binary")
        assert binary, f"{logical_id}: Metadata.BuildProperties.Binary names the cargo binary"
        functions[logical_id] = binary
        props = sam.props(logical_id)
        merged = {**sam.resolve(globals_fn), **props}
        env = {
            **sam.resolve(globals_fn.get("Environment", {}).get("Variables", {})),
            **props.get("Environment", {}).get("Variables", {}),
        }
        code_uri = (path.parent / merged["CodeUri"]).resolve()
        logging = merged.get("LoggingConfig", {})
        stack.functions[binary] = {
            "build": (meta.get("BuildMethod"), code_uri),
            "runtime": merged.get("Runtime"),
            "architectures": merged.get("Architectures"),
            "handler": merged.get("Handler"),
            "memory": merged.get("MemorySize"),
            "timeout": merged.get("Timeout"),
            "log_format": logging.get("LogFormat"),
            "application_log_level": logging.get("ApplicationLogLevel"),
            "system_log_level": logging.get("SystemLogLevel"),
            "log_group": logging.get("LogGroup"),
            "role": merged.get("Role"),
        }
        stack.environment[binary] = env

    # Canonical names, from the wiring itself.
    names: dict[str, str] = {}
    for binary, env in stack.environment.items():
        for var, value in env.items():
            if isinstance(value, Ref):
                names[value.target] = var
                how = f"!GetAtt {value.target}.{value.attr}" if value.attr else f"!Ref {value.target}"
                stack.wiring.setdefault(var, set()).add(f"{how} ({sam.resources[value.target]['Type']})")
    for binary, fn in stack.functions.items():
        if isinstance(fn["log_group"], Ref):
            names[fn["log_group"].target] = log_group(binary)
    for logical_id, binary in functions.items():
        names[logical_id] = "function:" + binary

    def fn_of(value: Any) -> str:
        assert isinstance(value, Ref) and value.target in functions, f"not a function: {value!r}"
        return functions[value.target]

    # Event source mappings.
    for logical_id in sam.of_type("AWS::Lambda::EventSourceMapping"):
        p = sam.props(logical_id)
        binary = fn_of(p["FunctionName"])
        on_failure = p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if isinstance(on_failure, Ref):
            names[on_failure.target] = STREAM_FAILURE_QUEUE
        patterns = [json.loads(f["Pattern"]) for f in p.get("FilterCriteria", {}).get("Filters", [])]
        stack.mappings[binary] = {
            "source": p["EventSourceArn"],  # canonicalised below
            "starting_position": p.get("StartingPosition"),
            "batch_size": p.get("BatchSize"),
            "batching_window": p.get("MaximumBatchingWindowInSeconds"),
            "parallelization": p.get("ParallelizationFactor"),
            "bisect": p.get("BisectBatchOnFunctionError"),
            "max_retries": p.get("MaximumRetryAttempts"),
            "max_record_age": p.get("MaximumRecordAgeInSeconds"),
            "response_types": p.get("FunctionResponseTypes"),
            "filters": patterns or None,
            "on_failure": on_failure,
            "max_concurrency": p.get("ScalingConfig", {}).get("MaximumConcurrency"),
        }

    def canon(value: Any) -> Any:
        """A resource reference as its canonical name."""
        if isinstance(value, Ref):
            base = names.get(value.target, value.target)
            if value.attr == "StreamArn":
                return base + "#stream"
            if value.attr in ("Arn", None):
                return base
            return f"{base}.{value.attr}"
        if isinstance(value, Param):
            return "{param:" + value.name + "}"
        if isinstance(value, str):
            return _canon_text(value, lambda ref: canon(Ref(*ref.split(".", 1)) if "." in ref else Ref(ref)))
        return value

    for binary in stack.environment:
        stack.environment[binary] = {k: canon(v) for k, v in stack.environment[binary].items()}
    for m in stack.mappings.values():
        m["source"] = canon(m["source"])
        m["on_failure"] = canon(m["on_failure"]) if m["on_failure"] is not None else None
        m["max_concurrency"] = param_value(stack, m["max_concurrency"])

    # IAM: each function's role, inline policies and managed policies.
    def grants_of(document: dict[str, Any], only_if: str | None = None) -> set[Grant]:
        out: set[Grant] = set()
        for st in document["Statement"]:
            cond = only_if
            if isinstance(st, Conditional):
                cond, st = st.condition, st.value
            assert st.get("Effect") == "Allow", f"only Allow statements: {st!r}"
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            conditions = tuple(
                sorted(
                    (op, key, tuple(sorted(canon(v) for v in (vals if isinstance(vals, list) else [vals]))))
                    for op, block in st.get("Condition", {}).items()
                    for key, vals in block.items()
                )
            )
            for a in actions:
                for r in resources:
                    out.add(Grant(a, canon(r), cond, conditions))
        return out

    for binary, fn in stack.functions.items():
        role = fn.pop("role")
        assert isinstance(role, Ref) and role.attr == "Arn", f"{binary}: Role is !GetAtt <role>.Arn"
        rp = sam.props(role.target)
        trust = rp["AssumeRolePolicyDocument"]["Statement"]
        fn["trust"] = sorted(
            (s["Effect"], json.dumps(s["Principal"], sort_keys=True), s["Action"]) for s in trust
        )
        grants: set[Grant] = set()
        for policy in rp.get("Policies", []):
            grants |= grants_of(policy["PolicyDocument"])
        for arn in rp.get("ManagedPolicyArns", []):
            assert isinstance(arn, Ref), f"{binary}: managed policies of this template only: {arn!r}"
            grants |= grants_of(sam.props(arn.target)["PolicyDocument"])
        stack.grants[binary] = grants
        fn["log_group"] = canon(fn["log_group"])

    # Schedules (ScheduleV2 events), with the role the scheduler acts as.
    for logical_id, binary in functions.items():
        for event in sam.props(logical_id).get("Events", {}).values():
            if event["Type"] != "ScheduleV2":
                continue
            e = event["Properties"]
            role = e.get("RoleArn")
            assert isinstance(role, Ref) and role.attr == "Arn", f"{binary}: the schedule's RoleArn is !GetAtt <role>.Arn"
            rp = sam.props(role.target)
            grants = set()
            for policy in rp.get("Policies", []):
                grants |= grants_of(policy["PolicyDocument"])
            assert not rp.get("ManagedPolicyArns"), f"{role.target}: inline policies only"
            retry = e.get("RetryPolicy", {})
            stack.schedules[binary] = {
                "expression": canon(e.get("ScheduleExpression")),
                "state": canon(e.get("State")),
                "flexible_window": e.get("FlexibleTimeWindow", {}).get("Mode"),
                "retry": (retry.get("MaximumRetryAttempts"), retry.get("MaximumEventAgeInSeconds")),
                "input": json.loads(e["Input"]) if "Input" in e else None,
                "trust": sorted(
                    (
                        s["Effect"],
                        json.dumps(s["Principal"], sort_keys=True),
                        s["Action"],
                        tuple(
                            sorted(
                                (op, key, tuple(sorted(vals if isinstance(vals, list) else [vals])))
                                for op, block in s.get("Condition", {}).items()
                                for key, vals in block.items()
                            )
                        ),
                    )
                    for s in rp["AssumeRolePolicyDocument"]["Statement"]
                ),
                "grants": grants,
            }

    # Tables.
    for logical_id in sam.of_type("AWS::DynamoDB::Table"):
        p = sam.props(logical_id)
        ttl = p.get("TimeToLiveSpecification")
        keys = {k["KeyType"]: k["AttributeName"] for k in p["KeySchema"]}
        types = {a["AttributeName"]: a["AttributeType"] for a in p["AttributeDefinitions"]}
        stack.tables[names.get(logical_id, logical_id)] = {
            "billing": p.get("BillingMode"),
            "keys": tuple(keys[t] for t in ("HASH", "RANGE") if t in keys),
            "key_types": tuple(types[keys[t]] for t in ("HASH", "RANGE") if t in keys),
            "stream": p.get("StreamSpecification", {}).get("StreamViewType"),
            "ttl": ttl["AttributeName"] if ttl and ttl.get("Enabled") is True else None,
            "pitr": p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"),
            "sse": p.get("SSESpecification", {}).get("SSEEnabled"),
            "deletion_protection": canon(p.get("DeletionProtectionEnabled")),
        }

    # Queues.
    for logical_id in sam.of_type("AWS::SQS::Queue"):
        p = sam.props(logical_id)
        redrive = p.get("RedrivePolicy")
        stack.queues[names.get(logical_id, logical_id)] = {
            "visibility": p.get("VisibilityTimeout", 30),
            "retention": p.get("MessageRetentionPeriod", 345600),
            "sse": "sqs-managed" if p.get("SqsManagedSseEnabled") else p.get("KmsMasterKeyId"),
            "redrive": (canon(redrive["deadLetterTargetArn"]), int(redrive["maxReceiveCount"])) if redrive else None,
        }

    # HTTP API.
    apis = sam.of_type("AWS::Serverless::HttpApi")
    assert len(apis) == 1, "one HTTP API"
    ((api_id, _),) = apis.items()
    api = sam.props(api_id)
    route_settings = api.get("DefaultRouteSettings", {})
    stack.throttling = {
        "rate": param_value(stack, route_settings.get("ThrottlingRateLimit")),
        "burst": param_value(stack, route_settings.get("ThrottlingBurstLimit")),
        "access_logs": "AccessLogSettings" in api,
    }
    for logical_id, binary in functions.items():
        for event in sam.props(logical_id).get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            e = event["Properties"]
            assert e.get("ApiId") == Ref(api_id), f"{binary}: route on the stack's HTTP API"
            auth = e.get("Auth", {}).get("Authorizer", "NONE")
            stack.routes[f"{e['Method'].upper()} {e['Path']}"] = {
                "function": binary,
                "authorization": auth,
                "payload_format": str(e.get("PayloadFormatVersion")),
            }

    # Alarms.
    for logical_id in sam.of_type("AWS::CloudWatch::Alarm"):
        p = sam.props(logical_id)
        dims = {}
        for d in p.get("Dimensions", []):
            value = d["Value"]
            if isinstance(value, Ref) and value.target in functions:
                dims[d["Name"]] = "function:" + functions[value.target]
            elif isinstance(value, Ref) and value.attr == "QueueName":
                dims[d["Name"]] = names.get(value.target, value.target)
            else:
                dims[d["Name"]] = canon(value)
        actions = p.get("AlarmActions")
        stack.alarms.add(
            _alarm(
                p["Namespace"],
                p["MetricName"],
                dims,
                p["Statistic"],
                p["Period"],
                p["EvaluationPeriods"],
                param_value(stack, p["Threshold"]),
                p["ComparisonOperator"],
                p.get("TreatMissingData"),
                actions.condition if isinstance(actions, Conditional) else actions,
            )
        )

    # Dashboard: the body is the JSON text of an Fn::Sub.
    dashboards = sam.of_type("AWS::CloudWatch::Dashboard")
    assert len(dashboards) <= 1, f"one dashboard: {sorted(dashboards)}"
    for logical_id in dashboards:
        names[logical_id] = DASHBOARD
        p = sam.props(logical_id)
        text = p["DashboardBody"]
        assert isinstance(text, str), f"{logical_id}: DashboardBody is one !Sub of JSON text"
        # A number from a parameter stands unquoted: quote it to parse.
        text = re.sub(r'(":\s*)(\{param:\w+\})', r'\1"\2"', text)

        def sam_resource(v: Any) -> Any:
            # What a dimension takes: a function's name (its Ref), a queue's
            # name (not its Ref, the URL).
            m = re.fullmatch(r"\{ref:(\w+)(?:\.(\w+))?\}", v) if isinstance(v, str) else None
            if m and m.group(1) in names:
                kind = sam.resources[m.group(1)]["Type"]
                if (kind, m.group(2)) in (("AWS::Serverless::Function", None), ("AWS::SQS::Queue", "QueueName")):
                    return names[m.group(1)]
            return v

        stack.dashboard = {
            "name": canon(p.get("DashboardName")),
            "widgets": dashboard_widgets(json.loads(text), sam_resource),
        }

    # Outputs: which canonical resources (or the API) they expose.
    for name, out in sam.doc.get("Outputs", {}).items():
        value = sam.resolve(out["Value"])
        stack.named_outputs[name] = canon(value)
        if isinstance(value, Ref):
            stack.outputs.add(canon(value))
        elif isinstance(value, str) and "execute-api" in value:
            if value.endswith("/hooks"):
                stack.outputs.add("webhook-base-url")
            elif value.endswith("/admin"):
                stack.outputs.add("admin-base-url")
            else:
                stack.outputs.add(value)
    return stack


def _alarm(namespace, metric, dims, statistic, period, evaluations, threshold, comparison, missing, actions):
    return tuple(
        sorted(
            {
                "namespace": namespace,
                "metric": metric,
                "dimensions": tuple(sorted(dims.items())),
                "statistic": statistic,
                "period": int(period),
                "evaluation_periods": int(evaluations),
                "threshold": int(threshold),
                "comparison": comparison,
                "missing_data": missing,
                "actions": actions,
            }.items()
        )
    )


def _canon_text(text: str, canon_ref) -> str:
    """Canonical form of an ARN template: `{ref:X.Arn}/stream/*` is the
    stream's sub-ARNs, `{ref:LogGroup.arn}:*` a log group's streams, the
    SSM prefix pattern the SSM parameters; other text is kept."""
    m = re.fullmatch(r"\{ref:([^}]+)\}(.*)", text)
    if m:
        base = canon_ref(m.group(1))
        rest = m.group(2)
        if rest == "/stream/*":
            return base + "#stream/*"
        if rest == ":*" and base.startswith("log-group:"):
            return base
        return base + rest
    if text == "arn:{partition}:ssm:{region}:{account}:parameter{param:ssm_parameter_prefix}/*":
        return SSM_PARAMETERS
    if text == "arn:{partition}:ssm:{region}:{account}:parameter{param:ssm_parameter_prefix}/handshake/*":
        return SSM_HANDSHAKE_PARAMETERS
    return text


# --------------------------------------------------------------- Terraform

_HCL = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
_DATA_PLACEHOLDERS = {
    "data.aws_partition.current.partition": "{partition}",
    "data.aws_region.current.name": "{region}",
    "data.aws_caller_identity.current.account_id": "{account}",
}


class Terraform:
    def __init__(self, module: Path = TF_MODULE):
        self.module = module
        self.resources: dict[str, dict[str, Any]] = {}  # "type.name" -> body
        self.data: dict[str, dict[str, Any]] = {}  # "data.type.name" -> body
        self.locals: dict[str, Any] = {}
        self.variables: dict[str, Any] = {}
        for path in sorted(module.glob("*.tf")):
            doc = hcl2.loads(path.read_text(), serialization_options=_HCL)
            for block in doc.get("resource", []):
                for kind, named in block.items():
                    for name, body in named.items():
                        self.resources[f"{kind}.{name}"] = body
            for block in doc.get("data", []):
                for kind, named in block.items():
                    for name, body in named.items():
                        self.data[f"data.{kind}.{name}"] = body
            for block in doc.get("locals", []):
                self.locals.update(block)
            for block in doc.get("variable", []):
                for name, body in block.items():
                    self.variables[name] = body.get("default")

    def for_each(self, body: dict[str, Any], key: str) -> tuple[str, Any]:
        """`each` of a for_each resource or block at `key`: each.value is the
        collection's value (a set's value is its key)."""
        collection = self.resolve(body["for_each"])
        if isinstance(collection, dict):
            assert key in collection, f"no {key!r} in {body['for_each']}"
            return key, collection[key]
        return key, key

    # A small evaluator for the expressions the module uses.
    def resolve(self, value: Any, each: tuple[str, Any] | None = None) -> Any:
        if isinstance(value, list):
            return [self.resolve(v, each) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v, each) for k, v in value.items()}
        if not isinstance(value, str):
            return value
        whole = re.fullmatch(r"\$\{(.*)\}", value, re.S)
        if whole and "${" not in whole.group(1):
            return self.expr(whole.group(1).strip(), each)
        return re.sub(r"\$\{([^{}]*)\}", lambda m: self._placeholder(m.group(1), each), value)

    def _placeholder(self, expr: str, each: tuple[str, Any] | None) -> str:
        expr = expr.strip()
        if expr in _DATA_PLACEHOLDERS:
            return _DATA_PLACEHOLDERS[expr]
        value = self.expr(expr, each)
        if isinstance(value, Param):
            return "{param:" + value.name + "}"
        if isinstance(value, Ref):
            return "{ref:" + value.target + ("." + value.attr if value.attr else "") + "}"
        return str(value)

    def expr(self, expr: str, each: tuple[str, Any] | None = None) -> Any:
        if expr in _DATA_PLACEHOLDERS:
            return _DATA_PLACEHOLDERS[expr]
        m = re.fullmatch(r"merge\(([^()]*)\)", expr)
        if m:
            # merge(a, b, …) of maps named by paths: later keys win.
            merged: dict[str, Any] = {}
            for arg in m.group(1).split(","):
                value = self.expr(arg.strip(), each)
                assert isinstance(value, dict), f"{expr}: {arg.strip()} is not a map"
                merged.update(value)
            return merged
        m = re.fullmatch(r"jsonencode\((.*)\)", expr, re.S)
        if m:
            return self.resolve(hcl2.loads(f"x = {m.group(1)}\n", serialization_options=_HCL)["x"], each)
        m = re.fullmatch(r"tostring\((.*)\)", expr)
        if m:
            # A number as text: the value itself for these comparisons.
            return self.expr(m.group(1), each)
        if re.fullmatch(r"-?\d+", expr):
            return int(expr)
        path = _path(expr)
        if path is None:
            return "${" + expr + "}"  # an expression this evaluator leaves as text
        root, rest = path[0], path[1:]
        if root == "var":
            return Param(rest[0])
        if root == "each":
            assert each is not None, f"{expr} outside for_each"
            if rest == ["key"]:
                return each[0]
            assert rest[0] == "value", expr
            return self._walk(each[1], rest[1:], expr, each)
        if root == "local":
            return self._walk(self.resolve(self.locals[rest[0]], each), rest[1:], expr, each)
        if root == "data":
            return Ref(".".join(path[:3]), ".".join(rest[2:]) or None)
        # a resource: type.name[index].attr
        address = f"{root}.{rest[0]}"
        assert address in self.resources, f"{expr}: no resource {address}"
        tail = rest[1:]
        if tail and tail[0].startswith("["):
            index = tail[0][1:-1]
            address += f"[{self.expr(index, each) if index.startswith('each.') else index.strip(chr(34))}]"
            tail = tail[1:]
        return Ref(address, ".".join(tail) or None)

    def _walk(self, value: Any, rest: list[str], expr: str, each: tuple[str, Any] | None = None) -> Any:
        for part in rest:
            key = part[1:-1] if part.startswith("[") else part
            key = self.expr(key, each) if key.startswith("each.") else key.strip('"')
            assert isinstance(value, dict) and key in value, f"{expr}: no {key}"
            value = self.resolve(value[key], each)
        return value


def _path(expr: str) -> list[str] | None:
    """`a.b["k"].c` → ["a", "b", '["k"]', "c"]; None for anything else."""
    index = r'\[(?:"[^"]*"|each\.(?:key|value(?:\.\w+)*))\]'
    if not re.fullmatch(rf"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*|{index})*", expr):
        return None
    return re.findall(rf"{index}|[A-Za-z_][\w-]*", expr)


def _first(blocks: Any) -> dict[str, Any]:
    """A nested block (a list of one dict in python-hcl2's output)."""
    if not blocks:
        return {}
    assert isinstance(blocks, list) and len(blocks) == 1, blocks
    return blocks[0]


def load_terraform(module: Path = TF_MODULE) -> Stack:
    tf = Terraform(module)
    stack = Stack(source=str(module.relative_to(ROOT)))
    stack.parameters = dict(tf.variables)

    fn_res = tf.resources["aws_lambda_function.this"]
    assert fn_res["for_each"] == "${local.functions}", "aws_lambda_function.this is for_each local.functions"
    binaries = list(tf.resolve(tf.locals["functions"]))

    names: dict[str, str] = {}
    for binary in binaries:
        body = tf.resolve(fn_res, tf.for_each(fn_res, binary))
        env = _first(body.get("environment"))["variables"]
        logging = _first(body.get("logging_config"))
        stack.functions[binary] = {
            "build": ("cargo-lambda-zip", body["filename"]),
            "runtime": body.get("runtime"),
            "architectures": body.get("architectures"),
            "handler": body.get("handler"),
            "memory": body.get("memory_size"),
            "timeout": body.get("timeout"),
            "log_format": logging.get("log_format"),
            "application_log_level": logging.get("application_log_level"),
            "system_log_level": logging.get("system_log_level"),
            "log_group": logging.get("log_group"),
            "role": body.get("role"),
        }
        stack.environment[binary] = env
        for var, value in env.items():
            if isinstance(value, Ref):
                names[value.target] = var
                stack.wiring.setdefault(var, set()).add(f"{value.target}.{value.attr}")
        if isinstance(logging.get("log_group"), Ref):
            names[logging["log_group"].target] = log_group(binary)
        names[f"aws_lambda_function.this[{binary}]"] = "function:" + binary

    def fn_of(value: Any) -> str:
        assert isinstance(value, Ref) and value.target.startswith("aws_lambda_function.this["), value
        return value.target[len("aws_lambda_function.this[") : -1]

    mapping_bodies = {a: b for a, b in tf.resources.items() if a.startswith("aws_lambda_event_source_mapping.")}
    for address, raw in mapping_bodies.items():
        p = tf.resolve(raw)
        binary = fn_of(p["function_name"])
        on_failure = _first(_first(p.get("destination_config")).get("on_failure")).get("destination_arn")
        if isinstance(on_failure, Ref):
            names[on_failure.target] = STREAM_FAILURE_QUEUE
        filters = [f["pattern"] for f in _first(p.get("filter_criteria")).get("filter", [])]
        stack.mappings[binary] = {
            "source": p["event_source_arn"],
            "starting_position": p.get("starting_position"),
            "batch_size": p.get("batch_size"),
            "batching_window": p.get("maximum_batching_window_in_seconds"),
            "parallelization": p.get("parallelization_factor"),
            "bisect": p.get("bisect_batch_on_function_error"),
            "max_retries": p.get("maximum_retry_attempts"),
            "max_record_age": p.get("maximum_record_age_in_seconds"),
            "response_types": p.get("function_response_types"),
            "filters": filters or None,
            "on_failure": on_failure,
            "max_concurrency": _first(p.get("scaling_config")).get("maximum_concurrency"),
        }

    def canon(value: Any) -> Any:
        if isinstance(value, Ref):
            base = names.get(value.target, value.target)
            if value.attr == "stream_arn":
                return base + "#stream"
            # The ARN, name or URL of a resource all stand for the resource.
            if value.attr in ("arn", "name", "url", "dashboard_name"):
                return base
            return f"{base}.{value.attr}"
        if isinstance(value, Param):
            return "{param:" + value.name + "}"
        if isinstance(value, str):

            def ref(text: str) -> str:
                target, _, attr = text.rpartition(".")
                return canon(Ref(target, attr))

            return _canon_text(value, ref)
        return value

    for binary in binaries:
        stack.environment[binary] = {k: canon(v) for k, v in stack.environment[binary].items()}
    for m in stack.mappings.values():
        m["source"] = canon(m["source"])
        m["on_failure"] = canon(m["on_failure"]) if m["on_failure"] is not None else None
        m["max_concurrency"] = param_value(stack, m["max_concurrency"])

    # IAM.
    def grants_of(doc_address: str) -> set[Grant]:
        body = tf.data[doc_address]
        out: set[Grant] = set()

        def add(st: dict[str, Any], only_if: str | None, each_value: Any = None) -> None:
            assert st.get("effect", "Allow") == "Allow", st
            resources = [each_value if r == "${statement.value}" else r for r in st["resources"]]
            st = tf.resolve({**st, "resources": resources})
            conditions = tuple(
                sorted((c["test"], c["variable"], tuple(sorted(canon(v) for v in c["values"]))) for c in st.get("condition", []))
            )
            for a in st["actions"]:
                for r in st["resources"]:
                    out.add(Grant(a, canon(r), only_if, conditions))

        for st in body.get("statement", []):
            add(st, None)
        for dyn in body.get("dynamic", []):
            for label, d in dyn.items():
                assert label == "statement", label
                # The one shape used: var.X == "" ? [] : [var.X]
                m = re.fullmatch(r'\$\{var\.(\w+) == "" \? \[\] : \[var\.(\w+)\]\}', d["for_each"])
                assert m and m.group(1) == m.group(2), f"unsupported dynamic for_each {d['for_each']!r}"
                for st in d["content"]:
                    add(st, f"{m.group(1)} != ''", f"${{var.{m.group(1)}}}")
        return out

    def doc_of(value: Any) -> str:
        # data.aws_iam_policy_document.X.json
        assert isinstance(value, Ref) and value.attr == "json", value
        return value.target

    role_policy = tf.resources["aws_iam_role_policy.function"]
    attachments = {a: b for a, b in tf.resources.items() if a.startswith("aws_iam_role_policy_attachment.")}
    trust_doc = doc_of(tf.resolve(tf.resources["aws_iam_role.function"]["assume_role_policy"]))
    for binary in binaries:
        fn = stack.functions[binary]
        role = fn.pop("role")
        assert role == Ref(f"aws_iam_role.function[{binary}]", "arn"), f"{binary}: role {role!r}"
        trust = tf.data[trust_doc]["statement"]
        fn["trust"] = sorted(
            (
                s.get("effect", "Allow"),
                json.dumps({p["type"]: p["identifiers"][0] for p in s["principals"]}, sort_keys=True),
                s["actions"][0],
            )
            for s in trust
        )
        grants = grants_of(doc_of(tf.resolve(role_policy["policy"], tf.for_each(role_policy, binary))))
        for body in attachments.values():
            # Attached to the functions its for_each map names.
            collection = tf.resolve(body.get("for_each"))
            if not isinstance(collection, dict) or binary not in collection:
                continue
            assert tf.resolve(body["role"], tf.for_each(body, binary)) == Ref(f"aws_iam_role.function[{binary}]", "name")
            policy = tf.resolve(body["policy_arn"], tf.for_each(body, binary))
            assert isinstance(policy, Ref) and policy.attr == "arn", policy
            grants |= grants_of(doc_of(tf.resolve(tf.resources[policy.target]["policy"])))
        stack.grants[binary] = grants
        fn["log_group"] = canon(fn["log_group"])

    # Schedules, with the role the scheduler acts as.
    role_policies = {a: b for a, b in tf.resources.items() if a.startswith("aws_iam_role_policy.")}
    for address, raw in tf.resources.items():
        if not address.startswith("aws_scheduler_schedule."):
            continue
        p = tf.resolve(raw)
        target = _first(p.get("target"))
        binary = fn_of(target["arn"])
        role = target["role_arn"]
        assert isinstance(role, Ref) and role.attr == "arn", f"{address}: role_arn is a role's arn"
        grants = set()
        for policy_address, body in role_policies.items():
            if body.get("for_each") is None and tf.resolve(body["role"]) == Ref(role.target, "id"):
                grants |= grants_of(doc_of(tf.resolve(body["policy"])))
        trust = tf.data[doc_of(tf.resolve(tf.resources[role.target]["assume_role_policy"]))]["statement"]
        retry = _first(target.get("retry_policy"))
        stack.schedules[binary] = {
            "expression": canon(p.get("schedule_expression")),
            "state": canon(p.get("state")),
            "flexible_window": _first(p.get("flexible_time_window")).get("mode"),
            "retry": (retry.get("maximum_retry_attempts"), retry.get("maximum_event_age_in_seconds")),
            "input": target.get("input"),
            "trust": sorted(
                (
                    s.get("effect", "Allow"),
                    json.dumps({q["type"]: q["identifiers"][0] for q in s["principals"]}, sort_keys=True),
                    s["actions"][0],
                    tuple(
                        sorted(
                            (c["test"], c["variable"], tuple(sorted(tf.resolve(c["values"]))))
                            for c in s.get("condition", [])
                        )
                    ),
                )
                for s in trust
            ),
            "grants": grants,
        }

    # Tables.
    for address, raw in tf.resources.items():
        if not address.startswith("aws_dynamodb_table."):
            continue
        p = tf.resolve(raw)
        ttl = _first(p.get("ttl"))
        keys = tuple(k for k in (p.get("hash_key"), p.get("range_key")) if k)
        types = {a["name"]: a["type"] for a in p.get("attribute", [])}
        stack.tables[names.get(address, address)] = {
            "billing": p.get("billing_mode"),
            "keys": keys,
            "key_types": tuple(types[k] for k in keys),
            "stream": p.get("stream_view_type") if p.get("stream_enabled") else None,
            "ttl": ttl.get("attribute_name") if ttl.get("enabled") is True else None,
            "pitr": _first(p.get("point_in_time_recovery")).get("enabled"),
            "sse": _first(p.get("server_side_encryption")).get("enabled"),
            "deletion_protection": canon(p.get("deletion_protection_enabled")),
        }

    # Queues.
    for address, raw in tf.resources.items():
        if not address.startswith("aws_sqs_queue."):
            continue
        p = tf.resolve(raw)
        redrive = p.get("redrive_policy")
        stack.queues[names.get(address, address)] = {
            "visibility": p.get("visibility_timeout_seconds", 30),
            "retention": p.get("message_retention_seconds", 345600),
            "sse": "sqs-managed" if p.get("sqs_managed_sse_enabled") else p.get("kms_master_key_id"),
            "redrive": (canon(redrive["deadLetterTargetArn"]), int(redrive["maxReceiveCount"])) if redrive else None,
        }

    # HTTP API.
    stage = tf.resolve(tf.resources["aws_apigatewayv2_stage.default"])
    settings = _first(stage.get("default_route_settings"))
    stack.throttling = {
        "rate": param_value(stack, settings.get("throttling_rate_limit")),
        "burst": param_value(stack, settings.get("throttling_burst_limit")),
        "access_logs": bool(stage.get("access_log_settings")),
    }
    route = tf.resources["aws_apigatewayv2_route.this"]
    integration = tf.resources["aws_apigatewayv2_integration.function"]
    assert route["for_each"] == "${local.routes}", "routes come from local.routes"
    for key, r in tf.resolve(tf.locals["routes"]).items():
        body = tf.resolve(route, tf.for_each(route, key))
        target = body["target"]
        assert target == "integrations/{ref:aws_apigatewayv2_integration.function[" + r["function"] + "].id}", target
        assert body["route_key"] == key
        integ = tf.resolve(integration, tf.for_each(integration, r["function"]))
        assert integ["integration_uri"] == Ref(f"aws_lambda_function.this[{r['function']}]", "invoke_arn")
        assert integ["integration_type"] == "AWS_PROXY"
        stack.routes[key] = {
            "function": r["function"],
            "authorization": "AWS_IAM" if body["authorization_type"] == "AWS_IAM" else "NONE",
            "payload_format": str(integ.get("payload_format_version")),
        }

    # Alarms.
    for address, raw in tf.resources.items():
        if not address.startswith("aws_cloudwatch_metric_alarm."):
            continue
        for key in binaries if raw.get("for_each") == "${local.functions}" else [None]:
            p = tf.resolve(raw, tf.for_each(raw, key) if key else None)
            dims = {}
            for k, v in p.get("dimensions", {}).items():
                if isinstance(v, Ref) and v.target.startswith("aws_lambda_function.this["):
                    dims[k] = "function:" + fn_of(v)
                elif isinstance(v, Ref) and v.attr == "name":
                    dims[k] = names.get(v.target, v.target)
                else:
                    dims[k] = canon(v)
            actions = raw.get("alarm_actions")
            stack.alarms.add(
                _alarm(
                    p["namespace"],
                    p["metric_name"],
                    dims,
                    p["statistic"],
                    p["period"],
                    p["evaluation_periods"],
                    param_value(stack, p["threshold"]),
                    p["comparison_operator"],
                    p.get("treat_missing_data"),
                    "alarm_topic_arn != ''" if actions == "${local.alarm_actions}" else actions,
                )
            )

    # Dashboard: the body is a jsonencode of an object.
    dashboards = [a for a in tf.resources if a.startswith("aws_cloudwatch_dashboard.")]
    assert len(dashboards) <= 1, f"one dashboard: {dashboards}"
    for address in dashboards:
        names[address] = DASHBOARD
        p = tf.resolve(tf.resources[address])
        body = p["dashboard_body"]
        assert isinstance(body, dict), f"{address}: dashboard_body is one jsonencode({{…}})"

        def tf_resource(v: Any) -> Any:
            # What a dimension takes: a function's function_name, a queue's
            # name (not its url).
            if isinstance(v, Ref) and v.target in names:
                kind = v.target.split(".")[0]
                if (kind, v.attr) in (("aws_lambda_function", "function_name"), ("aws_sqs_queue", "name")):
                    return names[v.target]
            if isinstance(v, Ref):
                return "{ref:" + v.target + ("." + v.attr if v.attr else "") + "}"
            return v

        name = p.get("dashboard_name")
        stack.dashboard = {
            # var.name is the module's stack name (the SAM template's AWS::StackName)
            "name": "{name}" if name == Param("name") else canon(name),
            "widgets": dashboard_widgets(body, tf_resource),
        }

    # Outputs.
    for path in sorted(module.glob("*.tf")):
        doc = hcl2.loads(path.read_text(), serialization_options=_HCL)
        for block in doc.get("output", []):
            for name, body in block.items():
                value = tf.resolve(body["value"])
                stack.named_outputs[name] = canon(value)
                if isinstance(value, Ref):
                    stack.outputs.add(canon(value))
                elif isinstance(value, str) and value.endswith("/hooks"):
                    stack.outputs.add("webhook-base-url")
                elif isinstance(value, str) and value.endswith("/admin"):
                    stack.outputs.add("admin-base-url")
    return stack
