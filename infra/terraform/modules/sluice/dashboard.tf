# One page of what the stack does: the functions' EMF metrics (namespace
# Sluice, shared/src/aws/metrics.rs), the queues, the functions and the
# stream. Kept equal to the SAM template's Dashboard; the parity test checks
# every metric against the code and the stack. The Sluice metrics carry no
# stack dimension (their Function is receive, enqueue or deliver): every
# sluice stack of the account and region adds to the same ones. Source
# values come from the config, so the per-source graphs are SEARCH
# expressions.
resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "text", x = 0, y = 0, width = 24, height = 2
        properties = {
          markdown = "Metrics in the Sluice namespace (the functions' EMF lines, see shared/src/aws/metrics.rs) have no stack dimension: they add up every sluice stack of this account and region. The AWS/Lambda and AWS/SQS metrics are this stack's."
        }
      },
      {
        type = "metric", x = 0, y = 2, width = 8, height = 6
        properties = {
          title = "receive: requests by outcome", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Sum", period = 300
          metrics = [
            ["Sluice", "received", "Function", "receive"],
            ["Sluice", "accepted", "Function", "receive"],
            ["Sluice", "duplicates", "Function", "receive"],
            ["Sluice", "handshakes", "Function", "receive"],
            ["Sluice", "rejected", "Function", "receive"],
            ["Sluice", "unavailable", "Function", "receive"],
          ]
        }
      },
      {
        type = "metric", x = 8, y = 2, width = 8, height = 6
        properties = {
          title = "receive: by source and outcome", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Sum", period = 300
          metrics = [
            [{ id = "e1", expression = "SEARCH('{Sluice,Function,Source} Function=\"receive\"', 'Sum', 300)" }],
          ]
        }
      },
      {
        type = "metric", x = 16, y = 2, width = 8, height = 6
        properties = {
          title = "receive: rejected by reason", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Sum", period = 300
          metrics = [
            [{ id = "e1", expression = "SEARCH('{Sluice,Function,Reason} Function=\"receive\" MetricName=\"rejected\"', 'Sum', 300)" }],
            [{ id = "e2", expression = "SEARCH('{Sluice,Function,Source,Reason} Function=\"receive\" MetricName=\"rejected\"', 'Sum', 300)" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 8, width = 8, height = 6
        properties = {
          title = "deliver: tasks by outcome", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Sum", period = 300
          metrics = [
            ["Sluice", "delivered", "Function", "deliver"],
            ["Sluice", "retried", "Function", "deliver"],
            ["Sluice", "failed", "Function", "deliver"],
            ["Sluice", "skipped", "Function", "deliver"],
            ["Sluice", "put_back", "Function", "deliver"],
            ["Sluice", "paused", "Function", "deliver"],
            ["Sluice", "unavailable", "Function", "deliver"],
            ["Sluice", "throttled", "Function", "deliver"],
            ["Sluice", "held", "Function", "deliver"],
            ["Sluice", "circuit_opened", "Function", "deliver"],
            ["Sluice", "circuit_closed", "Function", "deliver"],
            ["Sluice", "circuit_expired", "Function", "deliver"],
          ]
        }
      },
      {
        type = "metric", x = 8, y = 8, width = 8, height = 6
        properties = {
          title = "deliver: by subscription and outcome", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Sum", period = 300
          metrics = [
            [{ id = "e1", expression = "SEARCH('{Sluice,Function,Subscription} Function=\"deliver\" NOT MetricName=\"delivery_latency\"', 'Sum', 300)" }],
          ]
        }
      },
      {
        type = "metric", x = 16, y = 8, width = 8, height = 6
        properties = {
          title = "deliver: attempt latency (ms)", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "p50", period = 300
          metrics = [
            ["Sluice", "delivery_latency", "Function", "deliver", { stat = "p50", label = "p50" }],
            ["Sluice", "delivery_latency", "Function", "deliver", { stat = "p90", label = "p90" }],
            ["Sluice", "delivery_latency", "Function", "deliver", { stat = "p99", label = "p99" }],
            ["Sluice", "delivery_latency", "Function", "deliver", { stat = "Maximum", label = "max" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 14, width = 8, height = 6
        properties = {
          title = "enqueue: records by outcome", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Sum", period = 300
          metrics = [
            ["Sluice", "enqueued", "Function", "enqueue"],
            ["Sluice", "unrouted", "Function", "enqueue"],
            ["Sluice", "failed", "Function", "enqueue"],
          ]
        }
      },
      {
        type = "metric", x = 8, y = 14, width = 8, height = 6
        properties = {
          title = "enqueue: by source and outcome", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Sum", period = 300
          metrics = [
            [{ id = "e1", expression = "SEARCH('{Sluice,Function,Source} Function=\"enqueue\"', 'Sum', 300)" }],
          ]
        }
      },
      {
        type = "metric", x = 16, y = 14, width = 8, height = 6
        properties = {
          title = "enqueue: events stream iterator age (ms)", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Maximum", period = 60
          metrics = [
            ["AWS/Lambda", "IteratorAge", "FunctionName", aws_lambda_function.this["enqueue"].function_name, { label = "enqueue" }],
          ]
          annotations = { horizontal = [{ label = "alarm", value = var.iterator_age_alarm_ms }] }
        }
      },
      {
        type = "metric", x = 0, y = 20, width = 8, height = 6
        properties = {
          title = "delivery queue: messages", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Maximum", period = 300
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.delivery.name, { label = "visible" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", aws_sqs_queue.delivery.name, { label = "in flight or backing off" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesDelayed", "QueueName", aws_sqs_queue.delivery.name, { label = "delayed (paused)" }],
          ]
        }
      },
      {
        type = "metric", x = 8, y = 20, width = 8, height = 6
        properties = {
          title = "age of the oldest message (s)", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Maximum", period = 300
          metrics = [
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.delivery.name, { label = "delivery queue" }],
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.dead_letter.name, { label = "dead-letter queue" }],
          ]
        }
      },
      {
        type = "metric", x = 16, y = 20, width = 8, height = 6
        properties = {
          title = "dead letters and stream failures (alarmed above 0)", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Maximum", period = 300
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dead_letter.name, { label = "dead-letter queue" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.stream_failure.name, { label = "stream failures" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 26, width = 8, height = 6
        properties = {
          title = "function errors", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Sum", period = 300
          metrics = [
            ["AWS/Lambda", "Errors", "FunctionName", aws_lambda_function.this["receive"].function_name, { label = "receive" }],
            ["AWS/Lambda", "Errors", "FunctionName", aws_lambda_function.this["enqueue"].function_name, { label = "enqueue" }],
            ["AWS/Lambda", "Errors", "FunctionName", aws_lambda_function.this["deliver"].function_name, { label = "deliver" }],
            ["AWS/Lambda", "Errors", "FunctionName", aws_lambda_function.this["admin"].function_name, { label = "admin" }],
            ["AWS/Lambda", "Errors", "FunctionName", aws_lambda_function.this["poll"].function_name, { label = "poll" }],
          ]
        }
      },
      {
        type = "metric", x = 8, y = 26, width = 8, height = 6
        properties = {
          title = "function throttles", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "Sum", period = 300
          metrics = [
            ["AWS/Lambda", "Throttles", "FunctionName", aws_lambda_function.this["receive"].function_name, { label = "receive" }],
            ["AWS/Lambda", "Throttles", "FunctionName", aws_lambda_function.this["enqueue"].function_name, { label = "enqueue" }],
            ["AWS/Lambda", "Throttles", "FunctionName", aws_lambda_function.this["deliver"].function_name, { label = "deliver" }],
            ["AWS/Lambda", "Throttles", "FunctionName", aws_lambda_function.this["admin"].function_name, { label = "admin" }],
            ["AWS/Lambda", "Throttles", "FunctionName", aws_lambda_function.this["poll"].function_name, { label = "poll" }],
          ]
        }
      },
      {
        type = "metric", x = 16, y = 26, width = 8, height = 6
        properties = {
          title = "function duration p99 (ms)", view = "timeSeries", stacked = false, region = data.aws_region.current.name, stat = "p99", period = 300
          metrics = [
            ["AWS/Lambda", "Duration", "FunctionName", aws_lambda_function.this["receive"].function_name, { label = "receive" }],
            ["AWS/Lambda", "Duration", "FunctionName", aws_lambda_function.this["enqueue"].function_name, { label = "enqueue" }],
            ["AWS/Lambda", "Duration", "FunctionName", aws_lambda_function.this["deliver"].function_name, { label = "deliver" }],
            ["AWS/Lambda", "Duration", "FunctionName", aws_lambda_function.this["admin"].function_name, { label = "admin" }],
            ["AWS/Lambda", "Duration", "FunctionName", aws_lambda_function.this["poll"].function_name, { label = "poll" }],
          ]
        }
      },
    ]
  })
}
