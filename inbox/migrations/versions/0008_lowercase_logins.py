"""Operator logins are case-insensitive: stored in lower case (docs/operator-ui.md#security).

New accounts were already stored in lower case (``inbox.operators.normalize_login``), but
the login form compared the name as typed, and accounts made before (or written into the
database by hand) may have capitals. This lowercases every login, in Python (SQLite's
``lower()`` leaves Cyrillic alone), and reports each change. Two accounts that differ only
in letter case would become one login: the migration then refuses, names them and changes
nothing; rename or remove one and run ``otklik db upgrade`` again. Failed-login counters of
login names with capitals are dropped (they count names nobody can be locked out by now).

Revision ID: lowercase_logins
Revises: webchat_quota
"""

import logging
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from inbox.db import MigrationRefused

revision = "lowercase_logins"
down_revision = "webchat_quota"
branch_labels = None
depends_on = None

log = logging.getLogger("inbox.migrations")


def _normal(login: str) -> str:
    return login.strip().lower()


def upgrade() -> None:
    bind = op.get_bind()
    accounts = bind.execute(sa.text("SELECT id, login FROM operator ORDER BY id")).all()
    by_name: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for account_id, login in accounts:
        by_name[_normal(login)].append((account_id, login))
    clashes = [sorted(login for _, login in group) for group in by_name.values() if len(group) > 1]
    if clashes:
        names = "; ".join(" and ".join(repr(login) for login in group) for group in clashes)
        raise MigrationRefused(
            f"logins become case-insensitive, but these accounts differ only in letter case: "
            f"{names}. Rename or remove one of each (otklik operator list), then run "
            f"otklik db upgrade again"
        )
    for name, [(account_id, login)] in by_name.items():
        if login != name:
            bind.execute(
                sa.text("UPDATE operator SET login = :name WHERE id = :id"),
                {"name": name, "id": account_id},
            )
            log.warning("operator login %r is now %r (logins are case-insensitive)", login, name)
    counters = bind.execute(
        sa.text("SELECT id, key FROM login_throttle WHERE scope = 'login'")
    ).all()
    for counter_id, key in counters:
        if key != _normal(key):
            bind.execute(sa.text("DELETE FROM login_throttle WHERE id = :id"), {"id": counter_id})


def downgrade() -> None:
    """Nothing to undo: lower-case logins work with the old code too."""
