"""``manage.py revoke_api_key PREFIX``: revoke a key for good (the prefix is the part before the dot)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api_keys.models import APIKey
from api_keys.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke the API key with the given prefix (the 8 characters before the dot). Cannot be undone."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        prefix = options["prefix"].partition(".")[0]  # a whole key is accepted too
        try:
            api_key = api_key_revoke(prefix=prefix, actor_id="manage.py revoke_api_key", actor_type="system")
        except APIKey.DoesNotExist as exc:
            raise CommandError(f"No API key has the prefix {prefix!r}.") from exc
        self.stdout.write(f"Revoked API key {api_key.name!r} (prefix {api_key.prefix}).")
