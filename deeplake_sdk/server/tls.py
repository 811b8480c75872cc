"""A throwaway CA and a certificate for ``127.0.0.1``, to try the server over https.

Made with the ``openssl`` command (no Python dependency); for tests, benchmarks and local
trials only: the keys are unencrypted and valid for a couple of days.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_test_certs(root: str | Path, days: int = 2) -> tuple[str, str, str]:
    """Write a CA and a server certificate for ``127.0.0.1`` / ``localhost`` under ``root``.

    Args:
        root: an existing directory.
        days: validity.

    Returns:
        ``(ca_file, cert_file, key_file)``: give ``cert_file``/``key_file`` to the server
        (``--tls-cert/--tls-key``) and ``ca_file`` to clients (``REQUESTS_CA_BUNDLE``).

    Raises:
        OSError: ``openssl`` is missing.
        subprocess.CalledProcessError: ``openssl`` failed.
    """
    root = Path(root)
    ca_key, ca, key = root / "ca.key", root / "ca.pem", root / "key.pem"
    csr, cert, ext = root / "server.csr", root / "cert.pem", root / "ext.cnf"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    valid = str(days)
    new_key = ["-newkey", "rsa:2048", "-nodes"]
    ca_args = ["-subj", "/CN=test-ca", "-keyout", str(ca_key), "-out", str(ca)]
    sign = ["-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-extfile", str(ext)]
    for args in (
        ["req", "-x509", *new_key, "-days", valid, *ca_args],
        ["req", *new_key, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr)],
        ["x509", "-req", "-in", str(csr), *sign, "-days", valid, "-out", str(cert)],
    ):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    return str(ca), str(cert), str(key)
