"""Drive stdio MCP servers the way a host does and time them (used by bench/bridge.sh).

  bridge_session.py session N -- COMMAND...    N whole sessions: spawn, initialize, initialized,
                                               tools/list, one tools/call, EOF, exit
  bridge_session.py calls N -- COMMAND...      one session, then N sequential tools/call
  bridge_session.py http N URL HEADER TOKEN    N sequential tools/call straight over HTTP
                                               (keep-alive, one session): the baseline
  bridge_session.py process N -- COMMAND...    N runs of a one-shot command (e.g. `mcpgen client`)

Prints one JSON object: median and p90 in milliseconds.
"""

import http.client
import json
import statistics
import subprocess
import sys
import time
import urllib.parse

INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
CALL = {"name": "getOrders", "arguments": {}}


class Stdio:
    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def send(self, message):
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, id, method, params=None):
        message = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"EOF before the reply to {method}")
            reply = json.loads(line)
            if reply.get("id") == id and "method" not in reply:
                if "error" in reply:
                    raise SystemExit(f"{method}: {reply['error']}")
                return reply

    def open(self):
        self.request(0, "initialize", INIT)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def summary(samples):
    samples = sorted(samples)
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "p90_ms": round(samples[int(len(samples) * 0.9) - 1] * 1000, 3),
    }


def sessions(n, argv):
    out = []
    for _ in range(n):
        started = time.perf_counter()
        s = Stdio(argv)
        s.open()
        s.request(1, "tools/list", {})
        s.request(2, "tools/call", CALL)
        s.close()
        out.append(time.perf_counter() - started)
    return out


def calls(n, argv):
    s = Stdio(argv)
    s.open()
    for i in range(20):  # warm up
        s.request(1000 + i, "tools/call", CALL)
    out = []
    for i in range(n):
        started = time.perf_counter()
        s.request(i + 1, "tools/call", CALL)
        out.append(time.perf_counter() - started)
    s.close()
    return out


def direct(n, url, header, token):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    headers = {header: token, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

    def post(message, extra=None):
        conn.request("POST", u.path, json.dumps(message), {**headers, **(extra or {})})
        response = conn.getresponse()
        body = response.read()
        return response, body

    response, body = post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
    session = {"Mcp-Session-Id": response.getheader("Mcp-Session-Id"), "MCP-Protocol-Version": json.loads(body)["result"]["protocolVersion"]}
    post({"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    for i in range(20):
        post({"jsonrpc": "2.0", "id": 1000 + i, "method": "tools/call", "params": CALL}, session)
    out = []
    for i in range(n):
        started = time.perf_counter()
        response, body = post({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": CALL}, session)
        if response.status != 200 or "result" not in json.loads(body):
            raise SystemExit(f"HTTP {response.status}: {body[:200]!r}")
        out.append(time.perf_counter() - started)
    return out


def processes(n, argv):
    out = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - started)
    return out


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    rest = sys.argv[3:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    samples = {"session": sessions, "calls": calls, "process": processes}.get(mode)
    result = samples(n, rest) if samples else direct(n, *rest)
    print(json.dumps(summary(result)))


if __name__ == "__main__":
    main()
