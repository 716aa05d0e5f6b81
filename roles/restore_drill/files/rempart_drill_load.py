#!/usr/bin/python3
"""Rempart restore drill, loading step: a database dump read on stdin is loaded into a throw-away server as a
non-superuser and its rows are counted. A dump is data, never code.

Installed by the Ansible role ``restore_drill`` as /usr/local/lib/rempart/rempart_drill_load.py and run only in
the transient unit the drill starts for it (rempart_restore_drill.py, ``load_properties``): a dynamic user, no
network, a private /tmp and /var/tmp, the configuration, secrets, repositories, state and metrics folders made
inaccessible. The dump reaches it only as stdin; it prints one JSON object on stdout and nothing else.

  postgresql BINDIR DATABASE [PATH...]   the scratch cluster: initdb in the private /var/tmp, unix socket in it,
                                        the dump's SQL sent by psycopg2 (never psql: no meta-command exists on
                                        this path) as role ``loader``, owner of one database, no superuser
  postgresql-into DSN                   the restore onto a rebuilt server (README): the same SQL-only load, in one
                                        transaction, as the role DSN names, refused if it is a superuser or may
                                        run programs or touch server files (pg_execute_server_program...)
  mariadb DATABASE [PATH...]            the scratch server: mariadb-install-db + mariadbd --skip-networking in the
                                        private /var/tmp, the dump piped into ``mariadb --sandbox`` as user
                                        ``loader`` (privileges on DATABASE only: no FILE, SUPER, PROCESS)

Standard library and python3-psycopg2 only (no rempart_host): the same file restores a dump onto a rebuilt database
server (``postgresql-into``, roles/restore_drill/README.md), where nothing else of Rempart is installed.

PATH...: folders this step must NOT be able to read (secrets, repositories...): it refuses to run if it can, or
if it runs as root or sees a network interface other than lo.

Output: {"rows": {table: count(*) after the load}, "dump_rows": {table: rows in the dump's COPY/INSERT data},
"skipped": {what: n}, "sandbox": {...}} or {"error": "...", "refused": bool, "sandbox": {...}}; exit 0 / 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

MAX_SEGMENT = 256 << 20  # SQL between two COPY blocks held in memory: pg_dump's schema, never its data
# psql's own guard lines (pg_dump >= 15.14, CVE-2025-8714): nothing to do without psql, skipped
PSQL_RESTRICT = re.compile(rb"^\\(?:un)?restrict [A-Za-z0-9]+\r?\n?$")
COPY_FROM_STDIN = re.compile(rb"^COPY (.+) FROM stdin;\n$")
COPY_END = (b"\\.\n", b"\\.\r\n", b"\\.")
# What pg_restore --no-owner --no-privileges leaves out: the scratch cluster has none of the source's roles and
# the loading role may not take another role's identity (pg_dump writes each of these on one line).
OWNERSHIP = re.compile(
    rb"^(?:ALTER [A-Z ]+ .* OWNER TO .*|GRANT .*|REVOKE .*|ALTER DEFAULT PRIVILEGES .*|SET SESSION AUTHORIZATION .*"
    rb"|SET ROLE .*);\r?\n?$"
)
MARIADB_INSERT = re.compile(rb"^INSERT INTO `((?:[^`]|``)+)` (?:\([^)]*\) )?VALUES\s")
MARIADB_TOKENS = re.compile(rb"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|[();]", re.DOTALL)
# DEFINER=`user`@`host`: creating an object for another account needs SUPER, which the loader never has
MARIADB_DEFINER = re.compile(rb"DEFINER=`(?:[^`]|``)*`@`(?:[^`]|``)*`\s?")
COUNT_POSTGRESQL = """
SELECT format('%I.%I', n.nspname, c.relname),
       (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname),
                                            false, true, '')))[1]::text::bigint
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
"""
COUNT_MARIADB = (
    "SELECT CONCAT('SELECT ', QUOTE(table_name), ', COUNT(*) FROM `', REPLACE(table_name, '`', '``'), '`;') "
    "FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
)


class Refused(Exception):
    """The dump asks for something a dump may not do: nothing more of it is loaded."""


class LoadError(Exception):
    """The load failed (the message never quotes the dump's content)."""


def run(*args: str, env: dict[str, str] | None = None, stdin: IO[bytes] | None = None) -> str:
    result = subprocess.run(list(args), capture_output=True, env=env, stdin=stdin, check=False)
    if result.returncode != 0:
        raise LoadError(f"{Path(args[0]).name} exited {result.returncode}: {server_message(result.stderr)}")
    return result.stdout.decode("utf-8", "replace")


def server_message(stderr: bytes) -> str:
    """The last error line, cut before any quote of the dump ("near '...'", "LINE 1: ...")."""
    lines = [x for x in stderr.decode("utf-8", "replace").splitlines() if x.strip()]
    line = next((x for x in reversed(lines) if "ERROR" in x or "FATAL" in x), lines[-1] if lines else "")
    return re.split(r" near '|LINE \d+:", line)[0][:300]


def sandbox_facts(forbidden: Sequence[str]) -> dict[str, Any]:
    """What this process can reach; the load refuses to start unless it is confined."""
    readable = []
    for path in forbidden:
        try:
            os.listdir(path)
            readable.append(path)
        except OSError:
            pass
    try:  # this process's network namespace (sysfs may still show the host's)
        lines = Path("/proc/self/net/dev").read_text(encoding="ascii").splitlines()[2:]
        interfaces = sorted(line.split(":", 1)[0].strip() for line in lines)
    except OSError:
        interfaces = []
    return {"uid": os.getuid(), "user": os.environ.get("USER") or str(os.getuid()),
            "interfaces": interfaces, "readable_forbidden_paths": readable}  # fmt: skip


def confinement_problems(facts: dict[str, Any]) -> list[str]:
    problems = []
    if facts["uid"] == 0:
        problems.append("runs as root")
    if facts["readable_forbidden_paths"]:
        problems.append(f"can read {', '.join(facts['readable_forbidden_paths'])}")
    if [i for i in facts["interfaces"] if i != "lo"]:
        problems.append(f"has network interfaces {', '.join(facts['interfaces'])}")
    return problems


# --------------------------------------------------------------------------- PostgreSQL


class CopyData:
    """File-like view of one COPY ... FROM stdin block of the dump (psycopg2 copy_expert reads it)."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self.lines, self.rows, self.ended, self.buffer = lines, 0, False, b""

    def read(self, size: int = -1) -> bytes:
        while not self.ended and (size < 0 or len(self.buffer) < size):
            line = next(self.lines, None)
            if line is None:
                raise LoadError("the dump ends inside a COPY block")
            if line in COPY_END:
                self.ended = True
                break
            self.rows += 1
            self.buffer += line
        if size < 0:
            size = len(self.buffer)
        chunk, self.buffer = self.buffer[:size], self.buffer[size:]
        return chunk


class PostgresStream:
    """A plain pg_dump stream cut into SQL segments and COPY blocks. psql is never involved, so no meta-command
    can run; a line that starts with a backslash outside COPY data is refused anyway, to say so plainly."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.lines = iter(handle)
        self.number = 0
        self.dump_rows: dict[str, int] = {}
        self.skipped = {"ownership_and_privileges": 0, "psql_restrict_lines": 0}

    def _lines(self) -> Iterator[bytes]:
        for line in self.lines:
            self.number += 1
            yield line

    def load(self, cursor: Any) -> None:
        segment: list[bytes] = []
        size = 0
        lines = self._lines()
        for line in lines:
            if line.startswith(b"\\"):
                if PSQL_RESTRICT.match(line):
                    self.skipped["psql_restrict_lines"] += 1
                    continue
                raise Refused(
                    f"psql meta-command at line {self.number} of the dump (a dump is data: refused)"
                )
            if OWNERSHIP.match(line):
                self.skipped["ownership_and_privileges"] += 1
                continue
            copy = COPY_FROM_STDIN.match(line)
            if copy is None:
                segment.append(line)
                size += len(line)
                if size > MAX_SEGMENT:
                    raise LoadError(
                        f"more than {MAX_SEGMENT >> 20} MiB of SQL without COPY data (line {self.number})"
                    )
                continue
            self._execute(cursor, segment)
            segment, size = [], 0
            data = CopyData(lines)
            try:
                cursor.copy_expert(line.rstrip(b"\r\n").decode("utf-8", "replace"), data)
            except Exception as error:
                raise LoadError(f"COPY at line {self.number}: {pg_error(error)}") from None
            table = copy.group(1).split(b" (", 1)[0].decode("utf-8", "replace")
            self.dump_rows[table] = self.dump_rows.get(table, 0) + data.rows
        self._execute(cursor, segment)

    def _execute(self, cursor: Any, segment: list[bytes]) -> None:
        if all(not line.strip() or line.startswith(b"--") for line in segment):
            return  # only comments: the server would answer "empty query"
        sql = b"".join(segment)
        try:
            cursor.execute(sql)
        except Exception as error:
            raise LoadError(f"SQL before line {self.number}: {pg_error(error)}") from None


def pg_error(error: Exception) -> str:
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return (primary or type(error).__name__).split(" at or near ")[0][:300]  # never the dump's token


PRIVILEGED = """
SELECT rolsuper OR pg_has_role(current_user, 'pg_execute_server_program', 'USAGE')
       OR pg_has_role(current_user, 'pg_write_server_files', 'USAGE')
       OR pg_has_role(current_user, 'pg_read_server_files', 'USAGE')
FROM pg_catalog.pg_roles WHERE rolname = current_user
"""


def load_as_unprivileged(connection: Any, handle: IO[bytes]) -> dict[str, Any]:
    """The dump's SQL, in one transaction, as a role that can neither run programs nor touch server files."""
    stream = PostgresStream(handle)
    with connection.cursor() as cursor:
        cursor.execute(PRIVILEGED)
        if cursor.fetchone() != (False,):
            raise Refused("the loading role is a superuser or may run programs or read/write server files")
        stream.load(cursor)
        cursor.execute(COUNT_POSTGRESQL)
        rows = {name: int(count) for name, count in cursor.fetchall()}
    connection.commit()
    connection.close()
    return {"rows": rows, "dump_rows": stream.dump_rows, "skipped": stream.skipped}


def load_postgresql_into(dsn: str, handle: IO[bytes]) -> dict[str, Any]:
    """The documented restore onto a rebuilt server: DSN names the database and its owning role (no superuser);
    the password, if any, comes from PGPASSWORD or ~/.pgpass, never the command line."""
    import psycopg2

    return load_as_unprivileged(psycopg2.connect(dsn), handle)


def load_postgresql(bindir: str, database: str, handle: IO[bytes], root: Path) -> dict[str, Any]:
    import psycopg2  # Debian python3-psycopg2, on the backup server only

    del database  # the scratch database is always "drill": no name from the dump or the client reaches SQL
    data, socket = root / "pgdata", root / "pgsock"
    socket.mkdir(mode=0o700)
    binaries = Path(bindir)
    run(str(binaries / "initdb"), "-D", str(data), "--auth-local=peer", "--auth-host=reject", "-E", "UTF8",
        "--locale=C", "--no-sync")  # fmt: skip
    # the superuser (this dynamic user) by peer only; "loader" by password, database "drill" only
    (data / "pg_hba.conf").write_text(
        "local drill loader scram-sha-256\nlocal all all peer\n", encoding="utf-8"
    )
    options = (f"-c listen_addresses='' -c unix_socket_directories='{socket}' -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off -c jit=off -c max_wal_size=4GB -c wal_level=minimal -c max_wal_senders=0")  # fmt: skip
    run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w", "-t", "120",
        "start")  # fmt: skip
    try:
        password = secrets.token_hex(24)
        admin = psycopg2.connect(host=str(socket), dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("CREATE ROLE loader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                           "NOBYPASSRLS PASSWORD %s", (password,))  # fmt: skip
            cursor.execute("CREATE DATABASE drill OWNER loader")
        admin.close()
        connection = psycopg2.connect(host=str(socket), dbname="drill", user="loader", password=password)
        return load_as_unprivileged(connection, handle)
    finally:
        subprocess.run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, check=False)  # fmt: skip


# --------------------------------------------------------------------------- MariaDB


class InsertRows:
    """Rows of a mariadb-dump stream, per table: tuples of its INSERT INTO `t` VALUES (...),(...); statements,
    on one line or one tuple per line (10.11), quoted strings skipped."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.table: str | None = None
        self.depth = 0

    def feed(self, line: bytes) -> None:
        start = 0
        if self.table is None:
            insert = MARIADB_INSERT.match(line)
            if insert is None:
                return
            self.table = insert.group(1).replace(b"``", b"`").decode("utf-8", "replace")
            self.rows.setdefault(self.table, 0)
            self.depth, start = 0, insert.end()
        for token in MARIADB_TOKENS.finditer(line, start):
            if token.group() == b"(":
                self.rows[self.table] += self.depth == 0
                self.depth += 1
            elif token.group() == b")":
                self.depth -= 1
            elif token.group() == b";" and self.depth == 0:
                self.table = None
                return


def filter_mariadb(handle: IO[bytes], sink: IO[bytes], counter: InsertRows, skipped: dict[str, int]) -> None:
    for line in handle:
        if b"DEFINER=" in line:
            line, count = MARIADB_DEFINER.subn(b"", line)
            skipped["definer_clauses"] += count
        counter.feed(line)
        sink.write(line)


def load_mariadb(database: str, handle: IO[bytes], root: Path) -> dict[str, Any]:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,62}", database):
        raise LoadError("database name outside [A-Za-z_][A-Za-z0-9_-]*")
    data, socket = root / "data", root / "mariadb.sock"
    (root / "no-files").mkdir(mode=0o500)  # secure_file_priv: an empty folder nobody may write
    run("mariadb-install-db", "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
        "--skip-test-db", "--skip-name-resolve")  # fmt: skip
    server = subprocess.Popen(
        ["mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={socket}", "--skip-networking",
         f"--pid-file={root / 'mariadb.pid'}", f"--log-error={root / 'server.log'}", "--innodb-use-native-aio=0",
         "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=128M", "--skip-log-bin",
         "--local-infile=0", f"--secure-file-priv={root / 'no-files'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(root), "EDITOR": "/bin/false",
           "VISUAL": "/bin/false", "PAGER": "cat", "MYSQL_HISTFILE": "/dev/null"}  # fmt: skip
    client = [
        "mariadb",
        "--no-defaults",
        "--sandbox",
        f"--socket={socket}",
        "--batch",
        "--raw",
        "--skip-column-names",
    ]
    try:
        for _ in range(240):
            if socket.exists() and subprocess.run([*client, "--user=root", "-e", "SELECT 1"], env=env,
                                                  capture_output=True, check=False).returncode == 0:  # fmt: skip
                break
            if server.poll() is not None:
                raise LoadError(f"mariadbd exited {server.returncode} while starting")
            time.sleep(0.5)
        else:
            raise LoadError("mariadbd did not answer within 120 s")
        password = secrets.token_hex(24)
        setup = (f"CREATE DATABASE `{database}`; CREATE USER 'loader'@'localhost' IDENTIFIED BY '{password}'; "
                 f"GRANT ALL PRIVILEGES ON `{database}`.* TO 'loader'@'localhost'; "
                 "DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES; "
                 "ALTER USER 'root'@'localhost' ACCOUNT LOCK;")  # fmt: skip
        run(*client, "--user=root", "-e", setup, env=env)
        loader = [*client, "--user=loader", f"--database={database}"]
        loader_env = {**env, "MYSQL_PWD": password}
        grants = run(*loader, "-e", "SHOW GRANTS", env=loader_env).splitlines()
        if [g for g in grants if " ON *.* " in g and not g.startswith("GRANT USAGE ON *.* ")]:
            raise LoadError("the loading user holds a global privilege")
        counter = InsertRows()
        skipped = {"definer_clauses": 0}
        with tempfile.TemporaryFile(dir=root) as errors:
            process = subprocess.Popen(loader, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors,
                                       env=loader_env)  # fmt: skip
            assert process.stdin is not None
            with contextlib.suppress(
                BrokenPipeError
            ):  # the client stopped at an error: its exit code says which
                filter_mariadb(handle, process.stdin, counter, skipped)
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            if process.wait() != 0:
                errors.seek(0)
                message = server_message(errors.read())
                if "sandbox" in message:
                    raise Refused(f"mariadb client command in the dump (a dump is data: refused): {message}")
                raise LoadError(f"mariadb exited {process.returncode}: {message}")
        statements = run(*loader, "-e", COUNT_MARIADB, env=loader_env)
        counted = subprocess.run(loader, input=statements.encode(), capture_output=True, env=loader_env,
                                 check=False)  # fmt: skip
        if counted.returncode != 0:
            raise LoadError(f"counting rows failed: {server_message(counted.stderr)}")
        rows = {}
        for line in counted.stdout.decode("utf-8", "replace").splitlines():
            name, _, count = line.rpartition("\t")
            rows[name] = int(count)
        return {"rows": rows, "dump_rows": counter.rows, "skipped": skipped}
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str]) -> int:
    if len(argv) == 3 and argv[1] == "postgresql-into":
        try:
            output = load_postgresql_into(argv[2], sys.stdin.buffer)
        except (Refused, LoadError) as error:
            output = {"error": str(error)}
        except Exception as error:
            output = {
                "error": f"{type(error).__name__}: {pg_error(error) if hasattr(error, 'diag') else error}"
            }
        sys.stdout.write(json.dumps(output, sort_keys=True) + "\n")
        return 1 if "error" in output else 0
    if (
        len(argv) < 3
        or argv[1] not in ("postgresql", "mariadb")
        or (argv[1] == "postgresql" and len(argv) < 4)
    ):
        print("usage: rempart_drill_load.py postgresql BINDIR DATABASE [PATH...] | mariadb DATABASE [PATH...] | "
              "postgresql-into DSN", file=sys.stderr)  # fmt: skip
        return 64
    kind = argv[1]
    bindir, database, forbidden = (
        (argv[2], argv[3], argv[4:]) if kind == "postgresql" else ("", argv[2], argv[3:])
    )
    facts = sandbox_facts(forbidden)
    output: dict[str, Any] = {"sandbox": facts}
    problems = confinement_problems(facts)
    root = Path(tempfile.mkdtemp(prefix="rempart-drill-load-", dir="/var/tmp"))
    try:
        if problems:
            raise Refused(f"not confined, nothing loaded: {'; '.join(problems)}")
        if kind == "postgresql":
            output.update(load_postgresql(bindir, database, sys.stdin.buffer, root))
        else:
            output.update(load_mariadb(database, sys.stdin.buffer, root))
    except Refused as error:
        output.update(error=str(error), refused=True)
    except (LoadError, OSError) as error:
        output.update(error=str(error), refused=False)
    except Exception as error:  # psycopg2's: the server's primary message only, never the statement
        message = pg_error(error) if hasattr(error, "diag") else str(error)[:300]
        output.update(error=f"{type(error).__name__}: {message}", refused=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    sys.stdout.write(json.dumps(output, sort_keys=True) + "\n")
    return 1 if "error" in output else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
