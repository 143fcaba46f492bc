#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: TLS fails closed. ferryd refuses to start, naming the key and the file, when the
# certificate or key is missing or is not PEM, when the key does not belong to the certificate,
# when the CA file is bad, when the cipher list leaves nothing, when use_identity_as_username
# comes without require_certificate (or require_certificate without a cafile), when [admin] tls
# is on without a certificate, or for a TLS version below 1.2; `ferryd --check-config` refuses
# the same. Without a certfile no TLS listener opens.
# interop: ferry-only, own-broker
import os
import subprocess

import sec
import tlsutil
from sec import check


def conf(pki, **kw):
    keys = {"certfile": pki.server_crt, "keyfile": pki.server_key, "cafile": pki.ca}
    keys.update(kw)
    return "[tls]\n" + "".join("%s %s\n" % (k, v) for k, v in keys.items() if v is not None)


def test(d):
    pki = tlsutil.Pki(d)
    garbage = os.path.join(d, "garbage.pem")
    sec.write(garbage, "not a certificate\n")
    missing = os.path.join(d, "nope.pem")
    cases = [
        ("missing certfile", conf(pki, certfile=missing), r"certfile %s: cannot read it" % missing),
        ("missing keyfile", conf(pki, keyfile=missing), r"keyfile %s: cannot read it" % missing),
        ("missing cafile", conf(pki, cafile=missing), r"cafile %s: cannot read it" % missing),
        ("certfile not PEM", conf(pki, certfile=garbage), r"certfile %s: not a PEM" % garbage),
        ("certfile a directory", conf(pki, certfile=d), r"certfile %s" % d),
        ("keyfile not PEM", conf(pki, keyfile=garbage), r"keyfile %s" % garbage),
        ("key of another certificate", conf(pki, keyfile=pki.p("alice.key")),
         r"keyfile %s" % pki.p("alice.key")),
        ("cafile not PEM", conf(pki, cafile=garbage), r"cafile %s" % garbage),
        ("certfile without keyfile", conf(pki, keyfile=None), r"keyfile is not"),
        ("no usable cipher", conf(pki, ciphers="NOSUCHCIPHER"), r"ciphers 'NOSUCHCIPHER'"),
        ("identity without require_certificate", conf(pki, use_identity_as_username="true"),
         r"use_identity_as_username true needs require_certificate true"),
        ("require_certificate without cafile", conf(pki, cafile=None,
                                                     require_certificate="true"),
         r"require_certificate true needs a cafile"),
        ("TLS 1.1", conf(pki, tls_version="tlsv1.1"), r"tls_version"),
        ("admin tls without a certificate", "[admin]\ntls true\n", r"\[admin\] tls true needs"),
    ]
    import re
    for what, text, want in cases:
        err = sec.refused_start(text, d)
        check(re.search(want, err), "%s: stderr %r does not match %r" % (what, err, want))
        path = os.path.join(d, "check.conf")
        sec.write(path, text)
        r = subprocess.run([sec.BIN, "--check-config", "-c", path], capture_output=True,
                           text=True, timeout=30)
        check(r.returncode != 0 and re.search(want, r.stderr),
              "--check-config with %s: rc %d stderr %r" % (what, r.returncode, r.stderr))

    # No certfile: no TLS listener.
    f = tlsutil.TlsFerry(d, "[mqtt]\ntls_port 0\n")
    check(not f.tls_ports, "TLS listeners without a certificate: %r" % f.tls_ports)
    f.close()


if __name__ == "__main__":
    sec.main(test)
