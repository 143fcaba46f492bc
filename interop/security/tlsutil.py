# SPDX-License-Identifier: Apache-2.0
# Helpers for the TLS interop tests (imported, not run): a small PKI made with the `openssl` CLI
# in the test's directory (a CA, a server certificate for localhost/127.0.0.1, client
# certificates, an expired one and a second, untrusted CA), the [tls] configuration text, and a
# ferryd whose TLS ports are read from its log. Standard library only; every wait has a deadline.
import os
import re
import socket
import ssl
import subprocess

import sec
from sec import check

OPENSSL = "/usr/bin/openssl"


def _run(args, cwd):
    r = subprocess.run([OPENSSL] + args, cwd=cwd, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr))


def _key_csr(d, name, cn):
    _run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn], d)


def _sign(d, name, ca, days, ext=None):
    args = ["x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".crt", "-days", str(days)]
    if ext:
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        args += ["-extfile", name + ".ext"]
    _run(args, d)


def _ca(d, name, cn):
    _run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", name + ".key", "-out", name + ".crt", "-subj", "/CN=" + cn, "-days", "2"], d)


SERVER_EXT = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
CLIENT_EXT = "extendedKeyUsage=clientAuth\n"


class Pki:
    """Certificates in directory d/pki. Attributes are paths: ca, server_crt, server_key,
    client(name) -> (crt, key) for alice, bob and carol (no CN; SAN DNS carol.devices.example);
    other_ca (untrusted) and its server and client (rogue) certificates; expired client (CN
    alice)."""

    def __init__(self, d):
        self.d = os.path.join(d, "pki")
        os.makedirs(self.d, exist_ok=True)
        _ca(self.d, "ca", "Ferry Test CA")
        _ca(self.d, "other-ca", "Untrusted CA")
        _key_csr(self.d, "server", "localhost")
        _sign(self.d, "server", "ca", 2, SERVER_EXT)
        _key_csr(self.d, "other-server", "localhost")
        _sign(self.d, "other-server", "other-ca", 2, SERVER_EXT)
        for n in ("alice", "bob"):
            _key_csr(self.d, n, n)
            _sign(self.d, n, "ca", 2, CLIENT_EXT)
        # No CN: the identity is the first DNS subject alternative name.
        _run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", "carol.key", "-out", "carol.csr", "-subj", "/O=Ferry Test"], self.d)
        _sign(self.d, "carol", "ca", 2, "subjectAltName=DNS:carol.devices.example\n" + CLIENT_EXT)
        _key_csr(self.d, "expired", "alice")
        _sign(self.d, "expired", "ca", -1, CLIENT_EXT)
        _key_csr(self.d, "rogue", "alice")
        _sign(self.d, "rogue", "other-ca", 2, CLIENT_EXT)
        self.ca = self.p("ca.crt")
        self.other_ca = self.p("other-ca.crt")
        self.server_crt = self.p("server.crt")
        self.server_key = self.p("server.key")

    def p(self, name):
        return os.path.join(self.d, name)

    def client(self, name):
        return self.p(name + ".crt"), self.p(name + ".key")


def tls_conf(pki, require=False, identity=False, extra=""):
    """The [tls] section plus TLS ports 0 (free ports) on every listener."""
    return ("[tls]\ncertfile %s\nkeyfile %s\ncafile %s\nrequire_certificate %s\n"
            "use_identity_as_username %s\n%s"
            "[mqtt]\ntls_port 0\n[amqp]\ntls_port 0\n[native]\ntls_port 0\n" %
            (pki.server_crt, pki.server_key, pki.ca, "true" if require else "false",
             "true" if identity else "false", extra))


class TlsFerry(sec.Ferry):
    """sec.Ferry that also knows its TLS ports: tls_ports["mqtt"|"amqp"|"native"]."""

    def __init__(self, d, conf):
        sec.Ferry.__init__(self, d, conf)
        self.tls_ports = {m.group(1): int(m.group(2)) for m in re.finditer(
            r'INFO (\w+) addr=\S+ tls_port=(\d+) msg="TLS listening"', self.log())}


def handshake(port, cafile=None, cert=None, minv=None, maxv=None, seclevel0=False):
    """A TLS handshake with Python's ssl (OpenSSL) to 127.0.0.1:port. Returns None when it
    succeeds, else the error text."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = True
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if seclevel0:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=sec.DEADLINE) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                t.do_handshake()
                # TLS 1.3: a refused client certificate is only seen on the next read.
                t.settimeout(0.5)
                try:
                    if t.recv(1) == b"":
                        return "closed by the server"
                except socket.timeout:
                    pass
                return None
    except (ssl.SSLError, OSError) as e:
        return str(e)
