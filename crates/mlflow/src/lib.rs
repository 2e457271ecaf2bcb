//! Slipway mlflow.
