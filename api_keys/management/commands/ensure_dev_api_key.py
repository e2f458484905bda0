"""``manage.py ensure_dev_api_key [--path data/dev-api-key]``: the embedded quick start's key.

Creates an admin-scope key named "development" unless the file already holds a working one, and
prints it. Refuses to run with DEBUG off: a secret in a file is for a laptop, not production.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api_keys.services import dev_api_key_ensure


class Command(BaseCommand):
    help = "Create (once) and print the development API key, kept in data/dev-api-key. DEBUG only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--path", type=Path, default=Path(settings.BASE_DIR) / "data" / "dev-api-key")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Shown in the example.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "ensure_dev_api_key is for local development (DEBUG on); use create_api_key instead."
            )
        if not settings.API_AUTH_ENABLED:
            self.stdout.write("API keys are off (API_AUTH_ENABLED=false): no key is needed.")
            return
        path: Path = options["path"]
        secret, created = dev_api_key_ensure(path=path)
        state = "Created the" if created else "The"
        self.stdout.write(f"{state} development API key (admin scope; kept in {path}):")
        self.stdout.write(secret)
        base_url = options["base_url"].rstrip("/")
        self.stdout.write(f"  curl -H 'X-API-Key: {secret}' {base_url}/api/v1/translation/stats")
