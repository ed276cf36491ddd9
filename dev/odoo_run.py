#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Run Odoo 18 on this addon, for ``make test``, ``make demo`` and ``make bench``.

``test``   installs the addon in a fresh database, runs its tests, drops the
           database, and ends with the line ``N passed, N failed[, N skipped]``.
           Odoo runs from ``.cache/test-venv``, a virtual environment over this
           Python with dev/test-requirements.txt installed on first use.
           Without Chromium the UI tours are skipped with a note
           (``REQUIRE_CHROME=1``, as in .ci/run, makes that an error). Exits
           non-zero on a failed test, on an ERROR or CRITICAL log line, on a
           WARNING from the addon's own loggers, or when no test ran.
``demo``   recreates the database ``referral_demo`` (``DEMO_DB``) with demo data
           and the addon, then serves it on http://localhost:8069
           (``HTTP_PORT``), login admin, password admin, until Ctrl-C.
``bench``  runs the given bench/ scripts one after the other (arguments after
           ``--`` go to each), with the same Odoo and PostgreSQL.

Odoo is the ``odoo`` package of this Python, or the source tree ``ODOO_SRC``;
it is never downloaded: without it, this prints how to get it and exits with
status 2. PostgreSQL is the server libpq reaches (PGHOST, PGPORT, PGUSER...);
when none answers, or with ``PG_EMBEDDED=1``, an embedded one from the
``pgserver`` package (PyPI, installed into .cache/pgserver) runs with its data
in .cache/pgdata for the length of the command. The processes started here
find both through their environment: ``ODOO_RC`` (.cache/odoo.conf: addons
path and data directory) and the ``PG*`` variables.
"""

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
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
ADDON = "sale_referral_lifecycle"
ODOO_SERIES = "18"
PGSERVER = "pgserver==0.1.4"
TEST_VENV = CACHE / "test-venv"
TEST_REQUIREMENTS = ROOT / "dev" / "test-requirements.txt"
# Odoo's HttpCase looks for these (odoo/tests/common.py, _find_executable).
CHROME_NAMES = ("google-chrome", "chromium", "chromium-browser", "google-chrome-stable")
HOW_TO_GET_CHROMIUM = """\
Chromium was not found: the UI tours will be skipped (counted as skipped).
To run them, install it, e.g. on Debian or Ubuntu:
  sudo apt-get update && sudo apt-get install -y chromium
"""
HOW_TO_GET_WKHTMLTOPDF = """\
wkhtmltopdf was not found: Odoo shows its PDF reports (quotations, invoices,
the referral credit statement) as web pages instead. To get PDF files,
install it, e.g. on Debian or Ubuntu:
  sudo apt-get update && sudo apt-get install -y wkhtmltopdf
(or the 0.12.6 build with patched Qt that Odoo recommends:
https://github.com/wkhtmltopdf/packaging/releases), then run make demo again.
"""
HOW_TO_GET_ODOO = f"""\
Odoo {ODOO_SERIES}.0 was not found: `{sys.executable} -c "import odoo"` fails.
Get Odoo {ODOO_SERIES}.0 (Community), then run the same command again, either:
  - from the official packages: https://nightly.odoo.com/ ({ODOO_SERIES}.0 .deb or
    .rpm, or the source archive, which `python3 -m pip install` accepts), or
  - from source: git clone --branch {ODOO_SERIES}.0 --depth 1 \\
        https://github.com/odoo/odoo
    python3 -m pip install -r odoo/requirements.txt
    and run with ODOO_SRC=/path/to/that/odoo.
