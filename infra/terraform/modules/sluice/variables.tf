# The same knobs as the SAM template's Parameters, with the same defaults
# (infra/tests/test_parity.py compares the settings they feed).

variable "name" {
  description = "Prefix of every resource name (the SAM template uses the stack name)."
  type        = string
  default     = "sluice"

  validation {
    condition     = can(regex("^[A-Za-z0-9-]{1,40}$", var.name))
    error_message = "name: 1 to 40 letters, digits or hyphens."
  }
}

variable "lambda_artifacts_dir" {
  description = "Directory holding <function>/bootstrap.zip, as `make build` (cargo lambda build --release --arm64 --output-format zip) leaves them in target/lambda."
  type        = string
}

variable "ssm_parameter_prefix" {
  description = "Path under which the ssm: secrets live (ssm:/sluice/github). The functions may read parameters below it and nothing else."
  type        = string
  default     = "/sluice"

  validation {
    condition     = can(regex("^(/[A-Za-z0-9_.-]+)+$", var.ssm_parameter_prefix))
    error_message = "ssm_parameter_prefix: a path such as /sluice, without a trailing slash."
  }
}

variable "secrets_kms_key_arn" {
  description = "ARN of the customer managed KMS key of the SecureString parameters. Empty (the default) means the AWS managed key aws/ssm, whose key policy already lets SSM decrypt for any principal of the account that may call GetParameter, so no kms:Decrypt is granted then."
  type        = string
  default     = ""
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second the HTTP API accepts (0 would reject everything)."
  type        = number
  default     = 100

  validation {
    condition     = var.throttling_rate_limit >= 1
    error_message = "throttling_rate_limit must be at least 1."
  }
}

variable "throttling_burst_limit" {
  description = "Burst of requests the HTTP API accepts above the rate."
  type        = number
  default     = 200

  validation {
    condition     = var.throttling_burst_limit >= 1
    error_message = "throttling_burst_limit must be at least 1."
  }
}

variable "deliver_max_concurrency" {
  description = "Most deliver invocations at once (the SQS mapping's maximum_concurrency): caps the load on destinations and on the account's concurrency."
  type        = number
  default     = 10

  validation {
    condition     = var.deliver_max_concurrency >= 2 && var.deliver_max_concurrency <= 1000
    error_message = "deliver_max_concurrency: 2 to 1000."
  }
}

variable "config_cache_ttl_seconds" {
  description = "How long each function caches the config table (SLUICE_CONFIG_TTL_SECS)."
  type        = number
  default     = 60
}

variable "secrets_cache_ttl_seconds" {
  description = "How long each function caches SSM parameter values (SLUICE_SECRETS_TTL_SECS)."
  type        = number
  default     = 300
}

variable "log_retention_days" {
  description = "Retention of the function and access logs."
  type        = number
  default     = 30
}

variable "iterator_age_alarm_ms" {
  description = "Alarm when the oldest unprocessed stream record is older than this (ms)."
  type        = number
  default     = 60000
}

variable "alarm_topic_arn" {
  description = "SNS topic notified by the alarms; empty for none."
  type        = string
  default     = ""
}

variable "poll_schedule" {
  description = "How often the poll function runs (an EventBridge Scheduler expression). Each run polls the pollers that are due; a poller's own interval is kept whatever this is, so it only bounds how late a poll can be."
  type        = string
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.poll_schedule))
    error_message = "poll_schedule: an EventBridge Scheduler rate(...) or cron(...) expression."
  }
}

variable "poll_schedule_state" {
  description = "DISABLED stops every poller (the schedule stays, and so do the pollers' states)."
  type        = string
  default     = "ENABLED"

  validation {
    condition     = contains(["ENABLED", "DISABLED"], var.poll_schedule_state)
    error_message = "poll_schedule_state: ENABLED or DISABLED."
  }
}

variable "table_deletion_protection" {
  description = "DynamoDB deletion protection (set false before destroying)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
