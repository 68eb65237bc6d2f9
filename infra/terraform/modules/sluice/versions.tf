terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # logging_config on aws_lambda_function, scaling_config on event
      # source mappings.
      version = ">= 5.40, < 7.0"
    }
  }
}
