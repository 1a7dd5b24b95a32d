#!/usr/bin/env bash
# Attacks the release binary from outside, as a stranger on the network would,
# and prints what it answered: the default-password login, a concurrent burst
# of wrong passwords, a flood of wrong client secrets (with the server's
# resident memory), invented HTTP methods, forged forwarded headers, a body
# that trickles in, a planted CSRF cookie, implausible payments.
# Loopback only; bounded in count and time. Usage: scripts/attack.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -q -p zhima-server
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/zhima
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ZHIMA_DATABASE__URL="sqlite://$WORK/zhima.db" ZHIMA_QR__KEY_FILE="$WORK/qr.key"
export ZHIMA_LOG__LEVEL=warn ZHIMA_HTTP__BIND="127.0.0.1:$PORT"
KEY=$("$BIN" api-key create --name attack --scopes member:read,member:write,door:open,admin | tail -n 1)
CID=$("$BIN" partner add --name Evil --redirect-uri https://partner.example/cb | awk '/^client_id:/ {print $2}')
"$BIN" serve >"$WORK/server.log" 2>&1 & PID=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

python3 - "http://127.0.0.1:$PORT" "$KEY" "$CID" "$PID" <<'PY'
import base64, concurrent.futures as cf, json, re, socket, sys, time, urllib.parse, urllib.request

B, key, cid, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
port = int(B.rsplit(":", 1)[1])

def rss():
    st = open(f"/proc/{pid}/status").read()
    g = lambda k: int(re.search(k + r":\s+(\d+)", st).group(1)) // 1024
    return g("VmRSS"), g("VmHWM")

def req(method, path, body=None, headers={}):
    data = body.encode() if isinstance(body, str) else body
    r = urllib.request.Request(B + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers

print("resident MB now/peak at start:", rss())
req("POST", "/api/v1.0/member/new", json.dumps({"openid": "victim-0001", "basicInfo": {"nickName": "Victim"}}),
    {"Authorization": "Bearer " + key})
auth = {"response_type": "code", "client_id": cid, "redirect_uri": "https://partner.example/cb", "scope": "profile",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
s, b, h = req("GET", "/oauth/authorize?" + urllib.parse.urlencode(auth))
cookie = h.get("Set-Cookie", "").split(";")[0]
form = dict(auth, zhima_csrf=cookie.split("=", 1)[1], zhima_nickname="victim", zhima_password="password123",
            zhima_action="login")
post = lambda f: req("POST", "/oauth/authorize", urllib.parse.urlencode(f),
                     {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
s, b, h = post(form)
print("default password login: status", s, "| consent page:", "Allow access" in b.decode())
with cf.ThreadPoolExecutor(50) as ex:
    res = list(ex.map(lambda i: post(dict(form, zhima_password=f"wrong{i}"))[0], range(50)))
print("50 concurrent wrong passwords for one account:", {k: res.count(k) for k in set(res)})
basic = "Basic " + base64.b64encode(f"{cid}:wrong".encode()).decode()
tok = lambda i: req("POST", "/oauth/token", "grant_type=authorization_code&code=x&redirect_uri=https%3A%2F%2Fpartner.example%2Fcb",
                    {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"})[0]
with cf.ThreadPoolExecutor(100) as ex:
    res = list(ex.map(tok, range(300)))
print("300 wrong client secrets:", {k: res.count(k) for k in set(res)}, "| resident MB now/peak:", rss())
for i in range(200):
    try:
        req("X" * 1500 + str(i), "/healthz")
    except Exception:
        pass
s, b, h = req("GET", "/metrics", None, {"Authorization": "Bearer " + key})
print("/metrics after 200 invented methods:", len(b), "bytes")
s, b, h = req("GET", "/.well-known/oauth-authorization-server", None,
              {"X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example;proto=https"})
print("metadata issuer with forged headers:", json.loads(b)["issuer"], "|", h.get("Cache-Control"))
sk = socket.create_connection(("127.0.0.1", port)); t0 = time.time(); answer = b""
sk.sendall(f"POST /api/v1.0/member/new HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Length: 100\r\n\r\n".encode())
sk.settimeout(1)
for _ in range(30):
    try:
        sk.sendall(b" "); answer = sk.recv(4096)
        if answer: break
    except socket.timeout:
        pass
    except OSError:
        break
print("a body sent a byte a second: answered after %.1f s:" % (time.time() - t0), answer.split(b"\r\n")[0].decode())
s, b, h = req("GET", "/oauth/authorize?" + urllib.parse.urlencode(auth), None, {"Cookie": "zhima_csrf=" + "A" * 7000})
print("planted 7 KB CSRF cookie: status", s, "| a fresh one minted:", not h.get("Set-Cookie", "").startswith("zhima_csrf=AAAA"))
pay = lambda d: json.loads(req("PATCH", "/api/v1.0/member/openid/victim-0001", json.dumps({"op": "add", "data": d}),
                               {"Authorization": "Bearer " + key})[1])
print("paidTime 999912312359:", pay({"paidTime": "999912312359", "payIndex": "y", "CNYAmount": 1})["errno"])
r = pay({"paidTime": "201801010000", "payIndex": "t", "CNYAmount": "200000000", "payType": "TOKENS"})
print("200,000,000 CNY of TOKENS:", r["errno"], r["data"])
time.sleep(2)
print("resident MB now/peak at the end:", rss())
PY
