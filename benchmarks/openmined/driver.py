"""Baseline driver: OpenMined PSI (C++, P-256) on the same ids as ``vfl bench psi``.

Runs in its own virtualenv (see README.md): ``python driver.py CLIENT_IDS SERVER_IDS``, each file
one id per line. Prints one JSON object: the intersection size and the wall time of the PSI work
(client request, server setup and response, client intersection), ids already in memory.
The library runs both roles in one process (it has no transport); its work is single-threaded.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main() -> int:
    import private_set_intersection.python as psi  # type: ignore[import-not-found]

    client_path, server_path = sys.argv[1], sys.argv[2]
    with open(client_path, encoding="utf-8") as fh:
        client_items = [line.strip() for line in fh if line.strip()]
    with open(server_path, encoding="utf-8") as fh:
        server_items = [line.strip() for line in fh if line.strip()]
    start = time.perf_counter()
    cpu_start = time.process_time()
    client = psi.client.CreateWithNewKey(True)
    server = psi.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(1e-12, len(client_items), server_items, psi.DataStructure.RAW)
    request = client.CreateRequest(client_items)
    response = server.ProcessRequest(request)
    intersection = client.GetIntersection(setup, response)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(
        json.dumps(
            {
                "library": "openmined-psi",
                "data_structure": "RAW",
                "intersection_size": len(intersection),
                "seconds": elapsed,
                "cpu_seconds": cpu,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
