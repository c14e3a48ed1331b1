"""Python clients against a running Cairn (PGHOST/PGPORT/PGUSER from the environment):
psycopg 3, SQLAlchemy 2, asyncpg, Alembic and Django as applications use them. Each check asserts what the client
sees; the script exits non-zero on the first failure. Run by crates/server/tests/python.rs."""

import os
import threading
import time
from decimal import Decimal

import psycopg
from psycopg import errors, sql

CONNINFO = f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user={os.environ['PGUSER']} dbname=postgres"


def check_psycopg():
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS py_items")
        conn.execute(
            "CREATE TABLE py_items (id serial PRIMARY KEY, name text NOT NULL UNIQUE,"
            " price numeric(10,2), tags text[], added timestamptz DEFAULT now())"
        )
        # Parameters, text and binary, client- and server-side prepared.
        conn.execute("INSERT INTO py_items (name, price, tags) VALUES (%s, %s, %s)",
                     ("apple", Decimal("1.25"), ["fruit", "red"]))
        for i in range(6):  # psycopg prepares on the server after 5 executions
            conn.execute("INSERT INTO py_items (name, price) VALUES (%s, %s)",
                         (f"item{i}", Decimal(i)), prepare=True)
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT name, price, tags FROM py_items WHERE name = %s", ("apple",))
            assert cur.fetchone() == ("apple", Decimal("1.25"), ["fruit", "red"])
        row = conn.execute("SELECT count(*), sum(price) FROM py_items").fetchone()
        assert row == (7, Decimal("16.25")), row
        # A parameter cast to a bounded type is cast as a value would be (truncated, rounded).
        row = conn.execute("SELECT %s::varchar(3), %s::numeric(4,1)", ("abcdef", Decimal("1.25")),
                           prepare=True).fetchone()
        assert row == ("abc", Decimal("1.3")), row

        # Errors carry the SQLSTATE, and the session goes on.
        try:
            conn.execute("INSERT INTO py_items (name) VALUES ('apple')")
            raise AssertionError("duplicate accepted")
        except errors.UniqueViolation as e:
            assert e.sqlstate == "23505"
        try:
            conn.execute("SELECT 1/0")
            raise AssertionError("division by zero accepted")
        except errors.DivisionByZero as e:
            assert e.sqlstate == "22012"

        # Transactions and savepoints (psycopg's nested transaction blocks).
        conn.autocommit = False
        with conn.transaction():
            conn.execute("UPDATE py_items SET price = 2 WHERE name = 'apple'")
            try:
                with conn.transaction():
                    conn.execute("UPDATE py_items SET price = 3 WHERE name = 'apple'")
                    raise RuntimeError("undo the inner block")
            except RuntimeError:
                pass
        conn.autocommit = True
        assert conn.execute("SELECT price FROM py_items WHERE name = 'apple'").fetchone() == (Decimal("2.00"),)

        # COPY in and out.
        with conn.cursor() as cur:
            with cur.copy("COPY py_items (name, price) FROM STDIN") as copy:
                for i in range(100):
                    copy.write_row((f"copied{i}", Decimal(i) / 4))
            out = []
            with cur.copy("COPY (SELECT name FROM py_items WHERE name LIKE 'copied%' ORDER BY id) TO STDOUT") as copy:
                for row in copy.rows():
                    out.append(row[0])
            assert len(out) == 100 and out[0] == "copied0", out[:3]

        # Pipeline mode.
        with conn.pipeline():
            cursors = [conn.execute("SELECT %s::int * 2", (i,)) for i in range(10)]
        assert [c.fetchone()[0] for c in cursors] == [i * 2 for i in range(10)]

        # A named (server-side) cursor reads in batches.
        conn.autocommit = False
        with conn.cursor(name="py_cursor") as cur:
            cur.itersize = 7
            cur.execute("SELECT id FROM py_items ORDER BY id")
            assert len(list(cur)) == 107
        conn.commit()
        conn.autocommit = True

        # sql.Identifier quoting and the catalogs psycopg reads for type information.
        conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("py_items")))
        info = psycopg.types.TypeInfo.fetch(conn, "numeric")
        assert info is not None and info.oid == 1700, info

    # LISTEN / NOTIFY between two connections.
    with psycopg.connect(CONNINFO, autocommit=True) as listener, \
            psycopg.connect(CONNINFO, autocommit=True) as sender:
        listener.execute("LISTEN py_channel")
        sender.execute("NOTIFY py_channel, 'hello'")
        got = next(listener.notifies(timeout=5))
        assert (got.channel, got.payload) == ("py_channel", "hello"), got

    # Cancelling a running statement.
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        threading.Timer(0.5, conn.cancel).start()
        started = time.monotonic()
        try:
            conn.execute("SELECT pg_sleep(10)")
            raise AssertionError("not cancelled")
        except errors.QueryCanceled as e:
            assert e.sqlstate == "57014"
        assert time.monotonic() - started < 5
    print("psycopg: ok")


