"""A real IMAP server for the tests: Debian's dovecot, on a free port of 127.0.0.1, with one
mailbox in a temporary maildir, plain IMAP and IMAP over TLS (a self-signed certificate), started
as a foreground subprocess and stopped at teardown.

Skipped, with the reason, where dovecot is not installed (`apt-get install dovecot-imapd`; CI's
.ci/run installs it). Nothing of the machine's own dovecot is used: not its config, its
service or its mail.
"""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from imap_tools import MailBoxUnencrypted

from tests.support.certificates import self_signed_certificate

USER, PASSWORD = "replies", "mailbox-secret"
START_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class Dovecot:
    host: str
    port: int  # plain IMAP
    tls_port: int  # IMAP over TLS (imaps), with the self-signed certificate below
    certificate: Path  # the PEM a client must trust to verify tls_port
    username: str
    password: str
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accounts() -> tuple[str, str, str]:
    """(login user, internal user, internal group): dovecot's own when run as root, as Debian's
    package makes them, else the user running the tests for all three."""
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("dovenull")
            pwd.getpwnam("dovecot")
            grp.getgrnam("dovecot")
            return "dovenull", "dovecot", "dovecot"
        except KeyError:
            pytest.skip("dovecot runs as root only with its users dovenull and dovecot "
                        "(Debian's package adds them)")
    user = getpass.getuser()
    return user, user, grp.getgrgid(os.getegid()).gr_name


def _config(root: Path, port: int, tls_port: int, certificate: Path, key: Path) -> str:
    login_user, internal_user, internal_group = _accounts()
    return f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = leadflow-test-{port}
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{certificate}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={internal_user} gid={internal_group} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited at start: {_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                if conn.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(
        f"dovecot did not answer on port {port} within {START_TIMEOUT_SECONDS} s: {_tail(log)}")


def _tail(log: Path) -> str:
    texts = [p.read_text(errors="replace") for p in (log.parent / "stderr.txt", log) if p.exists()]
    return "\n".join(texts)[-2000:] or "(no log)"


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Dovecot:
    """The running dovecot with its mailbox (USER / PASSWORD) emptied for this test."""
    with MailBoxUnencrypted(dovecot_server.host, dovecot_server.port).login(USER, PASSWORD) as box:
        uids = box.uids("ALL")
        if uids:
            box.delete(uids)
    return dovecot_server


@pytest.fixture(scope="module")
def dovecot_server() -> Iterator[Dovecot]:
    """A dovecot for the test module (starting one takes a few seconds); tests take `dovecot`."""
    binary = shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)), None
    )
    if binary is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd): "
                    "the IMAP tests need a real server")
    # Not under pytest's temporary folder: that is private to the user running the tests, and the
    # mail processes run as dovecot's user. A short path, too: dovecot's unix sockets live under
    # base_dir, and a socket path has at most ~108 bytes.
    root = Path(tempfile.mkdtemp(prefix="leadflow-dovecot-"))
    for folder in ("run", "state", "mail"):
        (root / folder).mkdir()
    # The mail processes run as dovecot's user: they must reach the maildir.
    root.chmod(0o755)
    (root / "mail").chmod(0o777)
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    port, tls_port = _free_port(), _free_port()
    certificate, key = self_signed_certificate(root, "imap")
    config = root / "dovecot.conf"
    config.write_text(_config(root, port, tls_port, certificate, key))
    log = root / "dovecot.log"
    # Errors before the log is open (a config dovecot refuses) go to stderr: kept beside the log.
    with (root / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=stderr, stderr=stderr)
    try:
        _wait_for(port, process, log)
        yield Dovecot("127.0.0.1", port, tls_port, certificate, USER, PASSWORD, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
