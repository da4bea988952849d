"""localcloud metrics: AWS service metrics and embedded-metric-format logs, published to CloudWatch."""
