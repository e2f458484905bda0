"""Model fields shared by the apps: text compared exactly, as the contract's values are.

class Event(models.Model):
    actor_id = ExactCharField(max_length=128)
"""

from __future__ import annotations

from typing import Any

from django.db import models


def binary_collation(connection: Any) -> str | None:
    """The utf8mb4 collation comparing code point by code point without padding (MySQL/MariaDB),
    None where plain comparison is already exact (SQLite)."""
    if connection.vendor != "mysql":
        return None
    return "utf8mb4_nopad_bin" if connection.mysql_is_mariadb else "utf8mb4_0900_bin"


class ExactCharField(models.CharField):
    """A string compared byte for byte.

    MySQL/MariaDB's default collations are case-insensitive and PAD SPACE, so ``"a"``, ``"A"`` and
    ``"a "`` would be one value there. Ids and filter values are exact strings in the contract, so
    on those databases the column takes a binary NO PAD collation (SQLite compares bytes already).
    Foreign keys inherit the target column's collation, as MySQL requires.
    """

    def db_parameters(self, connection: Any) -> dict[str, Any]:
        params: dict[str, Any] = super().db_parameters(connection)
        collation = binary_collation(connection)
        if collation is not None:
            params["collation"] = collation
        return params
