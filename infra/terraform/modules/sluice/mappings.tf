# Stream -> enqueue. INSERTs only (enqueue's own routed marks are MODIFYs).
# Enqueue reports failed records by sequence number, so only they and the
# records after them come back; a failing batch is halved to isolate a bad
# record. Retries are bounded so one record cannot hold its shard for the
# stream's whole 24 h; a batch given up on goes to the stream_failure queue,
# which is alarmed. TRIM_HORIZON: events committed before the mapping was
# enabled are enqueued too.
resource "aws_lambda_event_source_mapping" "enqueue_stream" {
  function_name                      = aws_lambda_function.this["enqueue"].arn
  event_source_arn                   = aws_dynamodb_table.events.stream_arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 100
  maximum_batching_window_in_seconds = 0
  parallelization_factor             = 1
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 20
  maximum_record_age_in_seconds      = 86400
  function_response_types            = ["ReportBatchItemFailures"]

  filter_criteria {
    filter {
      pattern = jsonencode({ eventName = ["INSERT"] })
    }
  }

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_failure.arn
    }
  }

  # The poller needs the role's stream permissions when it starts.
  depends_on = [aws_iam_role_policy.function]
}

# Queue -> deliver. Deliver reports the messages to retry (their visibility
# already set to the backoff); the rest are deleted. Ten messages a batch,
# delivered concurrently within one invocation.
resource "aws_lambda_event_source_mapping" "deliver_queue" {
  function_name                      = aws_lambda_function.this["deliver"].arn
  event_source_arn                   = aws_sqs_queue.delivery.arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 0
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.deliver_max_concurrency
  }

  depends_on = [aws_iam_role_policy.function]
}
