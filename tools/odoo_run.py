#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Run Odoo 18 on this addon, for ``make test`` and ``make demo``.

``test``  installs the addon in a fresh database, runs its whole test suite
          (at_install and post_install), drops the database, and ends with the
          line ``N passed, N failed[, N skipped]``. Odoo runs from the virtual
          environment ``.cache/test-venv`` (this Python's packages plus
          tools/test-requirements.txt, installed on first use). Without
          Chromium the UI tours are skipped, with a note on how to get it
          (``REQUIRE_CHROME=1``, as in .ci/run, makes that an error). It exits
          non-zero on a failed or erroring test, on any ERROR or CRITICAL log
          line, on a WARNING from the addon's own loggers, or when no test
          ran.
``demo``  recreates the database ``referral_demo`` (``DEMO_DB``) with demo data
          and the addon installed, then serves it on http://localhost:8069
          (``HTTP_PORT``), login admin, password admin, until Ctrl-C.

Odoo 18 is the ``odoo`` package importable by this interpreter (run it with the
Python that has Odoo), or the source tree named by ``ODOO_SRC``. Odoo is never
downloaded: without it, this prints how to get it and exits with status 2.

PostgreSQL is the server reached through the usual libpq variables (PGHOST,
PGPORT, PGUSER, PGPASSWORD). When none answers, or with ``PG_EMBEDDED=1``, an
embedded server from the ``pgserver`` package (PyPI) is installed under
``.cache/pgserver`` and run with its data in ``.cache/pgdata``, for the
duration of the command.

The repository root is the addon, whatever the clone's folder is called: a
link to it named after the addon, in a folder of the temporary directory (not
inside the clone: that would make a loop), lets Odoo find it.
"""

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
DEFAULT_ADDON = "sale_referral_lifecycle"
ODOO_SERIES = 18
PGSERVER = "pgserver==0.1.4"
TEST_VENV = CACHE / "test-venv"
TEST_REQUIREMENTS = ROOT / "tools" / "test-requirements.txt"
# Odoo's HttpCase looks for these (odoo/tests/common.py, _find_executable).
CHROME_NAMES = ("google-chrome", "chromium", "chromium-browser", "google-chrome-stable")
HOW_TO_GET_CHROMIUM = """\
Chromium was not found: the UI tours will be skipped (counted as skipped).
To run them, install it, e.g. on Debian or Ubuntu:
  sudo apt-get update && sudo apt-get install -y chromium
(`bash .ci/run` installs it by itself when it runs as root in CI).
"""
EMBEDDED_DB_USER = "odoo"  # Odoo refuses to connect as "postgres".
HOW_TO_GET_WKHTMLTOPDF = """\
wkhtmltopdf was not found: Odoo shows its PDF reports (quotations, invoices,
the referral credit statement) as web pages instead. To get PDF files,
install it, e.g. on Debian or Ubuntu:
  sudo apt-get update && sudo apt-get install -y wkhtmltopdf
(or the 0.12.6 build with patched Qt that Odoo recommends:
https://github.com/wkhtmltopdf/packaging/releases), then run make demo again.
"""

HOW_TO_GET_ODOO = """\
Odoo {series} was not found: `{python} -c "import odoo"` fails{src_note}.
Get Odoo {series}.0 (Community), then run the same command again, either:
  - from the official packages: https://nightly.odoo.com/ ({series}.0 .deb or
    .rpm, or the source archive under {series}.0/nightly/src/, which
    `{python} -m pip install` accepts), or
  - from source: git clone --branch {series}.0 --depth 1 \\
        https://github.com/odoo/odoo
    {python} -m pip install -r odoo/requirements.txt
    and run with ODOO_SRC=/path/to/that/odoo (or `pip install -e` it).
