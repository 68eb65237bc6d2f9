# One role per function. Each grants the SDK calls its code makes
# (SDK_CALLS in functions/<name>/src/lib.rs, checked against moto by
# tests/tests/aws_functions.rs) on the resources it makes them on, what its
# event source mapping needs, and writing to its own log group.

data "aws_iam_policy_document" "lambda_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = each.key
  role   = aws_iam_role.function[each.key].id
  policy = local.function_policies[each.key]
}

# What every function needs to load the registry: the config table (one
# Scan).
data "aws_iam_policy_document" "registry_read" {
  statement {
    sid       = "ScanConfig"
    actions   = ["dynamodb:Scan"]
    resources = [aws_dynamodb_table.config.arn]
  }
}

resource "aws_iam_policy" "registry_read" {
  name        = "${var.name}-registry-read"
  description = "sluice functions read the config table."
  policy      = data.aws_iam_policy_document.registry_read.json
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "registry_read" {
  for_each = local.functions

  role       = aws_iam_role.function[each.key].name
  policy_arn = aws_iam_policy.registry_read.arn
}

# The ssm: secrets the config names, for the functions that resolve them
# (local.secret_readers; enqueue routes without secrets).
data "aws_iam_policy_document" "secrets_read" {
  statement {
    sid       = "ReadSecrets"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter${var.ssm_parameter_prefix}/*"]
  }

  # Only for a customer managed key: the aws/ssm key's policy already allows
  # decryption through SSM for the account's principals.
  dynamic "statement" {
    for_each = var.secrets_kms_key_arn == "" ? [] : [var.secrets_kms_key_arn]

    content {
      sid       = "DecryptSecrets"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${data.aws_region.current.name}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_policy" "secrets_read" {
  name        = "${var.name}-secrets-read"
  description = "sluice functions read the ssm secrets below the prefix."
  policy      = data.aws_iam_policy_document.secrets_read.json
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "secrets_read" {
  for_each = local.secret_readers

  role       = aws_iam_role.function[each.key].name
  policy_arn = aws_iam_policy.secrets_read.arn
}

data "aws_iam_policy_document" "receive" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["receive"].arn}:*"]
  }

  statement {
    sid       = "CommitEvents"
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.events.arn]
  }

  # Asana's X-Hook-Secret handshake: the secret it sends is written once
  # (Overwrite off), below handshake/ only, so receive can never replace a
  # secret an operator set.
  statement {
    sid       = "KeepHandshakeSecrets"
    actions   = ["ssm:PutParameter"]
    resources = ["arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter${var.ssm_parameter_prefix}/handshake/*"]
  }
}

data "aws_iam_policy_document" "enqueue" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["enqueue"].arn}:*"]
  }

  statement {
    sid       = "ReadStream"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
    resources = [aws_dynamodb_table.events.stream_arn]
  }

  statement {
    sid       = "ListStreams"
    actions   = ["dynamodb:ListStreams"]
    resources = ["${aws_dynamodb_table.events.arn}/stream/*"]
  }

  statement {
    sid       = "MarkRouted"
    actions   = ["dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.events.arn]
  }

  statement {
    sid       = "CreateDeliveries"
    actions   = ["dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.deliveries.arn]
  }

  # SendMessageBatch is authorised as sqs:SendMessage.
  statement {
    sid       = "SendTasks"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.delivery.arn]
  }

  statement {
    sid       = "StreamFailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.stream_failure.arn]
  }
}

data "aws_iam_policy_document" "deliver" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["deliver"].arn}:*"]
  }

  statement {
    sid       = "PollQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.delivery.arn]
  }

  statement {
    sid       = "Backoff"
    actions   = ["sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.delivery.arn]
  }

  # A paused subscription's task is re-queued as a fresh, delayed message,
  # so the pause adds no receives.
  statement {
    sid       = "Park"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.delivery.arn]
  }

  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }

  # The event read, and the commit of an operational notification (the
  # conditional PutItem receive makes).
  statement {
    sid       = "ReadEvents"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.events.arn]
  }

  # The claim (lease) and the attempt log: conditional updates.
  statement {
    sid       = "RecordAttempts"
    actions   = ["dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.deliveries.arn]
  }

  statement {
    sid       = "DisableOnGone"
    actions   = ["dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.config.arn]
  }

  # Delivery controls: read the state, write it back on the condition that
  # nobody else did meanwhile.
  statement {
    sid       = "Gates"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.gates.arn]
  }
}

# The admin API: the config table (config store), the event log (scans,
# event reads, a replay's PutItem, a "poll now" commit), the pollers'
# states (shown, claimed by "poll now", removed with a poller), the DLQ messages a replay settles (the
# batch calls are authorised as DeleteMessage and ChangeMessageVisibility),
# and the secrets it creates under the prefix.
data "aws_iam_policy_document" "admin" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["admin"].arn}:*"]
  }

  statement {
    sid       = "ConfigStore"
    actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.config.arn]
  }

  statement {
    sid       = "EventLog"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan"]
    resources = [aws_dynamodb_table.events.arn]
  }

  statement {
    sid       = "DeliveryLog"
    actions   = ["dynamodb:Query", "dynamodb:Scan"]
    resources = [aws_dynamodb_table.deliveries.arn]
  }

  statement {
    sid       = "PollerStates"
    actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.pollers.arn]
  }

  statement {
    sid       = "Gates"
    actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem"]
    resources = [aws_dynamodb_table.gates.arn]
  }

  statement {
    sid       = "SettleDeadLetters"
    actions   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }

  statement {
    sid       = "WriteSecrets"
    actions   = ["ssm:DeleteParameter", "ssm:PutParameter"]
    resources = ["arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter${var.ssm_parameter_prefix}/*"]
  }
}

# The poll function: the pollers' states (a Scan for what is due, the claim
# and the save: conditional UpdateItems), the commit of each new item (the
# conditional PutItem receive makes), and through registry_read and
# secrets_read the config (a Scan) and the pollers' header secrets.
data "aws_iam_policy_document" "poll" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["poll"].arn}:*"]
  }

  statement {
    sid       = "PollerStates"
    actions   = ["dynamodb:Scan", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.pollers.arn]
  }

  statement {
    sid       = "CommitEvents"
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.events.arn]
  }
}
