"""Real mail servers on loopback for the email tests: Dovecot (IMAP) and aiosmtpd (SMTP).

Dovecot runs from a config file written into a private directory (no system service), on a
free port. The test process is root here: Dovecot's login processes must not run as root, so
they run as Debian's ``dovenull``, its internal processes as ``dovecot``, and the mailbox
belongs to ``dovecot`` as well (a mail user with uid 0 is refused too).
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

USER = "priem@dgh.example"
PASSWORD = "test-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen on {port}: {log.read_text(errors='replace')}")


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 0
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class Dovecot:
    """A private Dovecot IMAP server; ``deliver`` puts real letter bytes into the INBOX."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        owner = pwd.getpwnam("dovecot")
        for sub in ("run", "state", "mail", "home"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(root / sub, owner.pw_uid, owner.pw_gid)
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        self.config = root / "dovecot.conf"
        self.config.write_text(CONFIG.format(root=root, port=self.port))

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process, self.root / "dovecot.log")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(USER, PASSWORD)
        conn.select("INBOX")
        return conn

    def deliver(self, raw: bytes) -> int:
        """IMAP APPEND of the exact bytes, unseen; returns the letter's UID."""
        conn = self.client()
        try:
            status, data = conn.append("INBOX", None, None, raw)
            assert status == "OK", data
            # "[APPENDUID <validity> <uid>] Append completed."
            return int(data[0].split(b"]")[0].split()[-1])
        finally:
            conn.logout()

    def flags(self, uid: int) -> str:
        conn = self.client()
        try:
            status, data = conn.uid("FETCH", str(uid), "(FLAGS)")
            assert status == "OK", data
            return data[0].decode() if data and data[0] else ""
        finally:
            conn.logout()

    def unseen(self) -> list[int]:
        conn = self.client()
        try:
            _, data = conn.uid("SEARCH", "UNSEEN")
            return [int(u) for u in (data[0] or b"").split()]
        finally:
            conn.logout()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    missing = None
    if shutil.which("dovecot") is None:
        missing = "dovecot is not installed (bash scripts/install-system-deps.sh)"
    elif os.geteuid() != 0:
        missing = "the Dovecot fixture runs as root (its processes switch to dovecot/dovenull)"
    if missing:
        if os.environ.get("CI"):
            raise RuntimeError(missing)
        pytest.skip(missing)
    # Not pytest's tmp_path: its parents are private to root, and dovecot's login processes
    # (user dovenull) must reach the sockets under base_dir.
    root = Path(tempfile.mkdtemp(prefix="otklik-dovecot-"))
    root.chmod(0o755)
    server = Dovecot(root)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class SmtpCatcher:
    """aiosmtpd's handler: keeps what it receives; ``refuse`` makes it answer DATA with an error."""

    received: list[Received] = field(default_factory=list)
    refuse: str | None = None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # RFC 5321 allows the null sender ``MAIL FROM:<>`` (automatic replies use it);
        # aiosmtpd would then refuse RCPT, so the null sender is kept as "<>".
        envelope.mail_from = address or "<>"
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return self.refuse
        content = envelope.original_content or b""
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content))
        )
        return "250 OK"


class SmtpServer:
    """A real SMTP server over TCP on loopback; ``stop``/``start`` to take it down and back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.catcher = SmtpCatcher()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.catcher, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def received(self) -> list[Received]:
        return self.catcher.received


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()
