"""A self-signed serving certificate, so bearer tokens can be used from kubectl.

client-go never sends a bearer token over plain HTTP, so a kubesim that requires a token
must speak HTTPS; the certificate is made with the `openssl` binary (no extra Python
dependency) and handed to clients as `certificate-authority-data` in the kubeconfig.
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


class TlsError(RuntimeError):
    """The certificate could not be made; the message says what to install or change."""


@dataclass(frozen=True)
class ServingCert:
    cert_file: Path
    key_file: Path

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def pem(self) -> bytes:
        return self.cert_file.read_bytes()


def _alt_names(host: str) -> str:
    names = {"DNS:localhost", "IP:127.0.0.1"}
    try:
        ipaddress.ip_address(host)
    except ValueError:
        names.add(f"DNS:{host}")
    else:
        if host not in ("0.0.0.0", "::"):
            names.add(f"IP:{host}")
    return ",".join(sorted(names))


def make_serving_cert(directory: Path, host: str) -> ServingCert:
    """A fresh P-256 key and a one-year self-signed certificate valid for `host`."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsError(
            "TLS needs the openssl binary on PATH; install openssl or run without a token"
        )
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "kubesim.crt", directory / "kubesim.key"
    done = subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "365",
            "-subj",
            "/CN=kubesim",
            "-addext",
            f"subjectAltName={_alt_names(host)}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise TlsError(f"openssl could not make a certificate: {done.stderr.strip()}")
    key.chmod(0o600)
    return ServingCert(cert, key)
