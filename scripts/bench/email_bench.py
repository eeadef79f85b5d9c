"""Benchmark of the email channel against real loopback servers (a benchmark, not a timed test).

    .venv/bin/python scripts/bench/email_bench.py [--letters N] [--database-url URL] [--out PATH]

Starts Dovecot and aiosmtpd (as the tests do), appends N letters (the real fixtures, each
with a fresh Message-ID) to the mailbox, then measures one poll (fetch, save attachments,
journal, ``\\Seen``, process, acknowledge) and one delivery round of the N acknowledgements.
Prints a table and writes JSON. Needs root and Debian's dovecot (scripts/install-system-deps.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot.email.channel import EmailChannel  # noqa: E402
from core.config import Settings  # noqa: E402
from inbox.db import upgrade  # noqa: E402
from inbox.runtime import build_runtime  # noqa: E402
from tests.helpers.mail_servers import PASSWORD, USER, Dovecot, SmtpServer  # noqa: E402

FIXTURES = [
    "cp1251_plain.eml",
    "koi8r_qp.eml",
    "html_only_base64.eml",
    "outlook_alternative_cp1251.eml",
    "koi8r_header_wrong_label.eml",
    "attachment_rfc2231.eml",
]


def letters(count: int) -> list[bytes]:
    folder = ROOT / "tests" / "payloads" / "email"
    out = []
    for n in range(count):
        raw = (folder / FIXTURES[n % len(FIXTURES)]).read_bytes()
        head, sep, body = raw.partition(b"\r\n\r\n")
        lines = [
            line for line in head.split(b"\r\n") if not line.lower().startswith(b"message-id:")
        ]
        lines.append(f"Message-ID: <bench-{n}@mail.example>".encode())
        out.append(b"\r\n".join(lines) + sep + body)
    return out


def run(count: int, database_url: str | None) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="otklik-email-bench-"))
    work.chmod(0o755)
    dovecot = Dovecot(work / "dovecot")
    smtp = SmtpServer()
    dovecot.start()
    smtp.start()
    try:
        url = database_url or f"sqlite:///{work / 'bench.sqlite3'}"
        upgrade(url)
        settings = Settings(
            database_url=url,
            data_dir=work / "data",
            imap_host="127.0.0.1",
            imap_port=dovecot.port,
            imap_user=USER,
            imap_password=PASSWORD,
            imap_ssl=False,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_starttls=False,
            email_from="Приёмная ДГХ <priem@dgh.example>",
        )
        runtime = build_runtime(settings)
        channel = EmailChannel.from_runtime(runtime)
        for raw in letters(count):
            dovecot.deliver(raw)
        started = time.perf_counter()
        polled = channel.poll()
        poll_seconds = time.perf_counter() - started
        started = time.perf_counter()
        delivered = asyncio.run(channel.outbox.deliver_once(limit=count))
        send_seconds = time.perf_counter() - started
        runtime.dispose()
        return {
            "letters": count,
            "database": url.split(":", 1)[0],
            "stored": len(polled.stored),
            "acknowledged": len(polled.acknowledged),
            "sent": len(delivered.sent),
            "poll_seconds": round(poll_seconds, 3),
            "poll_ms_per_letter": round(1000 * poll_seconds / count, 2),
            "send_seconds": round(send_seconds, 3),
            "send_ms_per_letter": round(1000 * send_seconds / max(1, len(delivered.sent)), 2),
            "python": platform.python_version(),
        }
    finally:
        smtp.stop()
        dovecot.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=300)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = run(args.letters, args.database_url)
    for key, value in result.items():
        print(f"{key:<20} {value}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