Another interpreter with Odoo can be chosen with PYTHON=/path/to/python.
"""
# 2026-01-01 10:00:00,123 4242 INFO dbname odoo.modules.loading: message
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z]+) \S+ "
    r"(?P<logger>[\w.-]+): (?P<message>.*)$"
)
# Logged once after the tests (odoo/tests/result.py, OdooTestResult.__str__).
TEST_REPORT = re.compile(
    r"^(?P<failures>\d+) failed, (?P<errors>\d+) error\(s\) of (?P<run>\d+) tests "
    r"when loading database"
)
# OdooTestResult.logError: "FAIL: Class.test_x" / "ERROR: Subtest Class.test_x (i=1)"
TEST_FAILURE = re.compile(r"^(?:FAIL|ERROR): (?:Subtest )?(?P<test>\w+\.\w+)")
# OdooTestResult.addSkip: "skipped Class.test_x : reason", or for a whole class
# "skipped setUpClass (module.Class) : reason" (not counted in the tests run).
TEST_SKIP = re.compile(r"^skipped (?P<test>.+?) : ")


def say(*lines):
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()


class Abort(Exception):
    """A reason to stop, already explained to the user, with an exit status."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


class Terminated(BaseException):
    """SIGTERM (a CI timeout, a kill): unwind, dropping the test database and
    stopping the embedded server."""


def on_sigterm(signum, frame):
    raise Terminated()


# Odoo ------------------------------------------------------------------------


def find_odoo():
    """Put ``ODOO_SRC`` (if set) on the ``PYTHONPATH`` and return the folder of
    the odoo package; Abort with status 2 when there is no Odoo 18."""
    src = os.environ.get("ODOO_SRC")
    if src:
        src = str(Path(src).expanduser().resolve())
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (src, os.environ.get("PYTHONPATH")) if p
        )
    code = "import odoo.release as r; print(r.version, r.__file__)"
    probe = subprocess.run(
        [sys.executable, "-c", code], cwd=CACHE, capture_output=True, text=True
    )
    if probe.returncode:
        error = (probe.stderr.strip().splitlines() or ["?"])[-1]
        if "No module named 'odoo'" in error:
            raise Abort(HOW_TO_GET_ODOO, status=2)
        raise Abort(
            f"Odoo is there but does not import: {error}\nInstall its "
            f"requirements (its requirements.txt) into {sys.executable}.",
            status=2,
        )
    version, release_py = probe.stdout.split()
    folder = Path(release_py).resolve().parent
    if src and folder != Path(src, "odoo"):
        raise Abort(f"ODOO_SRC={src} holds no odoo package (found: {folder}).", 2)
    if version.split(".")[0] != ODOO_SERIES:
        raise Abort(f"{folder} is Odoo {version}.\n{HOW_TO_GET_ODOO}", status=2)
    say(f"Odoo {version} from {folder}")
    return folder


def write_odoo_config(odoo_folder):
    """Write .cache/odoo.conf and name it in ``ODOO_RC``, so that a ~/.odoorc
    plays no part. Its addons path: a link named after the addon to this
    repository (whatever the clone's name), in the temporary directory (inside
    the clone it would make a loop for whatever walks the addon's folder), then
    the addons of Odoo's source tree when there is one."""
    digest = hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
    holder = Path(tempfile.gettempdir()) / f"{ADDON}-addons-{os.getuid()}-{digest}"
    holder.mkdir(parents=True, exist_ok=True)
    link = holder / ADDON
    if link.is_symlink() and link.resolve() != ROOT:
        link.unlink()
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    if link.resolve() != ROOT:
        raise Abort(f"{link} should be a link to {ROOT}: remove it and run again.")
    paths = [holder]
    source_addons = odoo_folder.parent / "addons"
    if any(source_addons.glob("*/__manifest__.py")):
        paths.append(source_addons)
    config = CACHE / "odoo.conf"
    config.write_text(
        "[options]\n"
        f"addons_path = {','.join(map(str, paths))}\n"
        f"data_dir = {CACHE / 'data'}\n",
        encoding="utf-8",
    )
    os.environ["ODOO_RC"] = str(config)


def pip_install(python, *args):
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *args], check=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def odoo_command(ctx, dbname, *args):
    return [
        ctx.python,
        "-m",
        "odoo",
        f"--database={dbname}",
        f"--db-filter=^{re.escape(dbname)}$",
        "--http-interface=127.0.0.1",
        *args,
    ]


