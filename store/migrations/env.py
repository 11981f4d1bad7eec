"""Alembic's environment: migrations run on the connection store.database passes in, inside its lock.

There is no alembic.ini and no URL here: the caller has already taken the schema lock on that connection
and begun its transaction, so Alembic joins it rather than opening its own.
"""

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
