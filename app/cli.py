"""The `dutyline` command. Every subcommand reads DATABASE_URL; errors are one line on stderr, exit 1."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.auth.principal import Principal
from app.clock import SystemClock
from app.config import get_settings
from app.db import make_engine, transaction
from app.errors import DomainError, NotFound

if TYPE_CHECKING:
    from sqlalchemy import Engine

CLOCK = SystemClock()
ACTOR = Principal.system("cli")


def _engine() -> Engine:
    settings = get_settings()
    return make_engine(settings.database_url)


def cmd_migrate(_: argparse.Namespace) -> None:
    from app import migrate

    migrate.upgrade(get_settings().database_url)
    print("database is at the newest schema")


def cmd_load_units(args: argparse.Namespace) -> None:
    from app.org import units

    path = Path(args.file) if args.file else units.default_data_path()
    rows = units.read_units_file(path)
    with transaction(_engine()) as session:
        result = units.load_units(session, rows)
    print(
        f"units from {path.name}: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged ({result.total} in all)"
    )


def cmd_create_user(args: argparse.Namespace) -> None:
    from app.org import people
    from app.org.schemas import PersonCreate

    data = PersonCreate(
        name=args.name,
        phone=args.phone,
        unit_code=args.unit,
        roles=args.role,
        username=args.username,
        password=args.password,
    )
    with transaction(_engine()) as session:
        person, unit = people.create(session, clock=CLOCK, actor=ACTOR, data=data)
    print(f"created person {person.id} {person.username} ({', '.join(person.roles)}) at {unit.code} {unit.name}")


def cmd_unlock_user(args: argparse.Namespace) -> None:
    from app.org import people

    with transaction(_engine()) as session:
        person = people.find(session, args.username)
        if person.username != args.username or person.id is None:
            raise NotFound(f"no user {args.username!r}")
        cleared = people.unlock(session, clock=CLOCK, actor=ACTOR, person_id=person.id)
    print(f"{args.username} is unlocked ({cleared} failed sign-ins no longer count against the username)")


def cmd_create_agency(args: argparse.Namespace) -> None:
    from app.org import agencies
    from app.org.schemas import AgencyCreate

    data = AgencyCreate(code=args.code, name=args.name, kind=args.kind, unit_code=args.unit)
    with transaction(_engine()) as session:
        agency, unit = agencies.create(session, clock=CLOCK, actor=ACTOR, data=data)
    print(f"created agency {agency.code} ({agency.kind}) scoped to {unit.code if unit else 'the whole tree'}")


def cmd_create_api_key(args: argparse.Namespace) -> None:
    from app.org import agencies

    with transaction(_engine()) as session:
        new, agency = agencies.create_key(
            session, clock=CLOCK, actor=ACTOR, code=args.agency, scopes=args.scopes.split(",")
        )
    print(
        f"API key {new.record.prefix} for {agency.code} with scopes {','.join(new.record.scopes)}; "
        "it is shown once, store it now:"
    )
    print(new.key)


def cmd_revoke_api_key(args: argparse.Namespace) -> None:
    from app.org import agencies

    with transaction(_engine()) as session:
        agencies.revoke_key(session, clock=CLOCK, actor=ACTOR, prefix=args.prefix)
    print(f"API key {args.prefix} is revoked")


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from app import logs, migrate

    if "PUBLIC_BASE_URL" not in os.environ:
        # Without it, callbacks (and the built-in simulator's API address) would point at the default port.
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        os.environ["PUBLIC_BASE_URL"] = f"http://{host}:{args.port}"
        get_settings.cache_clear()
    settings = get_settings()
    if migrate.pending(settings.database_url):
        raise SystemExit("error: the database schema is not up to date; run `dutyline migrate` first")
    logs.configure(settings.log_level, settings.log_format)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )


def cmd_demo(_: argparse.Namespace) -> None:
    from app import demo, migrate
    from app.org import units
    from app.roster import service as roster_service

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    roster_service.set_default_timezone(settings.timezone)
    with transaction(_engine()) as session:
        units.load_units(session, units.read_units_file(units.default_data_path()))
        report = demo.install(session, clock=CLOCK)
    print(report)


class _Help(argparse.HelpFormatter):
    """Shows an option's default when it has one (ArgumentDefaultsHelpFormatter also prints "default: None")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, argparse.SUPPRESS, False) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


