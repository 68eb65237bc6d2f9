locals {
  # The functions, by the name of their binary (target/lambda/<name>/).
  #
  # Memory buys CPU in Lambda (1,769 MB = one vCPU); the binaries need a few
  # tens of MB. At 256 MB (about 1/7 of a vCPU) a warm invocation is bound
  # by its DynamoDB/SQS round trips, not by CPU (the HMAC of a 256 KiB body
  # takes about 1.3 ms), and a cold start's TLS handshakes stay short. 128 MB
  # would halve a per-ms price that is already below the per-request charge
  # while doubling the CPU-bound parts; more would buy CPU that mostly
  # waits on the network.
  #
  # Adding a function: an entry here and in local.function_environment, its
  # policy document in iam.tf and in local.function_policies, and for an
  # HTTP route an entry in local.routes.
  functions = {
    # Verify, dedup, commit. Providers give up on a webhook after 10 s
    # (GitHub) or less, and a warm request takes a few ms; the headroom
    # covers a cold start that loads the config and secrets.
    receive = { memory_size = 256, timeout = 10 }
    # A batch of 100 stream records handled concurrently (a
    # SendMessageBatch and a few UpdateItems each).
    enqueue = { memory_size = 256, timeout = 30 }
    # Up to 10 tasks delivered concurrently: one HTTP attempt may take 30 s
    # (the transport's timeout), plus the reads before and the writes after
    # it, with SDK retries.
    deliver = { memory_size = 256, timeout = 60 }
    # The admin API. 30 s is API Gateway's integration limit: a bulk replay
    # of many events makes a few calls per event.
    admin = { memory_size = 256, timeout = 30 }
    # The pollers that are due, started by the schedule (schedule.tf): a few
    # pages of up to 30 s each, and below the claim's 5 minutes, so a run
    # cut short leaves a claim that expires before the poll is due again.
    poll = { memory_size = 256, timeout = 180 }
  }

  # The functions that resolve ssm: secrets, and get secrets_read (iam.tf):
  # receive (source secrets), deliver (signing secrets), admin (checks).
  # Enqueue routes without secrets.
  secret_readers = {
    receive = local.functions.receive
    deliver = local.functions.deliver
    admin   = local.functions.admin
    poll    = local.functions.poll
  }

  # HTTP API routes: route key => the function behind it and its
  # authorization. The webhook routes are public; receive verifies each
  # provider's signature, and answers the providers' GET and HEAD checks of
  # the endpoint (405 for sources without one). The admin routes take
  # SigV4-signed requests only (callers need execute-api:Invoke on them);
  # the function trusts IAM.
  routes = {
    "POST /hooks/{source}" = { function = "receive", authorization_type = "NONE" }
    "GET /hooks/{source}"  = { function = "receive", authorization_type = "NONE" }
    "HEAD /hooks/{source}" = { function = "receive", authorization_type = "NONE" }
    "ANY /admin/{proxy+}"  = { function = "admin", authorization_type = "AWS_IAM" }
  }

  # Every function reads the same variables (shared/src/aws/settings.rs);
  # the five names are required, the two TTLs optional.
  environment = {
    SLUICE_EVENTS_TABLE     = aws_dynamodb_table.events.name
    SLUICE_DELIVERIES_TABLE = aws_dynamodb_table.deliveries.name
    SLUICE_CONFIG_TABLE     = aws_dynamodb_table.config.name
    SLUICE_QUEUE_URL        = aws_sqs_queue.delivery.url
    SLUICE_DLQ_URL          = aws_sqs_queue.dead_letter.url
    SLUICE_CONFIG_TTL_SECS  = tostring(var.config_cache_ttl_seconds)
    SLUICE_SECRETS_TTL_SECS = tostring(var.secrets_cache_ttl_seconds)
    SLUICE_SSM_PREFIX       = var.ssm_parameter_prefix
  }

  # Variables only the functions that use their resource get
  # (settings::PER_FUNCTION_VARS): the pollers and gates tables.
  function_environment = {
    receive = {}
    enqueue = {}
    deliver = { SLUICE_GATES_TABLE = aws_dynamodb_table.gates.name }
    admin = {
      SLUICE_POLLERS_TABLE = aws_dynamodb_table.pollers.name
      SLUICE_GATES_TABLE   = aws_dynamodb_table.gates.name
    }
    poll = { SLUICE_POLLERS_TABLE = aws_dynamodb_table.pollers.name }
  }

  # Each function's own policy (iam.tf); all of them also get
  # registry_read, and local.secret_readers secrets_read.
  function_policies = {
    receive = data.aws_iam_policy_document.receive.json
    enqueue = data.aws_iam_policy_document.enqueue.json
    deliver = data.aws_iam_policy_document.deliver.json
    admin   = data.aws_iam_policy_document.admin.json
    poll    = data.aws_iam_policy_document.poll.json
  }

  # SQS settings. Retention is the maximum, 14 days: the default retry
  # schedule spans about 27.5 h (33 h with +20 % jitter) and a subscription
  # may configure a longer one. The visibility timeout is 6x the deliver
  # timeout (AWS's advice for SQS event sources). Deliver sends exhausted
  # tasks to the DLQ itself; the redrive policy only catches messages that
  # keep failing outside the schedule. max_receive_count must stay above
  # the attempts of the longest schedule (8 by default): the receive count
  # is the attempt number.
  queue_retention_seconds  = 1209600
  queue_visibility_timeout = 360 # 6 x deliver's 60 s
  max_receive_count        = 20

  alarm_actions = var.alarm_topic_arn == "" ? [] : [var.alarm_topic_arn]
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
