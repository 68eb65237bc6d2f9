# One item per committed event; the conditional PutItem on pk is the dedup
# and the commit. Its stream (NEW_IMAGE) is the outbox.
resource "aws_dynamodb_table" "events" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key (server_side_encryption). A customer managed key adds a monthly key charge and a key policy to run; nothing here needs one.
  name                        = "${var.name}-events"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  stream_enabled              = true
  stream_view_type            = "NEW_IMAGE"
  deletion_protection_enabled = var.table_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

# One item per (event, subscription): status and attempt log; expires 14
# days after creation (the longest SQS retention).
resource "aws_dynamodb_table" "deliveries" {
  #checkov:skip=CKV_AWS_119:Encrypted with the AWS managed key; see the events table.
  name                        = "${var.name}-deliveries"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.table_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

# Sources and subscriptions (source#{id}, subscription#{id}); never expires.
resource "aws_dynamodb_table" "config" {
  #checkov:skip=CKV_AWS_119:Encrypted with the AWS managed key; see the events table.
  name                        = "${var.name}-config"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = var.table_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

# One item per poller (pk = poller id): its state as JSON and its claim
# (lease_owner, lease_until_ms, next_poll_at_ms for the condition). Written
# by the poll function; never expires.
resource "aws_dynamodb_table" "pollers" {
  #checkov:skip=CKV_AWS_119:Encrypted with the AWS managed key; see the events table.
  name                        = "${var.name}-pollers"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = var.table_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

# One item per subscription (pk = subscription id): the shared state of its
# delivery controls (rate limit, in-flight sends, circuit) as JSON and a
# version each write is conditioned on. Written by the deliver function;
# never expires.
resource "aws_dynamodb_table" "gates" {
  #checkov:skip=CKV_AWS_119:Encrypted with the AWS managed key; see the events table.
  name                        = "${var.name}-gates"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = var.table_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}
