"""``manage.py create_api_key NAME --scopes read,write [--expires-days N] [--quiet]``

Prints the new key once; only its hash is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api_keys.scopes import SCOPES
from api_keys.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key with the given scopes and print it (it cannot be shown again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who or what uses the key (at most 50 characters).")
        parser.add_argument(
            "--scopes",
            default="read",
            help=f"Comma-separated scopes from {', '.join(SCOPES)} (default: read). "
            "admin may do everything; write does not imply read.",
        )
        parser.add_argument("--expires-days", type=int, default=None, help="Expire after this many days.")
        parser.add_argument("--quiet", action="store_true", help="Print only the key (for scripts).")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be at least 1.")
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(days=days) if days else None
        try:
            api_key, secret = api_key_create(
                name=options["name"],
                scopes=options["scopes"],
                expiry_date=expiry,
                actor_id="manage.py create_api_key",
                actor_type="system",
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if options["quiet"]:
            self.stdout.write(secret)
            return
        self.stdout.write(
            f"Created API key {api_key.name!r} (prefix {api_key.prefix}, scopes {api_key.scopes}"
            + (f", expires {api_key.expiry_date:%Y-%m-%d %H:%M} UTC" if api_key.expiry_date else "")
            + "). Store it now; it cannot be shown again. Send it in the X-API-Key header:"
        )
        self.stdout.write(secret)
