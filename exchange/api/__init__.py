"""The REST API, `/api/v1/`: thin DRF views over the exchange's selectors, services and gateway.

One error format for every failure (`errors.py`), decimals as strings, bearer tokens and the
site's session for authentication, a Redis-backed throttle on order entry, and an OpenAPI schema
(drf-spectacular) served with Swagger UI and Redoc from local files.
"""
