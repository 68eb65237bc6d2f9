# One message per (event, subscription); settings in locals.tf.
resource "aws_sqs_queue" "delivery" {
  name                       = "${var.name}-deliveries"
  visibility_timeout_seconds = local.queue_visibility_timeout
  message_retention_seconds  = local.queue_retention_seconds
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = local.max_receive_count
  })
  tags = var.tags
}

# Exhausted, refused and unreadable tasks. A message moved here by the
# redrive keeps its original enqueue time, so it can stay less than 14 days.
resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name}-dlq"
  message_retention_seconds = local.queue_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

# Where Lambda records stream batches enqueue gave up on (shard and sequence
# numbers, not the records): events committed but not routed.
resource "aws_sqs_queue" "stream_failure" {
  name                      = "${var.name}-stream-failures"
  message_retention_seconds = local.queue_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}
