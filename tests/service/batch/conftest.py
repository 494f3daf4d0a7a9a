"""The batch tests use the API tests' fixtures (databases, apps, keys): see ``tests/service/api/conftest.py``."""

from tests.service.api.conftest import data_dir, db_url, make_app, postgres, postgres_url  # noqa: F401
