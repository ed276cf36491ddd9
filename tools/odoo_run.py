#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Run Odoo 18 on this addon: ``test`` (fresh database, whole suite, verdict)
or ``demo`` (fresh database with demo data, served on localhost:8069).

Odoo is found as an importable ``odoo`` package of this interpreter, or in the
source tree named by ``ODOO_SRC``; it is never downloaded. PostgreSQL is the
one reachable through the usual libpq variables (PGHOST, PGPORT, PGUSER...);
when none answers, an embedded server (the ``pgserver`` package from PyPI) is
started with its data under ``.cache/``.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

MODULE = "sale_referral_lifecycle"
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
HOW_TO_GET_ODOO = """\
Odoo 18 was not found: `{python} -c "import odoo"` fails and ODOO_SRC is not set.
Get Odoo 18.0 (Community) one of these ways, then run the command again:
  - official packages: https://nightly.odoo.com/ (18.0 deb/rpm), or
    pip install the 18.0 source archive from https://nightly.odoo.com/18.0/nightly/src/
  - source: git clone --branch 18.0 --depth 1 https://github.com/odoo/odoo
    then `{python} -m pip install -r odoo/requirements.txt`
    and run with ODOO_SRC=/path/to/odoo (or install it: pip install -e odoo)
"""
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z]+) \S+ (?P<logger>[\w.]+):"
)
RESULT = re.compile(
    r"odoo\.tests\.result: (?P<failed>\d+) failed, (?P<errors>\d+) error\(s\) "
    r"of (?P<total>\d+) tests"
)
SKIPPED = re.compile(r" INFO \S+ [\w.]+: skipped ")


def odoo_env():
    """Environment in which ``python -m odoo`` imports Odoo 18, or None."""
    env = dict(os.environ)
    src = env.get("ODOO_SRC")
    if src:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (src, env.get("PYTHONPATH")) if p
        )
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import odoo.release as r; print(r.version_info[0])",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode or probe.stdout.strip() != "18":
        return None
    return env


def addons_path():
    """A folder holding this addon under its technical name (the clone's own
    folder may be named anything), plus ODOO_SRC's addons."""
    holder = CACHE / "addons"
    holder.mkdir(parents=True, exist_ok=True)
    link = holder / MODULE
    if link.is_symlink() and link.resolve() != ROOT:
        link.unlink()
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    paths = [str(holder)]
    src = os.environ.get("ODOO_SRC")
    if src:
        paths += [
            str(p)
            for p in (Path(src) / "addons", Path(src) / "odoo" / "addons")
            if p.is_dir()
        ]
    return ",".join(paths)


