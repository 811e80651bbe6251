//! What the commands print: status text and JSON, Prometheus metrics.
