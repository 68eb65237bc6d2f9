# The whole stack in one region, from the zips `make build` leaves in
# target/lambda/<function>/bootstrap.zip. `make deploy-tf` builds them and
# applies this root.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "sluice"
}

variable "alarm_email" {
  description = "Email address subscribed to the alarms (confirm the subscription mail); empty for none."
  type        = string
  default     = ""
}

resource "aws_sns_topic" "alarms" {
  count = var.alarm_email == "" ? 0 : 1

  name              = "${var.name}-alarms"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

module "sluice" {
  source = "../../modules/sluice"

  name                 = var.name
  lambda_artifacts_dir = "${path.root}/../../../../target/lambda"
  alarm_topic_arn      = var.alarm_email == "" ? "" : aws_sns_topic.alarms[0].arn
}

output "webhook_base_url" {
  value = module.sluice.webhook_base_url
}

output "admin_base_url" {
  value = module.sluice.admin_base_url
}

output "events_table_name" {
  value = module.sluice.events_table_name
}

output "deliveries_table_name" {
  value = module.sluice.deliveries_table_name
}

output "config_table_name" {
  value = module.sluice.config_table_name
}

output "delivery_queue_url" {
  value = module.sluice.delivery_queue_url
}

output "dead_letter_queue_url" {
  value = module.sluice.dead_letter_queue_url
}

output "pollers_table_name" {
  value = module.sluice.pollers_table_name
}

output "gates_table_name" {
  value = module.sluice.gates_table_name
}

output "ssm_parameter_prefix" {
  value = module.sluice.ssm_parameter_prefix
}

output "dashboard_name" {
  value = module.sluice.dashboard_name
}