class Postgres:
    """The reachable PostgreSQL server, or an embedded one."""

    def __init__(self):
        self.args = []
        self.embedded = None

    def __enter__(self):
        if not self._reachable():
            self._start_embedded()
        return self

    def __exit__(self, *exc):
        if self.embedded:
            self.embedded.stdin.close()
            self.embedded.wait(timeout=60)

    def _reachable(self):
        import psycopg2  # Odoo's own driver, installed with Odoo.

        try:
            psycopg2.connect(dbname="postgres", connect_timeout=3).close()
        except psycopg2.OperationalError:
            return False
        return True

    def _start_embedded(self):
        lib = CACHE / "pgserver-lib"
        if not (lib / "pgserver").is_dir():
            print("No PostgreSQL server reachable: installing pgserver (PyPI)")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--target",
                    str(lib),
                    "pgserver",
                ],
                check=True,
            )
        pgdata = CACHE / "pgdata"
        # A child process owns the server and stops it when its stdin closes;
        # pgserver's own dependencies stay out of Odoo's interpreter.
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); import pgserver; "
            "srv = pgserver.get_server(sys.argv[2], cleanup_mode='stop'); "
            "print(srv.get_uri(), flush=True); sys.stdin.read()"
        )
        self.embedded = subprocess.Popen(
            [sys.executable, "-c", code, str(lib), str(pgdata)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(CACHE / "pgserver.log", "a"),  # noqa: SIM115
            text=True,
        )
        uri = self.embedded.stdout.readline().strip()
        match = re.match(
            r"postgresql://(?P<user>[^:@]+)[^@]*@/\w*\?host=(?P<host>.+)$", uri
        )
        if not match:
            raise SystemExit(f"Could not start the embedded PostgreSQL: {uri!r}")
        os.environ["PGHOST"] = match["host"]
        os.environ["PGUSER"] = self._ensure_role(match["user"])
        self.args = [f"--db_host={match['host']}", f"--db_user={os.environ['PGUSER']}"]
        print(f"Started an embedded PostgreSQL (data in {pgdata})")

    def _ensure_role(self, superuser, role="odoo"):
        """Odoo refuses to connect as ``postgres``: give it its own role."""
        import psycopg2

        conn = psycopg2.connect(dbname="postgres", user=superuser)
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if not cr.fetchone():
                cr.execute(f'CREATE ROLE "{role}" LOGIN CREATEDB')
        conn.close()
        return role

    def create(self, dbname):
        """Create an empty database, with pg_trgm when the server has it (the
        embedded one has not; Odoo would log that failure as an error)."""
        import psycopg2

        self.drop(dbname)
        conn = psycopg2.connect(dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute(
                f"CREATE DATABASE \"{dbname}\" ENCODING 'unicode' "
                "LC_COLLATE 'C' TEMPLATE template0"
            )
            cr.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
            has_trigram = cr.fetchone()
        conn.close()
        if has_trigram:
            conn = psycopg2.connect(dbname=dbname)
            conn.autocommit = True
            with conn.cursor() as cr:
                cr.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            conn.close()

    def drop(self, dbname):
        import psycopg2

        conn = psycopg2.connect(dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid != pg_backend_pid()",
                [dbname],
            )
            cr.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        conn.close()


def odoo_command(pg, dbname, *extra):
    return [
        sys.executable,
        "-m",
        "odoo",
        f"--addons-path={addons_path()}",
        f"--data-dir={CACHE / 'data'}",
        f"--database={dbname}",
        f"--db-filter=^{dbname}$",
        *pg.args,
        *extra,
    ]


def run_tests(env, pg):
    dbname = f"{MODULE}_test_{os.getpid()}"
    log_path = CACHE / "test.log"
    command = odoo_command(
        pg,
        dbname,
        f"--init={MODULE}",
        "--test-enable",
        f"--test-tags=/{MODULE}",
        "--stop-after-init",
        "--http-port=8269",
        "--log-level=test",
    )
    problems, skipped, result, ran = [], 0, None, False
    pg.create(dbname)
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            for line in proc.stdout:
                sys.stdout.write(line)
                log.write(line)
                match = LOG_LINE.match(line)
                if match:
                    level, logger = match["level"], match["logger"]
                    if level in ("ERROR", "CRITICAL") or (
                        level == "WARNING"
                        and logger.startswith(f"odoo.addons.{MODULE}")
                    ):
                        problems.append(line.rstrip())
                if SKIPPED.search(line):
                    skipped += 1
                found = RESULT.search(line)
                if found:
                    result = found
            returncode = proc.wait()
            ran = True
    finally:
        pg.drop(dbname)
        shutil.rmtree(CACHE / "data" / "filestore" / dbname, ignore_errors=True)
    failed = int(result["failed"]) + int(result["errors"]) if result else 0
    total = int(result["total"]) if result else 0
    passed = max(total - failed - skipped, 0)
    print()
    if problems:
        print(
            f"{len(problems)} log line(s) at ERROR/CRITICAL, or WARNING from {MODULE}:"
        )
        for line in problems[:50]:
            print(f"  {line}")
    if ran and returncode:
        print(f"Odoo exited with status {returncode}")
    if not total:
        print("No test ran.")
    summary = f"{passed} passed, {failed} failed"
    if skipped:
        summary += f", {skipped} skipped"
    print(summary)
    return (
        0 if (ran and not returncode and total and not failed and not problems) else 1
    )


def run_demo(env, pg):
    dbname = os.environ.get("DEMO_DB", "referral_demo")
    pg.create(dbname)
    shutil.rmtree(CACHE / "data" / "filestore" / dbname, ignore_errors=True)
    install = odoo_command(pg, dbname, f"--init={MODULE}", "--stop-after-init")
    subprocess.run(install, env=env, check=True)
    print(f"\nServing {dbname} at http://localhost:8069 (login admin / password admin)")
    serve = odoo_command(pg, dbname, "--http-interface=127.0.0.1", "--http-port=8069")
    try:
        return subprocess.run(serve, env=env, check=False).returncode
    except KeyboardInterrupt:
        return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["test", "demo"])
    action = parser.parse_args().action
    env = odoo_env()
    if env is None:
        print(HOW_TO_GET_ODOO.format(python=sys.executable), file=sys.stderr)
        return 2
    CACHE.mkdir(exist_ok=True)
    with Postgres() as pg:
        return run_tests(env, pg) if action == "test" else run_demo(env, pg)


if __name__ == "__main__":
    sys.exit(main())
