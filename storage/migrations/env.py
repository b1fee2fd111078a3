"""Alembic environment: migrations run on the engine the application hands over."""
from alembic import context
from sqlalchemy import Connection

from storage.models import Base


def run(connection: Connection) -> None:
    with connection.begin():
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        context.run_migrations()


def run_on_sqlite(connection: Connection) -> None:
    """Batch mode rebuilds a table (copy, drop, rename): rows of other tables pointing at it
    must not stop the drop, so foreign keys are off meanwhile (SQLite ignores the pragma
    inside a transaction), and checked once the migrations are done."""
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        run(connection)
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"a migration left {len(broken)} rows whose reference is gone "
                               f"(first: {tuple(broken[0])})")
    finally:
        connection.rollback()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


engine = context.config.attributes["engine"]
with engine.connect() as connection:
    (run_on_sqlite if connection.dialect.name == "sqlite" else run)(connection)
