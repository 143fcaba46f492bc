#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Writes the results of crash_loop.py runs (their --json files) as a Markdown table between the
# markers `<!-- torture-results:begin -->` and `<!-- torture-results:end -->` of a document.
# Usage: report.py DOC RESULT.json...
import json
import sys
import time

BEGIN, END = "<!-- torture-results:begin -->", "<!-- torture-results:end -->"


def table(runs):
    out = ["Run of %s (`make torture`)." % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "",
           "| signal | flush | rounds | path | acked | delivered | lost | duplicates | reordered | "
           "QoS 2 stored twice | QoS 2 to subscriber twice | QoS 2 never released | elapsed | "
           "seed | result |",
           "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
           "| ---: | --- |"]
    for r in runs:
        for p in r["paths"]:
            mq = p["path"] == "mqtt"
            out.append("| SIG%s | %s | %d | %s | %d | %d | %d | %d | %d | %s | %s | %s | %.0f s | "
                       "%d | %s |" % (
                           r["signal"].upper(), r["flush"], r["rounds"], p["path"], p["acked"],
                           p["delivered"], p["lost"], p["duplicates"], p["disorder"],
                           r.get("qos2_stored_twice", "-") if p["path"] == "native" else "-",
                           r.get("qos2_subscriber_duplicates", "-") if mq else "-",
                           r.get("qos2_subscriber_stuck", "-") if mq else "-",
                           r["elapsed"], r["seed"], "pass" if r["ok"] else "**FAIL**"))
    lines = []
    for r in runs:
        lines.append("- SIG%s, flush=%s: acknowledged per producer %s; stop max %.2f s, start "
                     "mean %.2f s max %.2f s" % (
                         r["signal"].upper(), r["flush"],
                         ", ".join("%s %d" % kv for kv in sorted(r["acked_per_producer"].items())),
                         r["stop_max_s"], r["start_mean_s"], r["start_max_s"]))
    return "\n".join(out + [""] + lines)


def main():
    doc, files = sys.argv[1], sys.argv[2:]
    runs = []
    for f in files:
        with open(f) as fh:
            runs.append(json.load(fh))
    with open(doc) as fh:
        text = fh.read()
    a, b = text.index(BEGIN) + len(BEGIN), text.index(END)
    text = text[:a] + "\n" + table(runs) + "\n" + text[b:]
    with open(doc, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