Another interpreter with Odoo can be chosen with PYTHON=/path/to/python.
"""

# 2026-01-01 10:00:00,123 4242 INFO dbname odoo.modules.loading: message
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z]+) \S+ "
    r"(?P<logger>[\w.-]+): (?P<message>.*)$"
)
# odoo/service/server.py logs this once per database after a test run:
# "0 failed, 0 error(s) of 12 tests when loading database 'x'" (see
# odoo/tests/result.py, OdooTestResult.__str__).
TEST_REPORT = re.compile(
    r"^(?P<failures>\d+) failed, (?P<errors>\d+) error\(s\) of (?P<run>\d+) tests "
    r"when loading database"
)
# OdooTestResult.logError: "FAIL: Class.test_x" / "ERROR: Subtest Class.test_x (i=1)"
TEST_FAILURE = re.compile(r"^(?:FAIL|ERROR): (?:Subtest )?(?P<test>\w+\.\w+)")
# OdooTestResult.addSkip: "skipped Class.test_x : reason", or for a whole class
# "skipped setUpClass (module.Class) : reason" (not counted in the tests run)
TEST_SKIP = re.compile(r"^skipped (?P<test>.+?) : ")


def say(*lines):
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()


class Terminated(BaseException):
    """SIGTERM (a CI timeout, a kill): unwind, dropping the test database and
    stopping the embedded server."""


def on_sigterm(signum, frame):
    raise Terminated()


class Abort(Exception):
    """A reason to stop, already explained to the user, with an exit status."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


# Odoo ------------------------------------------------------------------------


def odoo_environment():
    """Return (environment, odoo package folder) in which ``python -m odoo``
    imports Odoo 18; raise Abort(status 2) when there is no such Odoo."""
    env = dict(os.environ)
    src = env.get("ODOO_SRC")
    src_note = ""
    if src:
        src = str(Path(src).expanduser().resolve())
        src_note = f" and ODOO_SRC={src} holds no importable odoo package"
        if not Path(src, "odoo", "__init__.py").is_file():
            raise Abort(
                f"ODOO_SRC={src} is not an Odoo source tree (no odoo/__init__.py).\n"
                + HOW_TO_GET_ODOO.format(
                    series=ODOO_SERIES, python=sys.executable, src_note=src_note
                ),
                status=2,
            )
        env["ODOO_SRC"] = src
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (src, env.get("PYTHONPATH")) if p
        )
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, odoo.release as r; "
            "print(r.version_info[0]); print(r.version); "
            "print(os.path.dirname(os.path.abspath(r.__file__)))",
        ],
        env=env,
        cwd=CACHE,
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode:
        error = probe.stderr.strip().splitlines()[-1:] or ["?"]
        if "No module named 'odoo'" in error[0]:
            raise Abort(
                HOW_TO_GET_ODOO.format(
                    series=ODOO_SERIES, python=sys.executable, src_note=src_note
                ),
                status=2,
            )
        raise Abort(
            f"Odoo is there but does not import: {error[0]}\n"
            f"Install its Python requirements (its requirements.txt) into "
            f"{sys.executable}.",
            status=2,
        )
    series, version, folder = probe.stdout.split("\n")[:3]
    if series != str(ODOO_SERIES):
        raise Abort(
            f"This addon needs Odoo {ODOO_SERIES}.0, but {folder} is Odoo {version}.\n"
            + HOW_TO_GET_ODOO.format(
                series=ODOO_SERIES, python=sys.executable, src_note=""
            ),
            status=2,
        )
    say(f"Odoo {version} from {folder}")
    return env, Path(folder)


def addons_path(addon, odoo_folder):
    """The addons path: a folder in the temporary directory holding a link to
    this repository under the addon's technical name, then the addons of an
    Odoo source tree (``ODOO_SRC``, or the one the odoo package sits in),
    which Odoo leaves out as soon as --addons-path is given."""
    # Outside the clone: a link inside it would make a loop for whatever walks
    # the addon's folder (Odoo's translation export does).
    digest = hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
    holder = Path(tempfile.gettempdir()) / f"{addon}-addons-{os.getuid()}-{digest}"
    holder.mkdir(parents=True, exist_ok=True)
    link = holder / addon
    if link.is_symlink() and link.resolve() != ROOT:
        link.unlink()
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    if link.resolve() != ROOT:
        raise Abort(f"{link} should be a link to {ROOT}: remove it and run again.")
    candidates = [holder]
    src = os.environ.get("ODOO_SRC")
    if src:
        src = Path(src).expanduser().resolve()
        candidates += [src / "addons", src / "odoo" / "addons"]
    candidates.append(odoo_folder.parent / "addons")
    paths = []
    for path in candidates:
        if path.is_dir() and str(path) not in paths and is_addons_folder(path):
            paths.append(str(path))
    return ",".join(paths)


