resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts log data at rest already; a KMS key adds cost and a key policy for no gain here.
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (30 days by default); the durable record of every delivery attempt is the deliveries table.
  for_each = local.functions

  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:API Gateway calls synchronously and the event source mappings poll; the queues carry their own DLQ and the stream mapping its on-failure destination. The schedule invokes poll asynchronously, and a failed run needs no DLQ: the next run (a minute later) polls what is due.
  #checkov:skip=CKV_AWS_117:No VPC resources to reach; deliver must reach public HTTPS destinations, which in a VPC would need a NAT gateway.
  #checkov:skip=CKV_AWS_115:Concurrency is capped upstream: HTTP API throttling (receive, admin), the shard count (enqueue), the mapping's maximum_concurrency (deliver), the schedule (poll). Reserving it would fail in new accounts whose limit is 10.
  #checkov:skip=CKV_AWS_173:The environment holds table names and queue URLs only; secrets stay in SSM.
  #checkov:skip=CKV_AWS_50:The code emits no X-Ray segments; request ids in the JSON logs and the EMF metrics trace a webhook, and Active tracing would need xray:PutTraceSegments on every resource.
  #checkov:skip=CKV_AWS_272:The zips come from make build (cargo lambda), not from a signing pipeline; code signing needs a Signer profile the deployer owns.
  for_each = local.functions

  function_name    = "${var.name}-${each.key}"
  role             = aws_iam_role.function[each.key].arn
  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  handler          = "bootstrap"
  filename         = "${var.lambda_artifacts_dir}/${each.key}/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.lambda_artifacts_dir}/${each.key}/bootstrap.zip")
  memory_size      = each.value.memory_size
  timeout          = each.value.timeout

  environment {
    variables = merge(local.environment, local.function_environment[each.key])
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
    # EMF metric lines carry no level, so Lambda counts them as INFO: a
    # stricter level would drop the metrics.
    application_log_level = "INFO"
    system_log_level      = "INFO"
  }

  tags = var.tags

  # The role must be able to write logs before the first invocation.
  depends_on = [aws_iam_role_policy.function, aws_iam_role_policy_attachment.registry_read, aws_iam_role_policy_attachment.secrets_read]
}
