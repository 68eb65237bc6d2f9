resource "aws_apigatewayv2_api" "http" {
  name          = var.name
  protocol_type = "HTTP"
  tags          = var.tags
}

resource "aws_cloudwatch_log_group" "api_access" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts log data at rest already; a KMS key adds cost and a key policy for no gain here.
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (30 days by default); the durable record of every delivery attempt is the deliveries table.
  name              = "/aws/vendedlogs/${var.name}/http-api"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      ip                 = "$context.identity.sourceIp"
      requestTime        = "$context.requestTime"
      routeKey           = "$context.routeKey"
      path               = "$context.path"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integrationErrorMessage"
    })
  }

  tags = var.tags
}

# One integration per function that has routes (local.routes).
resource "aws_apigatewayv2_integration" "function" {
  for_each = toset([for route in values(local.routes) : route.function])

  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.this[each.key].invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "this" {
  #checkov:skip=CKV_AWS_309:The webhook route is public by design: providers cannot sign AWS requests, and receive verifies each provider's own signature before anything is stored.
  for_each = local.routes

  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.key
  authorization_type = each.value.authorization_type
  target             = "integrations/${aws_apigatewayv2_integration.function[each.value.function].id}"
}

resource "aws_lambda_permission" "api" {
  for_each = local.routes

  statement_id  = "http-api-${md5(each.key)}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.value.function].function_name
  principal     = "apigateway.amazonaws.com"
  # <api>/<stage>/<method>/<path>: any stage, ANY as any method, path
  # parameters as wildcards.
  source_arn = format(
    "%s/*/%s%s",
    aws_apigatewayv2_api.http.execution_arn,
    split(" ", each.key)[0] == "ANY" ? "*" : split(" ", each.key)[0],
    replace(split(" ", each.key)[1], "/\\{[^}]+\\}/", "*"),
  )
}