def is_addons_folder(path):
    return any((child / "__manifest__.py").is_file() for child in path.iterdir())


def config_file():
    """An empty Odoo configuration, so that a ~/.odoorc or ODOO_RC (which may say
    without_demo, another addons path or database) plays no part."""
    path = CACHE / "odoo.conf"
    path.write_text("[options]\n", encoding="utf-8")
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# PostgreSQL ------------------------------------------------------------------


class Postgres:
    """The PostgreSQL server to use: the one libpq reaches, else an embedded one
    that lives as long as this object is open."""

    def __init__(self):
        self.connect_args = {}  # for psycopg2, on top of the libpq variables
        self.odoo_args = []  # the same for Odoo
        self.keeper = None  # the process that holds the embedded server

    def __enter__(self):
        if os.environ.get("PG_EMBEDDED", "") not in ("", "0"):
            say("PG_EMBEDDED is set: using an embedded PostgreSQL.")
            self._start_embedded()
        else:
            problem = self._probe()
            if problem:
                say(f"No PostgreSQL server reachable ({problem}).")
                self._start_embedded()
        return self

    def __exit__(self, *exc_info):
        if self.keeper:
            self.keeper.stdin.close()  # the keeper stops the server and exits
            try:
                self.keeper.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.keeper.kill()
            say("Stopped the embedded PostgreSQL.")

    def connect(self, dbname="postgres", **kwargs):
        import psycopg2

        return psycopg2.connect(dbname=dbname, **self.connect_args, **kwargs)

    def _probe(self):
        try:
            import psycopg2
        except ImportError as error:
            raise Abort(
                f"{error}: install Odoo's Python requirements into {sys.executable}.",
                status=2,
            ) from error
        try:
            self.connect(connect_timeout=5).close()
        except psycopg2.OperationalError as error:
            return str(error).strip().splitlines()[0]
        return None

    def _start_embedded(self):
        lib = CACHE / "pgserver"
        stamp = lib / f".installed-{PGSERVER}"
        if not stamp.exists():
            say(f"Installing {PGSERVER} (PyPI) into {lib} ...")
            shutil.rmtree(lib, ignore_errors=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--target",
                    str(lib),
                    PGSERVER,
                ],
                check=True,
            )
            stamp.touch()
        pgdata = CACHE / "pgdata"
        # A separate process holds the server (pgserver stops it when that
        # process exits, i.e. when we close its stdin or die), keeps pgserver's
        # dependencies out of Odoo's interpreter, and sits in its own session so
        # that Ctrl-C reaches Odoo but not the database under it.
        keeper_code = (
            "import json, sys, pgserver\n"
            "server = pgserver.get_server(sys.argv[1], cleanup_mode='stop')\n"
            "info = server.get_postmaster_info()\n"
            "print(json.dumps({'host': str(info.socket_dir), 'port': info.port}),"
            " flush=True)\n"
            "sys.stdin.read()\n"
        )
        env = dict(os.environ, PYTHONPATH=str(lib))
        for var in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"):
            env.pop(var, None)
        with open(CACHE / "pgserver.log", "a", encoding="utf-8") as log:
            self.keeper = subprocess.Popen(
                [sys.executable, "-W", "ignore", "-c", keeper_code, str(pgdata)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=CACHE,
                text=True,
                start_new_session=True,
            )
        line = self.keeper.stdout.readline()
        try:
            where = json.loads(line)
        except ValueError as error:
            self.keeper.stdin.close()
            try:
                self.keeper.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.keeper.kill()
            self.keeper = None
            raise Abort(
                f"The embedded PostgreSQL did not start: see {CACHE / 'pgserver.log'} "
                f"and {pgdata / 'log'}."
            ) from error
        self.connect_args = {"host": where["host"], "port": where["port"]}
        self._ensure_odoo_role()
        self.connect_args["user"] = EMBEDDED_DB_USER
        self.odoo_args = [
            f"--db_host={where['host']}",
            f"--db_port={where['port']}",
            f"--db_user={EMBEDDED_DB_USER}",
        ]
        say(f"Started an embedded PostgreSQL (data in {pgdata}).")

    def _ensure_odoo_role(self):
        from psycopg2 import sql

        with self.refusals(f"create the role {EMBEDDED_DB_USER}"):
            conn = self.connect(user="postgres")
            conn.autocommit = True
            with conn.cursor() as cr:
                cr.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", [EMBEDDED_DB_USER]
                )
                if not cr.fetchone():
                    # An identifier quoted by psycopg2.sql: no injection.
                    # pylint: disable=sql-injection
                    cr.execute(
                        sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(
                            sql.Identifier(EMBEDDED_DB_USER)
                        )
                    )
            conn.close()

    @contextlib.contextmanager
    def refusals(self, action):
        """Turn a PostgreSQL error while doing ``action`` into an Abort."""
        import psycopg2

        try:
            yield
        except psycopg2.Error as error:
            message = str(error).strip() or type(error).__name__
            raise Abort(f"PostgreSQL: could not {action}: {message}") from error

    def databases(self, like):
        with self.refusals("list the databases"):
            conn = self.connect()
        with conn, conn.cursor() as cr:
            cr.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [like])
            names = [row[0] for row in cr.fetchall()]
        conn.close()
        return names

    def create_database(self, dbname):
        """Create an empty database as Odoo does (odoo/service/db.py,
        _create_empty_database), where a missing pg_trgm extension (as in
        pgserver's build) is a note rather than an ERROR in Odoo's log; Odoo
        then initializes it (-i)."""
        from psycopg2 import Error, sql

        with self.refusals(f"create the database {dbname}"):
            conn = self.connect()
            conn.autocommit = True
            with conn.cursor() as cr:
                # An identifier quoted by psycopg2.sql: no injection.
                # pylint: disable=sql-injection
                cr.execute(
                    sql.SQL(
                        "CREATE DATABASE {} ENCODING 'unicode' LC_COLLATE 'C' "
                        "TEMPLATE template0"
                    ).format(sql.Identifier(dbname))
                )
            conn.close()
        conn = self.connect(dbname)
        conn.autocommit = True
        with conn.cursor() as cr:
            for statement, failure in (
                (
                    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
                    "no pg_trgm extension in this PostgreSQL: Odoo does without"
                    " trigram indexes",
                ),
                ("GRANT CREATE ON SCHEMA PUBLIC TO PUBLIC", None),
            ):
                try:
                    cr.execute(statement)
                except Error as error:
                    say(f"Note: {failure or error}")
        conn.close()

    def drop_database(self, dbname):
        from psycopg2 import sql

        with self.refusals(f"drop the database {dbname}"):
            conn = self.connect()
            conn.autocommit = True
            with conn.cursor() as cr:
                cr.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid != pg_backend_pid()",
                    [dbname],
                )
                # An identifier quoted by psycopg2.sql: no injection.
                # pylint: disable=sql-injection
                cr.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname))
                )
            conn.close()
        shutil.rmtree(CACHE / "data" / "filestore" / dbname, ignore_errors=True)


