"""Prefect tasks: each wraps one diffrec_core function and passes paths and configs, not tensors."""
