# The poll function's schedule (EventBridge Scheduler). Each run polls the
# pollers that are due; overlapping runs poll each poller once (a
# conditional claim in the pollers table).
resource "aws_scheduler_schedule" "poll" {
  #checkov:skip=CKV_AWS_297:The schedule holds no secret (an expression and a fixed event); AWS encrypts it with its own key, and a customer managed key would add a key policy for the scheduler to run.
  name                = "${var.name}-poll"
  schedule_expression = var.poll_schedule
  state               = var.poll_schedule_state

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this["poll"].arn
    role_arn = aws_iam_role.poll_scheduler.arn

    # An EventBridge event (tests/events/scheduler-poll.json), its fields
    # filled in by the scheduler's context attributes.
    input = jsonencode({
      version       = "0"
      id            = "<aws.scheduler.execution-id>"
      "detail-type" = "Scheduled Event"
      source        = "aws.scheduler"
      time          = "<aws.scheduler.scheduled-time>"
      resources     = ["<aws.scheduler.schedule-arn>"]
      detail        = { attempt = "<aws.scheduler.attempt-number>" }
    })

    # A missed run is not retried: the next one is a minute away.
    retry_policy {
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = 60
    }
  }
}

# What EventBridge Scheduler acts as when it starts the poll function.
data "aws_iam_policy_document" "poll_scheduler_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "poll_scheduler" {
  name               = "${var.name}-poll-scheduler"
  assume_role_policy = data.aws_iam_policy_document.poll_scheduler_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "poll_scheduler" {
  statement {
    sid       = "InvokePoll"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this["poll"].arn]
  }
}

resource "aws_iam_role_policy" "poll_scheduler" {
  name   = "invoke-poll"
  role   = aws_iam_role.poll_scheduler.id
  policy = data.aws_iam_policy_document.poll_scheduler.json
}