EPILOG = """\
first steps:
  dutyline demo                      the Beijing units, demo people and rosters; prints the sign-ins and API keys
  DUTYLINE_SIMULATOR=on dutyline serve
                                     then open http://127.0.0.1:8000/console (SMS go to the built-in simulator)

every setting is an environment variable (README.md, Configuration); `dutyline COMMAND --help` for each command
"""


def build_parser() -> argparse.ArgumentParser:
    from app.auth.passwords import MIN_LENGTH as MIN_PASSWORD
    from app.auth.principal import API_KEY_SCOPES
    from app.org.models import AgencyKind, Role

    parser = argparse.ArgumentParser(
        prog="dutyline",
        description="Emergency duty rosters and three-tier incident escalation (city → district → street).\n"
        "Every command uses the database named by DATABASE_URL (default: sqlite:///./var/dutyline.db).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace], None], help_: str, more: str = ""
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_ + (f". {more}" if more else ""),
                           formatter_class=_Help)  # fmt: skip
        p.set_defaults(func=func)
        return p

    add("migrate", cmd_migrate, "create or upgrade the database schema (Alembic)",
        "Run it once per deploy, before the new version starts (`demo` runs it itself).")  # fmt: skip
    p = add("load-units", cmd_load_units, "load the division tree from a JSON file (default: Beijing); idempotent")
    p.add_argument("file", nargs="?", help="a file shaped like app/org/data/beijing-divisions.json (default: Beijing)")
    p = add("create-user", cmd_create_user, "add a person who can sign in",
            "Example: dutyline create-user --username sunli --password 'Duty-2026-pw' --name 孙丽 "
            "--phone 13912345678 --unit 110106001 --role duty_officer")  # fmt: skip
    p.add_argument("--username", required=True, help="the sign-in name")
    p.add_argument("--password", required=True, help=f"at least {MIN_PASSWORD} characters")
    p.add_argument("--name", required=True, help="the person's name as messages and the console show it")
    p.add_argument("--phone", required=True, help="a mobile number, e.g. +8613800000001 (SMS and calls go to it)")
    p.add_argument("--unit", required=True, help="the home unit's division code, e.g. 110106 (丰台区)")
    p.add_argument(
        "--role",
        required=True,
        action="append",
        choices=[r.value for r in Role],
        help="repeat for more roles",
    )
    p = add("unlock-user", cmd_unlock_user, "lift the sign-in throttle on a username (its address throttle stays)")
    p.add_argument("username", help="the username locked out by failed sign-ins")
    p = add("create-agency", cmd_create_agency, "register an agency system (police, fire, ambulance, ...)",
            "Then give it a key with create-api-key.")  # fmt: skip
    p.add_argument("--code", required=True, help="a short code, e.g. 119 (the key prefix and webhooks name it)")
    p.add_argument("--name", required=True, help="e.g. 北京市消防救援总队")
    p.add_argument("--kind", required=True, choices=[k.value for k in AgencyKind], help="what sort of agency")
    p.add_argument("--unit", help="limit the agency to this unit's subtree (default: the whole tree)")
    p = add("create-api-key", cmd_create_api_key, "make an API key for an agency; the key is the last line printed",
            "It is shown once; send it as X-API-Key.")  # fmt: skip
    p.add_argument("--agency", required=True, help="the agency's code")
    p.add_argument("--scopes", required=True,
                   help=f"comma-separated, from: {', '.join(sorted(API_KEY_SCOPES))}")  # fmt: skip
    p = add("revoke-api-key", cmd_revoke_api_key, "revoke an API key by its prefix")
    p.add_argument("--prefix", required=True, help="the key's prefix (its first part, e.g. dlk_demo119)")
    p = add("serve", cmd_serve, "serve the API and console with uvicorn",
            "The console is at /console, the API docs at /docs; set DUTYLINE_SIMULATOR=on for the built-in "
            "SMS/voice simulator.")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000, help="the port to listen on")
    p.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="proxies whose X-Forwarded-For is trusted (for the sign-in throttle)",
    )
    add("demo", cmd_demo, "migrate, load Beijing and install demo people, admin, agency keys and rosters (idempotent)",
        "Prints the sign-ins, their password and one API key per agency.")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DomainError as exc:
        detail = "; ".join(f"{f.field}: {f.message}" for f in exc.fields[:5])
        print(
            f"error: {exc.message}" + (f" ({detail})" if detail and detail not in exc.message else ""), file=sys.stderr
        )
        sys.exit(1)
    except Exception as exc:  # the CLI's contract is one line on stderr, not a traceback
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
            )
            print(f"error: {problems}", file=sys.stderr)
        else:
            print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
