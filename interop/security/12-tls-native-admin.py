#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: the native protocol over TLS ([native] tls_port) with ferryctl (libferry's
# fy_client_opts.tls) and the admin API over HTTPS ([admin] tls) with curl, both with
# require_certificate and use_identity_as_username. ferryctl with --cafile/--cert/--key sends
# 2000 pipelined messages and consumes them back over TLS as the certificate's user (bob; the
# ACL refuses alice's topics even with --user alice); refused: no client certificate, a broker
# certificate from an untrusted CA, a plain client on the TLS port (the broker stays up). curl
# gets /health over HTTPS with a client certificate; without one, or over plain HTTP, it fails.
# interop: ferry-only, own-broker
import os
import subprocess

import sec
import tlsutil
from sec import check, eq

ACL = """user alice
ntopic readwrite alice*
group ga

user bob
ntopic readwrite bob*
group gb
"""


def ctl(args, stdin=None, env=None):
    e = dict(os.environ)
    e.pop("FERRY_USER", None)
    e.pop("FERRY_PASSWORD", None)
    e.update(env or {})
    return subprocess.run([sec.FERRYCTL] + args, input=stdin, capture_output=True, text=True,
                          timeout=60, env=e)


def curl(args):
    return subprocess.run(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w",
                           "%{http_code}"] + args, capture_output=True, text=True, timeout=30)


def test(d):
    pki = tlsutil.Pki(d)
    pw = os.path.join(d, "passwd")
    sec.passwd(pw, "alice", "pw-alice")
    acl = os.path.join(d, "acl")
    sec.write(acl, ACL)
    f = tlsutil.TlsFerry(d, "password_file %s\nacl_file %s\n" % (pw, acl) +
                         tlsutil.tls_conf(pki, require=True, identity=True,
                                          extra="[admin]\ntls true\n"))
    check('msg="admin HTTPS listening"' in f.log(), "admin serves HTTPS")
    port = f.tls_ports["native"]
    addr = "127.0.0.1:%d" % port
    bob = ["--broker", addr, "--cafile", pki.ca, "--cert", pki.client("bob")[0], "--key",
           pki.client("bob")[1]]

    # 2000 messages pipelined over TLS, then consumed back over TLS.
    lines = "".join("message %04d %s\n" % (i, "x" * 200) for i in range(2000))
    r = ctl(bob + ["send", "bob1"], stdin=lines)
    eq(r.returncode, 0, "ferryctl send over TLS (stderr %s)" % r.stderr)
    eq(len(r.stdout.splitlines()), 2000, "message ids printed")
    r = ctl(bob + ["consume", "bob1", "--group", "gb", "--from", "first", "--count", "2000",
                   "--timeout", "20000"])
    eq(r.returncode, 0, "ferryctl consume over TLS (stderr %s)" % r.stderr)
    got = sorted(r.stdout.splitlines())
    eq(len(got), 2000, "messages consumed over TLS")
    check(got == lines.splitlines(), "the 2000 messages consumed over TLS are the ones sent "
          "(queues interleave; compared sorted)")

    # The certificate is the user: bob, even with --user alice and her password.
    r = ctl(bob + ["--user", "alice", "send", "alice1", "forged"],
            env={"FERRY_PASSWORD": "pw-alice"})
    check(r.returncode != 0, "bob's certificate sent to alice's topic: %s" % r.stdout)
    check("not authorized" in r.stderr.lower() or "EPERM" in r.stderr,
          "refusal of alice1: %s" % r.stderr)

    # Refused at the handshake, with the reason on stderr.
    r = ctl(["--broker", addr, "--cafile", pki.ca, "send", "bob1", "no cert"])
    check(r.returncode != 0, "ferryctl without a client certificate sent")
    check("TLS" in r.stderr or "closed" in r.stderr, "stderr without a certificate: %s" % r.stderr)
    r = ctl(["--broker", addr, "--cafile", pki.other_ca, "--cert", pki.client("bob")[0], "--key",
             pki.client("bob")[1], "send", "bob1", "wrong ca"])
    check(r.returncode != 0, "ferryctl trusting another CA sent")
    check("certificate verify failed" in r.stderr, "stderr with another CA: %s" % r.stderr)
    # A plain client on the TLS port fails cleanly; the plain port still serves.
    r = ctl(["--broker", addr, "--timeout", "2000", "send", "bob1", "plain"])
    check(r.returncode != 0, "plain ferryctl on the TLS port sent")
    # (The plain port answers HELLO: an anonymous client is refused by name. A password login
    # would cost a PBKDF2 round, slow under the sanitizers.)
    r = ctl(["--broker", "127.0.0.1:%d" % f.b.native_port, "send", "alice1", "plain tcp"])
    check(r.returncode != 0 and "anonymous clients are not allowed" in r.stderr,
          "plain ferryctl on the plain port: rc %d stderr %s" % (r.returncode, r.stderr))

    # Admin over HTTPS.
    url = "https://localhost:%d/health" % f.b.admin_port
    res = ["--resolve", "localhost:%d:127.0.0.1" % f.b.admin_port]
    r = curl(res + ["--cacert", pki.ca, "--cert", pki.client("bob")[0], "--key",
                    pki.client("bob")[1], url])
    eq(r.stdout, "200", "curl /health over HTTPS (stderr %s)" % r.stderr)
    r = curl(res + ["--cacert", pki.ca, url])
    check(r.stdout != "200", "curl without a client certificate got /health")
    r = curl(["http://127.0.0.1:%d/health" % f.b.admin_port])
    check(r.stdout != "200", "plain HTTP on the HTTPS port got /health")
    r = curl(res + ["--cacert", pki.ca, "--cert", pki.client("bob")[0], "--key",
                    pki.client("bob")[1], url])
    eq(r.stdout, "200", "curl /health over HTTPS after the refusals")
    f.close()


if __name__ == "__main__":
    sec.main(test)
