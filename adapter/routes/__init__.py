"""Routes of no API family: health and Prometheus metrics."""
