"""examples/tls/server.py: a new TLS connection sees the rotated certificate; a mismatched
pair is rejected and the previous certificate is still served."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

from secretwatch.testing import AtomicVolume

from .certificates import self_signed
from .conftest import TIMEOUT

EXAMPLE = Path(__file__).parent.parent / "examples" / "tls" / "server.py"


def served_certificate(port: int) -> bytes:
    """The DER certificate a new TLS connection to the server sees."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # self-signed: we compare the certificate itself
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def test_rotation_and_a_mismatched_pair(tmp_path: Path) -> None:
    first_crt, first_key, first_der = self_signed("first")
    second_crt, second_key, second_der = self_signed("second")
    third_crt, _, _ = self_signed("third")
    volume = AtomicVolume(tmp_path / "tls")
    volume.write({"tls.crt": first_crt, "tls.key": first_key})
    with subprocess.Popen(
        [sys.executable, str(EXAMPLE), str(volume.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            assert server.stdout.readline().startswith("serving certificate ")
            port = int(server.stdout.readline().rsplit(":", 1)[1])
            assert served_certificate(port) == first_der

            volume.write({"tls.crt": second_crt, "tls.key": second_key})
            assert server.stdout.readline().startswith("serving certificate ")
            assert served_certificate(port) == second_der

            volume.write({"tls.crt": third_crt, "tls.key": second_key})  # not a pair
            line = server.stdout.readline()
            assert line.startswith("rejected: ")
            assert "tls.crt and tls.key are not a PEM certificate chain and its" in line
            assert served_certificate(port) == second_der  # still the previous one

            server.send_signal(signal.SIGTERM)
            assert server.wait(TIMEOUT) == 0
        finally:
            if server.poll() is None:
                server.kill()