# Running Odoo ----------------------------------------------------------------


def test_python(env):
    """The interpreter of ``.cache/test-venv``: a virtual environment over
    this Python (``--system-site-packages``, so it sees Odoo and its
    requirements) with the test extras of tools/test-requirements.txt,
    created or refreshed when that file changes."""
    python = TEST_VENV / "bin" / "python"
    digest = hashlib.sha1(TEST_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    stamp = TEST_VENV / f".installed-{digest}"
    if stamp.exists() and python.exists():
        return str(python)
    say(f"Installing the test requirements into {TEST_VENV} ...")
    shutil.rmtree(TEST_VENV, ignore_errors=True)
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", str(TEST_VENV)],
            check=True,
        )
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(TEST_REQUIREMENTS),
            ],
            env=env,
            check=True,
        )
    except subprocess.CalledProcessError as error:
        shutil.rmtree(TEST_VENV, ignore_errors=True)
        raise Abort(
            f"Could not create {TEST_VENV} with {TEST_REQUIREMENTS.name}: {error}",
            status=2,
        ) from error
    stamp.touch()
    return str(python)


def chrome_found():
    return any(shutil.which(name) for name in CHROME_NAMES)


def odoo_command(ctx, dbname, *args):
    return [
        ctx.python,
        "-m",
        "odoo",
        f"--config={config_file()}",
        f"--addons-path={ctx.addons_path}",
        f"--data-dir={CACHE / 'data'}",
        f"--database={dbname}",
        f"--db-filter=^{re.escape(dbname)}$",
        *ctx.pg.odoo_args,
        *args,
    ]