def check_sqlalchemy():
    from sqlalchemy import ForeignKey, String, create_engine, inspect, select
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

    engine = create_engine(
        f"postgresql+psycopg://{os.environ['PGUSER']}@{os.environ['PGHOST']}:{os.environ['PGPORT']}/postgres"
    )

    class Base(DeclarativeBase):
        pass

    class Author(Base):
        __tablename__ = "sa_authors"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(100), unique=True)
        books = relationship("Book", back_populates="author")

    class Book(Base):
        __tablename__ = "sa_books"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str]
        author_id: Mapped[int] = mapped_column(ForeignKey("sa_authors.id"), index=True)
        author = relationship("Author", back_populates="books")

    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)  # asks the catalogs which tables exist
    with Session(engine) as session:
        author = Author(name="Le Guin")
        session.add_all([author, Book(title="The Dispossessed", author=author),
                         Book(title="The Lathe of Heaven", author=author)])
        session.commit()
        titles = session.scalars(
            select(Book.title).join(Author).where(Author.name == "Le Guin").order_by(Book.title)
        ).all()
        assert titles == ["The Dispossessed", "The Lathe of Heaven"], titles
    inspector = inspect(engine)
    names = inspector.get_table_names()
    assert {"sa_authors", "sa_books"} <= set(names), names
    # Reflection reads pg_class, pg_attribute, pg_constraint, pg_index... as PostgreSQL has them.
    columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns("sa_books")]
    assert columns == [("id", "INTEGER", False), ("title", "VARCHAR", False),
                       ("author_id", "INTEGER", False)], columns
    assert inspector.get_pk_constraint("sa_books")["constrained_columns"] == ["id"]
    [fk] = inspector.get_foreign_keys("sa_books")
    assert (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]) == (
        ["author_id"], "sa_authors", ["id"]), fk
    indexes = {(i["name"], i["unique"], tuple(i["column_names"])) for i in inspector.get_indexes("sa_books")}
    assert indexes == {("ix_sa_books_author_id", False, ("author_id",))}, indexes
    [unique] = inspector.get_unique_constraints("sa_authors")
    assert unique["column_names"] == ["name"], unique
    from sqlalchemy import MetaData
    reflected = MetaData()
    reflected.reflect(engine, only=["sa_authors", "sa_books"])
    books = reflected.tables["sa_books"]
    assert [c.name for c in books.columns] == ["id", "title", "author_id"]
    assert [fk.target_fullname for fk in books.foreign_keys] == ["sa_authors.id"]
    Base.metadata.create_all(engine)  # again: nothing to create
    Base.metadata.drop_all(engine)
    assert "sa_books" not in inspect(engine).get_table_names()
    print("sqlalchemy: ok")


