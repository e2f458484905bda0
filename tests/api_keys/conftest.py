from tests.api_keys.fixtures import auth_enabled, make_api_key  # noqa: F401
