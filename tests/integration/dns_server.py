"""DNS servers on loopback for the sender checks: Debian's dnsmasq serving zones written
as its ``txt-record=`` / ``mx-host=`` / ``host-record=`` lines, a server that answers every
question with SERVFAIL, and one that never answers (a bound socket nobody reads)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset
import pytest

from tests.conftest import IN_CI

DNSMASQ = "/usr/sbin/dnsmasq"


def need_dnsmasq() -> str:
    """dnsmasq's path; fails in CI (.ci/run installs it) and skips elsewhere when missing."""
    found = shutil.which("dnsmasq") or (DNSMASQ if Path(DNSMASQ).exists() else None)
    if found is None:
        reason = "dnsmasq not found: the sender checks need Debian's dnsmasq-base package"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: .ci/run installs it; never skipped in CI)")
        pytest.skip(f"{reason} (apt-get install dnsmasq-base)")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port: int = udp.getsockname()[1]
    return port


@contextmanager
def dnsmasq(lines: list[str], folder: Path) -> Iterator[str]:
    """dnsmasq answering from ``lines`` (and NXDOMAIN for other names under ``.test``) on
    a free loopback port; yields ``127.0.0.1:PORT``."""
    binary = need_dnsmasq()
    conf = folder / "dnsmasq.conf"
    conf.write_text("\n".join(["no-resolv", "no-hosts", "local=/test/", *lines]) + "\n")
    for _ in range(5):  # another test may take the free port between the look and the bind
        port = _free_port()
        command = [
            binary,
            "--keep-in-foreground",
            f"--conf-file={conf}",
            f"--port={port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--pid-file=",
            "--log-facility=-",
        ]
        if os.geteuid() == 0:  # no switch to user nobody (a container may not have it)
            command.append("--user=root")
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if _answers(port, process):
            try:
                yield f"127.0.0.1:{port}"
            finally:
                process.terminate()
                process.wait(5)
                assert process.stderr is not None
                process.stderr.close()
            return
        process.kill()
        process.wait(5)
        assert process.stderr is not None
        error = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        if "in use" not in error:
            raise RuntimeError(f"dnsmasq did not start: {error}")
    raise RuntimeError("dnsmasq found no free port in five tries")


def _answers(port: int, process: subprocess.Popen[bytes]) -> bool:
    query = dns.message.make_query("probe.test", "TXT")
    deadline = time.monotonic() + 5
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(0.1)
        while time.monotonic() < deadline and process.poll() is None:
            try:
                udp.sendto(query.to_wire(), ("127.0.0.1", port))
                udp.recvfrom(4096)
                return True
            except OSError:
                time.sleep(0.05)
    return False


@contextmanager
def _udp_server(answer: Callable[[dns.message.Message], dns.message.Message]) -> Iterator[str]:
    """A loopback UDP server giving ``answer(query)`` to every query; yields its address."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = udp.recvfrom(4096)
            except OSError:
                continue
            udp.sendto(answer(dns.message.from_wire(data)).to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{udp.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        udp.close()


def servfail() -> AbstractContextManager[str]:
    """A server answering every question SERVFAIL; yields ``127.0.0.1:PORT``."""

    def answer(query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.SERVFAIL)
        return response

    return _udp_server(answer)


def raw_txt(value: bytes) -> AbstractContextManager[str]:
    """A server answering every TXT question with one record of the bytes ``value`` (any
    bytes: text that is not UTF-8 too) and every other question with no record."""

    def answer(query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        if question.rdtype == dns.rdatatype.TXT:
            rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [value])
            rrset = dns.rrset.from_rdata(question.name, 60, rdata)
            response.answer.append(rrset)
        return response

    return _udp_server(answer)


@contextmanager
def silent() -> Iterator[str]:
    """A bound UDP socket that never answers (a DNS server that is down or filtered)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{udp.getsockname()[1]}"
