#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: the admin HTTP API with a password file. GET /health stays open (probes need no
# secret; it shows counters only). Every other route asks for HTTP Basic credentials: none or a
# wrong password -> 401 with WWW-Authenticate; a user of the file passes (the route then answers
# for itself); with an ACL file only a user with the `admin` rule does, others get 403.
# interop: ferry-only, own-broker
import base64
import http.client
import os

import sec
from sec import check, eq


def get(port, path, user=None, password=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=sec.DEADLINE)
    h = {}
    if user is not None:
        h["Authorization"] = "Basic " + base64.b64encode(
            ("%s:%s" % (user, password)).encode()).decode()
    c.request("GET", path, headers=h)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, r.getheader("WWW-Authenticate")


def test(d):
    pw = os.path.join(d, "passwd")
    sec.passwd(pw, "root", "pw-root")
    sec.passwd(pw, "alice", "pw-alice")
    acl = os.path.join(d, "acl")
    sec.write(acl, "user root\nadmin\n")
    f = sec.Ferry(d, "password_file %s\n" % pw)
    port = f.b.admin_port
    eq(get(port, "/health")[0], 200, "/health without credentials")
    st, www = get(port, "/no-such-route")
    eq(st, 401, "a route without credentials")
    check(www and www.startswith("Basic "), "WWW-Authenticate: %r" % www)
    eq(get(port, "/no-such-route", "alice", "bad")[0], 401, "wrong password")
    eq(get(port, "/no-such-route", "alice", "pw-alice")[0], 404, "alice passes (no ACL file)")
    f.close()

    f = sec.Ferry(d, "password_file %s\nacl_file %s\n" % (pw, acl))
    port = f.b.admin_port
    eq(get(port, "/no-such-route", "root", "pw-root")[0], 404, "root (admin rule) passes")
    eq(get(port, "/no-such-route", "alice", "pw-alice")[0], 403, "alice without the admin rule")
    f.close()


sec.main(test)