def check_asyncpg():
    import asyncio
    import datetime
    import json
    import uuid

    import asyncpg

    params = dict(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]),
                  user=os.environ["PGUSER"], database="postgres")

    async def run():
        conn = await asyncpg.connect(**params)
        await conn.execute("DROP TABLE IF EXISTS apg_items")
        await conn.execute(
            "CREATE TABLE apg_items (id serial PRIMARY KEY, name text, amount numeric(10,2),"
            " at timestamptz, u uuid, tags text[], doc jsonb, flag bool, f float8, d date)")
        # The binary protocol, every common type both ways.
        at = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        values = ("a", Decimal("1.50"), at, uuid.UUID(int=5), ["x", "y"], json.dumps({"k": 1}),
                  True, 2.5, datetime.date(2024, 1, 2))
        await conn.execute(
            "INSERT INTO apg_items (name, amount, at, u, tags, doc, flag, f, d)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", *values)
        row = await conn.fetchrow("SELECT name, amount, at, u, tags, doc, flag, f, d FROM apg_items")
        assert tuple(row) == values, row
        # Prepared statements and their described columns.
        statement = await conn.prepare("SELECT id, name FROM apg_items WHERE id = $1")
        assert [tuple(r) for r in await statement.fetch(1)] == [(1, "a")]
        assert [(a.name, a.type.name) for a in statement.get_attributes()] == [("id", "int4"), ("name", "text")]
        # Binary COPY in, COPY out.
        await conn.copy_records_to_table(
            "apg_items", records=[(f"c{i}", Decimal(i)) for i in range(50)], columns=["name", "amount"])
        assert await conn.fetchval("SELECT count(*) FROM apg_items") == 51
        chunks = []

        async def collect(chunk):
            chunks.append(chunk)
        await conn.copy_from_query("SELECT id, name FROM apg_items ORDER BY id LIMIT 2",
                                   output=collect, format="csv")
        assert b"".join(chunks) == b"1,a\n2,c0\n"
        # Cursors (portals read in batches) inside a transaction.
        async with conn.transaction():
            ids = [r["id"] async for r in conn.cursor("SELECT id FROM apg_items ORDER BY id", prefetch=7)]
            assert ids == list(range(1, 52))
            cursor = await conn.cursor("SELECT id FROM apg_items ORDER BY id")
            assert [r["id"] for r in await cursor.fetch(3)] == [1, 2, 3]
            assert (await cursor.fetchrow())["id"] == 4
        # Errors by class, and a transaction that fails rolls back.
        try:
            await conn.execute("INSERT INTO apg_items (id) VALUES (1)")
            raise AssertionError("duplicate accepted")
        except asyncpg.UniqueViolationError as e:
            assert e.sqlstate == "23505"
        try:
            async with conn.transaction():
                await conn.execute("INSERT INTO apg_items (name) VALUES ('in tx')")
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        assert await conn.fetchval("SELECT count(*) FROM apg_items WHERE name = 'in tx'") == 0
        # Type introspection (a custom codec looks the type up in pg_type), int2vector.
        await conn.set_type_codec("numeric", encoder=str, decoder=str, schema="pg_catalog",
                                  format="text")
        assert await conn.fetchval("SELECT 1.5::numeric") == "1.5"
        assert await conn.fetchval("SELECT indkey FROM pg_index LIMIT 1") == [1]
        await conn.close()
        # A pool.
        pool = await asyncpg.create_pool(**params, min_size=2, max_size=4)
        doubled = await asyncio.gather(*[pool.fetchval("SELECT $1::int * 2", i) for i in range(8)])
        assert doubled == [i * 2 for i in range(8)], doubled
        await pool.close()

    asyncio.run(run())
    print("asyncpg: ok")


def check_alembic():
    """Alembic's autogenerate compares a model with the reflected database and its
    operations migrate it: a new table, a new column, a wider type, a unique index."""
    from alembic.autogenerate import compare_metadata, produce_migrations
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from alembic.operations.ops import ModifyTableOps
    from sqlalchemy import (Column, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                            create_engine, inspect, text)

    engine = create_engine(
        f"postgresql+psycopg://{os.environ['PGUSER']}@{os.environ['PGHOST']}:{os.environ['PGPORT']}/postgres"
    )
    before = MetaData()
    Table("al_users", before, Column("id", Integer, primary_key=True),
          Column("name", String(50), nullable=False))
    after = MetaData()
    Table("al_users", after, Column("id", Integer, primary_key=True),
          Column("name", String(100), nullable=False), Column("email", String(200)),
          Index("ix_al_users_email", "email", unique=True))
    Table("al_posts", after, Column("id", Integer, primary_key=True),
          Column("user_id", ForeignKey("al_users.id")), Column("body", Text))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS al_posts"))
        conn.execute(text("DROP TABLE IF EXISTS al_users"))
    before.create_all(engine)
    options = {"compare_type": True,
               "include_name": lambda name, kind, _: kind != "table" or name.startswith("al_")}

    def invoke(operations, ops):
        for op in ops:
            if isinstance(op, ModifyTableOps):
                invoke(operations, op.ops)
            else:
                operations.invoke(op)

    with engine.begin() as conn:  # the upgrade runs in one transaction
        context = MigrationContext.configure(conn, opts=options)
        kinds = [d[0] if isinstance(d, tuple) else [x[0] for x in d]
                 for d in compare_metadata(context, after)]
        assert kinds == ["add_table", "add_column", ["modify_type"], "add_index"], kinds
        invoke(Operations(context), produce_migrations(context, after).upgrade_ops.ops)
    with engine.begin() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts=options), after) == []
    columns = [(c["name"], str(c["type"])) for c in inspect(engine).get_columns("al_users")]
    assert columns == [("id", "INTEGER"), ("name", "VARCHAR(100)"), ("email", "VARCHAR(200)")], columns
    print("alembic: ok")


def check_django():
    """Django's migrate and ORM (django_project/check.py), in a process of its own: Django's
    settings are global to a process."""
    import subprocess
    import sys

    project = os.path.join(os.path.dirname(os.path.abspath(__file__)), "django_project")
    done = subprocess.run([sys.executable, "check.py"], cwd=project, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "django: ok" in done.stdout, done.stdout + done.stderr
    print("django: ok")


check_psycopg()
check_sqlalchemy()
check_asyncpg()
check_alembic()
check_django()
