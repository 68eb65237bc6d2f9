output "webhook_base_url" {
  description = "Providers post to <this>/<source id>."
  value       = "${aws_apigatewayv2_api.http.api_endpoint}/hooks"
}

output "admin_base_url" {
  description = "The admin API (SigV4-signed requests, execute-api:Invoke), e.g. <this>/events."
  value       = "${aws_apigatewayv2_api.http.api_endpoint}/admin"
}

output "events_table_name" {
  value = aws_dynamodb_table.events.name
}

output "deliveries_table_name" {
  value = aws_dynamodb_table.deliveries.name
}

output "config_table_name" {
  value = aws_dynamodb_table.config.name
}

output "delivery_queue_url" {
  value = aws_sqs_queue.delivery.url
}

output "dead_letter_queue_url" {
  value = aws_sqs_queue.dead_letter.url
}

output "pollers_table_name" {
  description = "The pollers' states (sluice --aws --outputs-file reads it when present)."
  value       = aws_dynamodb_table.pollers.name
}

output "gates_table_name" {
  description = "The subscriptions' delivery controls and circuits (sluice --aws --outputs-file reads it when present)."
  value       = aws_dynamodb_table.gates.name
}

output "stream_failure_queue_url" {
  value = aws_sqs_queue.stream_failure.url
}

output "ssm_parameter_prefix" {
  description = "Where the ssm secrets live (sluice --aws --outputs-file reads these outputs)."
  value       = var.ssm_parameter_prefix
}

output "function_names" {
  value = { for name, fn in aws_lambda_function.this : name => fn.function_name }
}

output "dashboard_name" {
  description = "The CloudWatch dashboard of the stack (CloudWatch > Dashboards)."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