def run_odoo(ctx, command, log_path, on_line=None):
    """Run Odoo, its log going both to the terminal and to ``log_path``;
    return its exit status."""
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            command,
            env=ctx.env,
            cwd=CACHE,  # not the repository, whose folders would shadow modules
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        try:
            for line in proc.stdout:
                sys.stdout.write(line)
                log.write(line)
                if on_line:
                    on_line(line)
            return proc.wait()
        except BaseException as stop:
            # Ctrl-C reached Odoo too (same process group) and stops it; a
            # second SIGINT would make it skip its shutdown, so only pass on
            # other reasons to stop.
            if not isinstance(stop, KeyboardInterrupt):
                proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise


class TestLog:
    """What ``make test`` needs from the Odoo log."""

    def __init__(self, addon):
        self.addon_logger = f"odoo.addons.{addon}"
        self.report = None
        self.failed_tests = set()
        self.skipped_tests = 0  # skipped test methods, counted in the tests run
        self.skipped_classes = 0  # skipped setUpClass/setUpModule, not counted
        self.problems = []

    def __call__(self, line):
        match = LOG_LINE.match(line)
        if not match:
            return
        level, logger, message = match["level"], match["logger"], match["message"]
        if level in ("ERROR", "CRITICAL") or (
            level == "WARNING"
            and (
                logger == self.addon_logger
                or logger.startswith(self.addon_logger + ".")
            )
        ):
            self.problems.append(line.rstrip())
        report = TEST_REPORT.match(message)
        if report and logger == "odoo.tests.result":
            self.report = {key: int(value) for key, value in report.groupdict().items()}
            return
        failure = TEST_FAILURE.match(message)
        if failure and level == "ERROR":
            self.failed_tests.add(failure["test"])
        skip = TEST_SKIP.match(message)
        if skip and level == "INFO":
            if skip["test"].startswith("setUp"):
                self.skipped_classes += 1
            else:
                self.skipped_tests += 1

    def summary(self):
        """(passed, failed, skipped): Odoo's failures and errors are failed; a
        test counts once as failed however many of its subtests failed."""
        skipped = self.skipped_tests + self.skipped_classes
        if not self.report:
            return 0, len(self.failed_tests), skipped
        failed = self.report["failures"] + self.report["errors"]
        passed = self.report["run"] - len(self.failed_tests) - self.skipped_tests
        return max(passed, 0), failed, skipped


def run_tests(ctx, args):
    addon = args.addon
    prefix = f"{addon}_test_"
    # Databases left by a run that was killed (its pid is in the name).
    for stale in ctx.pg.databases(prefix.replace("_", r"\_") + "%"):
        pid = stale[len(prefix) :]
        if pid.isdigit() and not Path("/proc", pid).exists():
            ctx.pg.drop_database(stale)
    dbname = f"{prefix}{os.getpid()}"
    ctx.pg.drop_database(dbname)
    ctx.pg.create_database(dbname)
    ctx.python = test_python(ctx.env)
    if not chrome_found():
        if os.environ.get("REQUIRE_CHROME", "") not in ("", "0"):
            raise Abort(
                "Chromium was not found and REQUIRE_CHROME is set (in CI every "
                "tour must run).\n" + HOW_TO_GET_CHROMIUM.split("\n", 1)[1]
            )
        say(HOW_TO_GET_CHROMIUM)
    tags = os.environ.get("TEST_TAGS") or f"/{addon}"
    command = odoo_command(
        ctx,
        dbname,
        f"--init={addon}",
        "--test-enable",
        f"--test-tags={tags}",
        "--stop-after-init",
        "--http-interface=127.0.0.1",
        f"--http-port={free_port()}",
        "--max-cron-threads=0",
        "--log-level=info",
        *args.odoo_args,
    )
    log_path = CACHE / "test.log"
    log = TestLog(addon)
    say(f"Testing {addon} in a fresh database {dbname}; log in {log_path}")
    try:
        status = run_odoo(ctx, command, log_path, on_line=log)
    finally:
        ctx.pg.drop_database(dbname)
    passed, failed, skipped = log.summary()
    say("")
    if log.problems:
        say(
            f"{len(log.problems)} log line(s) at ERROR or CRITICAL, or at WARNING "
            f"from {log.addon_logger}:",
            *(f"  {line[:300]}" for line in log.problems[:30]),
        )
    if status:
        say(f"Odoo exited with status {status}.")
    if not log.report:
        say("Odoo reported no test result (see the log above).")
    elif not log.report["run"]:
        say("No test ran.")
    ok = not (
        status or log.problems or failed or not log.report or not log.report["run"]
    )
    say(f"Database {dbname} dropped. Tests {'passed' if ok else 'FAILED'}.")
    # main() prints it last, once the embedded server (if any) has stopped.
    ctx.last_line = f"{passed} passed, {failed} failed" + (
        f", {skipped} skipped" if skipped else ""
    )
    return 0 if ok else 1