def run_odoo(ctx, command, log_path, on_line=None):
    """Run ``command`` (Odoo, or a benchmark that loads it), its output going
    both to the terminal and to ``log_path``; return its exit status."""
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            command,
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
            # Ctrl-C reached the child too (same process group) and stops it;
            # a second SIGINT would cut its shutdown short.
            if not isinstance(stop, KeyboardInterrupt):
                proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise


# PostgreSQL ------------------------------------------------------------------


class Postgres:
    """The server libpq reaches, else an embedded one that lives as long as
    this object is open and is exported through the ``PG*`` variables."""

    keeper = None  # the process holding the embedded server

    def __enter__(self):
        if os.environ.get("PG_EMBEDDED", "") not in ("", "0"):
            say("PG_EMBEDDED is set: using an embedded PostgreSQL.")
            self._start_embedded()
        else:
            try:
                self.execute(connect_timeout=5)
            except Abort as problem:
                say(f"No PostgreSQL server reachable ({problem}).")
                self._start_embedded()
        return self

    def __exit__(self, *exc_info):
        if self.keeper:
            self._stop_keeper()
            say("Stopped the embedded PostgreSQL.")

    def execute(self, *statements, dbname="postgres", **connect_args):
        """Run ``(query, params)`` statements in autocommit; a PostgreSQL
        error becomes an Abort."""
        import psycopg2  # Odoo's requirement: there when Odoo imports

        try:
            conn = psycopg2.connect(dbname=dbname, **connect_args)
            conn.autocommit = True
            with conn.cursor() as cr:
                for query, params in statements:
                    cr.execute(query, params)
            conn.close()
        except psycopg2.Error as error:
            message = str(error).strip().splitlines() or [type(error).__name__]
            raise Abort(f"PostgreSQL: {message[0]}") from error

    def create_database(self, dbname):
        """An empty database, as Odoo creates one (odoo/service/db.py,
        _create_empty_database), but where a missing pg_trgm (pgserver's build
        has none) is a note here instead of an ERROR line in Odoo's log."""
        from psycopg2 import sql

        create = (
            "CREATE DATABASE {} ENCODING 'unicode' LC_COLLATE 'C' TEMPLATE template0"
        )
        self.execute((sql.SQL(create).format(sql.Identifier(dbname)), []))
        for statement in (
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            "GRANT CREATE ON SCHEMA PUBLIC TO PUBLIC",
        ):
            try:
                self.execute((statement, []), dbname=dbname)
            except Abort as error:
                say(f"Note: {error} (Odoo does without)")

    def drop_database(self, dbname):
        from psycopg2 import sql

        self.execute(
            (
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid != pg_backend_pid()",
                [dbname],
            ),
            (sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)), []),
        )
        shutil.rmtree(CACHE / "data" / "filestore" / dbname, ignore_errors=True)

    def _start_embedded(self):
        lib = CACHE / "pgserver"
        stamp = lib / f".installed-{PGSERVER}"
        if not stamp.exists():
            say(f"Installing {PGSERVER} (PyPI) into {lib} ...")
            shutil.rmtree(lib, ignore_errors=True)
            pip_install(sys.executable, "--target", str(lib), PGSERVER)
            stamp.touch()
        for var in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"):
            os.environ.pop(var, None)
        # A separate process holds the server (pgserver stops it when that
        # process ends: when its stdin closes or it dies), keeps pgserver out
        # of Odoo's interpreter, and sits in its own session so that Ctrl-C
        # reaches Odoo but not the database under it.
        keeper_code = (
            "import json, sys, pgserver\n"
            "info = pgserver.get_server(sys.argv[1], cleanup_mode='stop')"
            ".get_postmaster_info()\n"
            "print(json.dumps([str(info.socket_dir), info.port]), flush=True)\n"
            "sys.stdin.read()\n"
        )
        pgdata = CACHE / "pgdata"
        with open(CACHE / "pgserver.log", "a", encoding="utf-8") as log:
            self.keeper = subprocess.Popen(
                [sys.executable, "-W", "ignore", "-c", keeper_code, str(pgdata)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=dict(os.environ, PYTHONPATH=str(lib)),
                cwd=CACHE,
                text=True,
                start_new_session=True,
            )
        try:
            host, port = json.loads(self.keeper.stdout.readline())
        except ValueError as error:
            self._stop_keeper()
            raise Abort(
                f"The embedded PostgreSQL did not start: see {CACHE}/pgserver.log "
                f"and {pgdata}/log."
            ) from error
        os.environ.update(PGHOST=host, PGPORT=str(port))
        # Odoo refuses to connect as "postgres": a role "odoo", made once.
        self.execute(
            (
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                "'odoo') THEN CREATE ROLE odoo LOGIN SUPERUSER; END IF; END $$",
                [],
            ),
            user="postgres",
        )
        os.environ["PGUSER"] = "odoo"
        say(f"Started an embedded PostgreSQL (data in {pgdata}).")

    def _stop_keeper(self):
        self.keeper.stdin.close()  # the keeper stops the server and exits
        try:
            self.keeper.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.keeper.kill()
        self.keeper = None


# make test -------------------------------------------------------------------


def test_python():
    """The interpreter of .cache/test-venv: a virtual environment over this
    Python (``--system-site-packages``: it sees Odoo and its requirements)
    with dev/test-requirements.txt, made again when that file changes."""
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
        pip_install(str(python), "-r", str(TEST_REQUIREMENTS))
    except subprocess.CalledProcessError as error:
        shutil.rmtree(TEST_VENV, ignore_errors=True)
        raise Abort(f"Could not make {TEST_VENV}: {error}", status=2) from error
    stamp.touch()
    return str(python)


class TestLog:
    """What ``make test`` needs from the Odoo log, fed line by line."""

    def __init__(self):
        self.addon_logger = f"odoo.addons.{ADDON}"
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
        own = logger == self.addon_logger or logger.startswith(self.addon_logger + ".")
        if level in ("ERROR", "CRITICAL") or (level == "WARNING" and own):
            self.problems.append(line.rstrip())
        report = TEST_REPORT.match(message)
        if report and logger == "odoo.tests.result":
            self.report = {key: int(value) for key, value in report.groupdict().items()}
        elif (failure := TEST_FAILURE.match(message)) and level == "ERROR":
            self.failed_tests.add(failure["test"])
        elif (skip := TEST_SKIP.match(message)) and level == "INFO":
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
    dbname = f"{ADDON}_test_{os.getpid()}"
    ctx.pg.drop_database(dbname)
    ctx.pg.create_database(dbname)
    ctx.python = test_python()
    if not any(shutil.which(name) for name in CHROME_NAMES):
        if os.environ.get("REQUIRE_CHROME", "") not in ("", "0"):
            raise Abort(
                "Chromium was not found and REQUIRE_CHROME is set (every tour "
                "must run).\n" + HOW_TO_GET_CHROMIUM.split("\n", 1)[1]
            )
        say(HOW_TO_GET_CHROMIUM)
    command = odoo_command(
        ctx,
        dbname,
        f"--init={ADDON}",
        "--test-enable",
        f"--test-tags={os.environ.get('TEST_TAGS') or '/' + ADDON}",
        "--stop-after-init",
        f"--http-port={free_port()}",  # the tours' server
        "--max-cron-threads=0",
        "--log-level=info",
        *args.odoo_args,
    )
    log_path = CACHE / "test.log"
    log = TestLog()
    say(f"Testing {ADDON} in a fresh database {dbname}; log in {log_path}")
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
    ran = log.report and log.report["run"]
    if not ran:
        say("No test ran." if log.report else "Odoo reported no test result.")
    ok = ran and not (status or log.problems or failed)
    say(f"Database {dbname} dropped. Tests {'passed' if ok else 'FAILED'}.")
    # main() prints it last, once the embedded server (if any) has stopped.
    ctx.last_line = f"{passed} passed, {failed} failed" + (
        f", {skipped} skipped" if skipped else ""
    )
    return 0 if ok else 1


# make demo -------------------------------------------------------------------


def pdf_engine_note():
    """Whether Odoo will find wkhtmltopdf (in the PATH), in words."""
    path = shutil.which("wkhtmltopdf")
    if path:
        return f"wkhtmltopdf found ({path}): PDF reports are available."
    return HOW_TO_GET_WKHTMLTOPDF


def demo_port():
    port = int(os.environ.get("HTTP_PORT") or 8069)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise Abort(
                f"Port {port} is already in use (another `make demo`, or Odoo?). "
                "Stop it, or choose another port with HTTP_PORT=..."
            ) from None
    return port


def run_demo(ctx, args):
    dbname = os.environ.get("DEMO_DB") or "referral_demo"
    port = demo_port()
    say(pdf_engine_note())
    say(f"Recreating the database {dbname} with demo data and {ADDON} ...")
    ctx.pg.drop_database(dbname)
    ctx.pg.create_database(dbname)
    install = odoo_command(
        ctx,
        dbname,
        f"--init={ADDON}",
        "--stop-after-init",
        "--max-cron-threads=0",
        f"--http-port={free_port()}",
        *args.odoo_args,
    )
    status = run_odoo(ctx, install, CACHE / "demo-install.log")
    if status:
        raise Abort(f"Installing {ADDON} failed (status {status}): see above.")
    say(
        "",
        f"Serving {dbname} at http://localhost:{port}  (login admin, password admin)",
        "Stop with Ctrl-C (or SIGTERM).",
        "",
    )
    serve = odoo_command(ctx, dbname, f"--http-port={port}", *args.odoo_args)
    try:
        status = run_odoo(ctx, serve, CACHE / "demo.log")
    except (KeyboardInterrupt, Terminated):
        status = 0  # stopping the server is how a demo ends: no make error
    say(f"Odoo stopped. The database {dbname} stays until the next `make demo`.")
    return status


# make bench ------------------------------------------------------------------


def run_bench(ctx, args):
    """Each script in turn, stopping at the first that fails; bench/benchlib.py
    reads ``BENCH_UNDER_RUNNER`` (else it runs its script through this)."""
    os.environ["BENCH_UNDER_RUNNER"] = "1"
    for script in args.scripts:
        say(f"== {script}")
        path = Path(script).resolve()
        command = [ctx.python, str(path), *args.bench_args]
        status = run_odoo(ctx, command, CACHE / "bench.log")
        if status:
            return status
    return 0


# Main ------------------------------------------------------------------------

ACTIONS = {"test": run_tests, "demo": run_demo, "bench": run_bench}


def main(argv):
    split = argv.index("--") if "--" in argv else len(argv)
    action, *scripts = argv[:split] or ["?"]
    extra = argv[split + 1 :]
    if action not in ACTIONS or bool(scripts) != (action == "bench"):
        say(f"usage: {sys.argv[0]} test|demo [-- ODOO OPTIONS]")
        say(f"       {sys.argv[0]} bench SCRIPT... [-- SCRIPT ARGUMENTS]")
        return 2
    args = SimpleNamespace(scripts=scripts, odoo_args=extra, bench_args=extra)
    CACHE.mkdir(exist_ok=True)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        write_odoo_config(find_odoo())
        if action == "demo":
            demo_port()  # before spending time on PostgreSQL and the install
        with Postgres() as pg:
            ctx = SimpleNamespace(pg=pg, python=sys.executable, last_line=None)
            status = ACTIONS[action](ctx, args)
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
        sys.exit(main(sys.argv[1:]))
