"""The agency's IMAP mailbox, through the standard library's imaplib (blocking: use a thread).

One connection per poll: connect, log in, select the folder, read, log out. A dropped
connection therefore costs one poll, never a letter: letters are flagged ``\\Seen`` only after
they are stored, and a letter fetched twice is a duplicate the inbox recognises.
"""

from __future__ import annotations

import imaplib
import re
import select
import ssl
from collections.abc import Callable
from types import TracebackType
from typing import Any

_UID = re.compile(rb"UID (\d+)")


class MailboxError(Exception):
    """The IMAP server could not be reached or refused a command; the next poll retries."""


class ImapMailbox:
    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        *,
        use_ssl: bool = True,
        folder: str = "INBOX",
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.use_ssl = use_ssl
        self.folder = folder
        self.timeout = timeout
        self._conn: imaplib.IMAP4 | None = None

    def __enter__(self) -> ImapMailbox:
        try:
            if self.use_ssl:
                context = ssl.create_default_context()
                self._conn = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=context, timeout=self.timeout
                )
            else:
                self._conn = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
            self._conn.login(self.user, self.password)
            self._check(self._conn.select(_quote(self.folder)), "SELECT")
        except (imaplib.IMAP4.error, OSError) as exc:
            self.close()
            raise MailboxError(f"IMAP {self.host}:{self.port}: {exc}") from exc
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    @property
    def conn(self) -> imaplib.IMAP4:
        if self._conn is None:
            raise MailboxError("the mailbox is not open")
        return self._conn

    def unseen(self) -> list[int]:
        """UIDs of the letters not flagged ``\\Seen``, oldest first."""
        data = self._run("UID SEARCH", lambda: self.conn.uid("SEARCH", "UNSEEN"))
        return sorted(int(uid) for uid in (data[0] or b"").split())

    def fetch(self, uid: int) -> bytes | None:
        """The letter's exact bytes; ``BODY.PEEK`` leaves its ``\\Seen`` flag alone."""
        data = self._run("UID FETCH", lambda: self.conn.uid("FETCH", str(uid), "(BODY.PEEK[])"))
        for item in data:
            if isinstance(item, tuple) and _UID.search(item[0]):
                return bytes(item[1])
        return None

    def mark_seen(self, uid: int) -> None:
        self.add_flags(uid, "\\Seen")

    def add_flags(self, uid: int, *flags: str) -> None:
        joined = "(" + " ".join(flags) + ")"
        self._run("UID STORE", lambda: self.conn.uid("STORE", str(uid), "+FLAGS", joined))

    def supports_idle(self) -> bool:
        return "IDLE" in self.conn.capabilities

    def wait_for_mail(self, timeout: float) -> bool:
        """Block until the server announces a change (IMAP IDLE, RFC 2177) or ``timeout``.

        True when the server spoke (new mail, most likely): poll now. The caller polls anyway
        after a timeout; a notice that arrives in the same packet as the server's ``+`` is
        only noticed then, so at worst a letter waits one interval, never longer.
        """
        conn = self.conn
        tag = conn._new_tag()  # imaplib (before 3.14) has no IDLE: speak it by hand
        try:
            conn.send(tag + b" IDLE\r\n")
            if not conn.readline().startswith(b"+"):
                raise MailboxError("IMAP IDLE refused")
            ready, _, _ = select.select([conn.socket()], [], [], timeout)
            if ready:
                conn.readline()  # "* 12 EXISTS" or similar
            conn.send(b"DONE\r\n")
            while True:  # untagged updates, then the tagged OK that ends IDLE
                line = conn.readline()
                if not line:
                    raise MailboxError("IMAP connection closed during IDLE")
                if line.startswith(tag):
                    break
            return bool(ready)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"IMAP IDLE: {exc}") from exc

    def _run(self, name: str, command: Callable[[], tuple[str, list[Any]]]) -> list[Any]:
        try:
            return self._check(command(), name)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"IMAP {name}: {exc}") from exc

    @staticmethod
    def _check(response: tuple[str, list[Any]], name: str) -> list[Any]:
        status, data = response
        if status != "OK":
            raise MailboxError(f"IMAP {name} answered {status}: {data!r}")
        return data


def _quote(folder: str) -> str:
    return folder if folder.isalnum() else '"' + folder.replace('"', '\\"') + '"'
