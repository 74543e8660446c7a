"""OpenAPI schema adjustments (drf-spectacular postprocessing hooks)."""


def strict_request_bodies(result, generator, request, public):
    """Request bodies refuse unknown fields (`StrictSerializer`): say so in the schema, so that
    clients and schema-driven tools know (`additionalProperties: false`)."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
