"""Summarise an official-suite run against `expected.txt` (run by run.sh; stdlib only).

Each line of `expected.txt` is `<node id><TAB><cause>: <detail>`: every test the emulator is
known not to pass and why. Causes `out of scope` (the test creates an entity type or service
outside issue 9) take the test out of the in-scope count; `internet`, `portal host` and `gcs`
are in scope but cannot pass on loopback. The run fails (exit 1) when a test outside the list
fails, or a listed test passes (the list must stay exact), so a regression cannot hide in the
totals.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path


def node_id(classname: str, name: str) -> str:
    """pytest's node id from junit's dotted classname (module names start with test_ or
    integration_test in this suite; the parts after the module are classes)."""
    parts = classname.split(".")
    module = next(
        i for i, part in enumerate(parts) if part.startswith(("test_", "integration_test"))
    )
    path = "/".join(parts[: module + 1]) + ".py"
    return "::".join([path, *parts[module + 1 :], name])


def outcomes(junit: Path) -> dict[str, str]:
    result: dict[str, str] = {}
    for case in ET.parse(junit).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        nid = node_id(case.get("classname", ""), case.get("name", ""))
        # A test that fails in teardown after passing appears twice: the failure wins.
        if result.get(nid) != "failed":
            result[nid] = outcome
    return result


def expected(listing: Path) -> dict[str, str]:
    causes: dict[str, str] = {}
    for line in listing.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            nid, cause = line.split("\t", 1)
            causes[nid] = cause
    return causes


def main(junit: Path, listing: Path) -> int:
    results = outcomes(junit)
    causes = expected(listing)
    out_of_scope = {nid for nid, cause in causes.items() if cause.startswith("out of scope")}
    in_scope = Counter(outcome for nid, outcome in results.items() if nid not in out_of_scope)
    print(
        f"selected files: {len(results)} tests; out of scope: "
        f"{sum(1 for nid in results if nid in out_of_scope)}; in scope: "
        f"{sum(in_scope.values())} — {in_scope['passed']} passed, {in_scope['failed']} failed, "
        f"{in_scope['skipped']} skipped"
    )
    for nid, outcome in sorted(results.items()):
        if outcome == "failed" and nid in causes and nid not in out_of_scope:
            print(f"  in scope, cannot pass here: {nid} ({causes[nid]})")
    unexpected = sorted(n for n, o in results.items() if o == "failed" and n not in causes)
    stale = sorted(n for n, o in results.items() if o == "passed" and n in causes)
    for nid in unexpected:
        print(f"UNEXPECTED FAILURE: {nid}")
    for nid in stale:
        print(f"LISTED BUT PASSED (update expected.txt): {nid}")
    return 1 if unexpected or stale else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