def pdf_engine_note():
    """Whether Odoo will find wkhtmltopdf (in the PATH), in words."""
    path = shutil.which("wkhtmltopdf")
    if path:
        return f"wkhtmltopdf found ({path}): PDF reports are available."
    return HOW_TO_GET_WKHTMLTOPDF


def demo_port():
    port = int(os.environ.get("HTTP_PORT") or 8069)
    if not port_is_free(port):
        raise Abort(
            f"Port {port} is already in use (another `make demo`, or Odoo?). "
            "Stop it, or choose another port with HTTP_PORT=..."
        )
    return port


def run_demo(ctx, args):
    dbname = os.environ.get("DEMO_DB") or "referral_demo"
    port = demo_port()
    say(pdf_engine_note())
    say(f"Recreating the database {dbname} with demo data and {args.addon} ...")
    ctx.pg.drop_database(dbname)
    ctx.pg.create_database(dbname)
    install = odoo_command(
        ctx,
        dbname,
        f"--init={args.addon}",
        "--stop-after-init",
        "--max-cron-threads=0",
        "--http-interface=127.0.0.1",
        f"--http-port={free_port()}",
        *args.odoo_args,
    )
    status = run_odoo(ctx, install, CACHE / "demo-install.log")
    if status:
        raise Abort(
            f"Installing {args.addon} failed (status {status}): see the log above."
        )
    serve = odoo_command(
        ctx,
        dbname,
        "--http-interface=127.0.0.1",
        f"--http-port={port}",
        *args.odoo_args,
    )
    say(
        "",
        f"Serving {dbname} at http://localhost:{port}  (login admin, password admin)",
        "Stop with Ctrl-C (or SIGTERM).",
        "",
    )
    try:
        status = run_odoo(ctx, serve, CACHE / "demo.log")
    except (KeyboardInterrupt, Terminated):
        # Stopping the demo server is how a demo ends: no make error.
        status = 0
    say(f"Odoo stopped. The database {dbname} stays until the next `make demo`.")
    return status


class Context:
    def __init__(self, env, addons, pg):
        self.env = env
        self.addons_path = addons
        self.pg = pg
        self.python = sys.executable  # the test venv's for make test
        self.last_line = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("action", choices=["test", "demo"])
    parser.add_argument("--addon", default=DEFAULT_ADDON)
    parser.add_argument(
        "odoo_args",
        nargs=argparse.REMAINDER,
        help="more Odoo options, after --",
    )
    args = parser.parse_args()
    args.odoo_args = [arg for arg in args.odoo_args if arg != "--"]
    if not (ROOT / "__manifest__.py").is_file():
        say(f"{ROOT} holds no __manifest__.py: it is not an Odoo addon.")
        return 2
    CACHE.mkdir(exist_ok=True)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        env, odoo_folder = odoo_environment()
        addons = addons_path(args.addon, odoo_folder)
        if args.action == "demo":
            demo_port()  # before spending time on PostgreSQL and the install
        with Postgres() as pg:
            ctx = Context(env, addons, pg)
            action = run_tests if args.action == "test" else run_demo
            status = action(ctx, args)
        if ctx.last_line:
            say(ctx.last_line)
        return status
    except Abort as abort:
        sys.stderr.write(f"{abort}\n")
        return abort.status
    except KeyboardInterrupt:
        say("Interrupted.")
        return 130
    except Terminated:
        say("Terminated.")
        return 143


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
