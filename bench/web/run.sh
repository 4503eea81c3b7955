#!/bin/sh
# sessrec-web benchmarks (run on demand as root; see README.md):
#   - the list page over a central archive of HOSTS x SESSIONS sessions (server time from the
#     console's Server-Timing header, and the whole request from curl);
#   - the first piece of the cast of a ~1 GB recording (time to first byte and to the end of
#     the piece the player needs to start), from the start and from the middle;
#   - the first frame in headless Chromium: from navigation to the first text in the player;
#   - the console's memory while 20 followers follow a live channel.
# Usage: bench/web/run.sh [WORKDIR [HOSTS [SESSIONS]]]
#   defaults: a fresh directory under /var/tmp, 100 hosts, 1000 sessions (100,000 sessions).
# The tree is kept in WORKDIR and reused by later runs.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d /var/tmp/sessrec-bench-web.XXXXXX)}
hosts=${2:-100}
sessions=${3:-1000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
cd "$here"
cargo build -q --release -p sessrec-web
cargo build -q --release -p sessrec --example gen_records
web=$CARGO_TARGET_DIR/release/sessrec-web
gen=$CARGO_TARGET_DIR/release/examples/gen_records
central=$work/central
player=${SESSREC_PLAYER_DIR:-$here/vendor-player}
[ -f "$player/asciinema-player.min.js" ] || sh scripts/fetch-player.sh "$player"

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "cores: $(nproc); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ ! -d "$central" ]; then
    echo "generating $hosts hosts x $sessions sessions ..."
    mkdir -p "$work/stage" "$central"
    seq 1 "$hosts" | xargs -P 8 -I{} "$gen" "$work/stage/{}" "$sessions" 2000 "host{}.example.net"
    for h in $(seq 1 "$hosts"); do
        mkdir -p "$central/host$h.example.net"
        find "$work/stage/$h" -mindepth 4 -maxdepth 4 -type d -exec mv -t "$central/host$h.example.net" {} +
    done
    rm -rf "$work/stage"
fi
if [ ! -d "$central/big.example.net" ]; then
    echo "generating one ~1 GB recording ..."
    "$gen" "$work/big" 1 600000000 big.example.net
    mkdir -p "$central/big.example.net"
    find "$work/big" -mindepth 4 -maxdepth 4 -type d -exec mv -t "$central/big.example.net" {} +
    rm -rf "$work/big"
fi
big_dir=$(find "$central/big.example.net" -mindepth 1 -maxdepth 1 -type d | head -1)
big_id=big.example.net/$(basename "$big_dir")
big_size=$(stat -c %s "$big_dir/channel-1.jsonl")
count=$(find "$central" -mindepth 2 -maxdepth 2 -type d | wc -l)
echo "tree: $count sessions; the long recording: $big_size bytes ($big_id channel-1)"

# An auditor for the bench: a private PAM service, a group and a user, removed on exit.
tag=srt-webbench-$$
groupadd "$tag"
useradd -M -N -g "$tag" -s /usr/sbin/nologin "$tag"
echo "$tag:Bench-pw-1" | chpasswd
printf 'auth required pam_unix.so\naccount required pam_unix.so\n' > "/etc/pam.d/$tag"
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    for p in $(cat "$work/followers.pids" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    userdel "$tag" 2>/dev/null || true
    groupdel "$tag" 2>/dev/null || true
    rm -f "/etc/pam.d/$tag" "$work/jar" "$work/followers.pids"
}
trap cleanup EXIT INT TERM

"$web" --dir "$central" --listen 127.0.0.1:0 --pam-service "$tag" --group "$tag" --player "$player" \
    2> "$work/console.log" &
pid=$!
for _ in $(seq 50); do grep -q 'listening on' "$work/console.log" && break; sleep 0.1; done
addr=$(sed -n 's|.*listening on http://\(.*\)/$|\1|p' "$work/console.log" | head -1)
csrf=$(curl -s -c "$work/jar" "http://$addr/login" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
curl -s -b "$work/jar" -c "$work/jar" -o /dev/null --data "user=$tag&password=Bench-pw-1&csrf=$csrf" "http://$addr/login"

# One list request: "server-ms total-ms".
list() {
    curl -s -b "$work/jar" -o /dev/null -D "$work/head" -w '%{time_total}\n' "http://$addr/sessions?$1" > "$work/total"
    server=$(sed -n 's/^server-timing: app;dur=\([0-9.]*\).*/\1/p' "$work/head")
    echo "$server $(awk '{printf "%.1f", $1 * 1000}' "$work/total")"
}
list_bench() { # QUERY RUNS LABEL
    list "$1" > /dev/null # the first request warms the verdict cache of the page's sessions
    for _ in $(seq "$2"); do list "$1"; done > "$work/list.times"
    echo "list $3: server median $(cut -d' ' -f1 < "$work/list.times" | median) ms, request median $(cut -d' ' -f2 < "$work/list.times" | median) ms ($2 runs)"
}
list_bench "" 10 "page 1, no filter (target <= 300 ms server time)"
list_bench "page=1000" 10 "page 1001, no filter"
list_bench "since=1d" 10 "page 1, since=1d"
list_bench "user=user7" 3 "page 1, user=user7 (every session summarised)"

# The first piece of the long recording's cast.
cast() { # FROM-QUERY
    curl -s -b "$work/jar" -o /dev/null -D "$work/head" -w '%{time_starttransfer} %{time_total} %{size_download}\n' \
        "http://$addr/cast?id=$big_id&file=channel-1.jsonl$1"
}
cast_bench() { # FROM-QUERY LABEL
    for _ in 1 2 3 4 5; do cast "$1"; done > "$work/cast.times"
    echo "cast $2: first byte median $(awk '{print $1 * 1000}' "$work/cast.times" | median) ms, whole piece median $(awk '{print $2 * 1000}' "$work/cast.times" | median) ms, $(awk 'NR==1 {print $3}' "$work/cast.times") bytes; next piece from $(sed -n 's/^x-sessrec-next: \([0-9.]*\).*/\1/p' "$work/head") s (5 runs)"
}
cast_bench "" "from the start (target: first frame <= 1 s)"
cast_bench "&from=600" "from 600 s (mid-recording)"

# The long recording's session page and its timeline (from /timeline, in parts): the page
# as curl gets it, then every part in turn, first with nothing kept (the build reads the
# whole recording), then again (the kept build, the files unchanged).
cookie=$(awk '$6 == "sessrec_session" {print $7}' "$work/jar")
/usr/bin/python3 - "http://$addr/" "$cookie" "$big_id" <<'PY'
import json, sys, time, urllib.parse, urllib.request
base, cookie, big = sys.argv[1:4]
big = urllib.parse.quote(big, safe="")
def get(path):
    r = urllib.request.urlopen(urllib.request.Request(base + path, headers={"Cookie": "sessrec_session=" + cookie}), timeout=600)
    return r.read()
t0 = time.monotonic()
page = get("session?id=" + big)
print("session page of the long recording: %.0f ms (%d bytes)" % ((time.monotonic() - t0) * 1000, len(page)))
for label in ("first view, nothing kept", "second view, kept build"):
    t0 = time.monotonic()
    p = json.loads(get("timeline?id=%s&part=0" % big))
    first = time.monotonic() - t0
    n = len(p["entries"])
    for k in range(1, p["parts"]):
        n += len(json.loads(get("timeline?id=%s&part=%d&v=%d" % (big, k, p["version"])))["entries"])
    print("timeline, %s: first part %.0f ms, whole timeline %.0f ms (%d entries in %d parts)"
          % (label, first * 1000, (time.monotonic() - t0) * 1000, n, p["parts"]))
PY

# The first frame in a browser.
/usr/bin/python3 - "http://$addr/" "$tag" "$big_id" "$work/profile" <<'PY'
import sys, time
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
base, user, big, profile = sys.argv[1:5]
o = Options()
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000", "--user-data-dir=" + profile):
    o.add_argument(a)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
try:
    d.get(base + "login")
    d.find_element(By.ID, "user").send_keys(user)
    d.find_element(By.ID, "password").send_keys("Bench-pw-1")
    d.find_element(By.ID, "submit").click()
    WebDriverWait(d, 60).until(lambda d: d.find_elements(By.ID, "sessions"))
    for label, query in (("from the start", ""), ("at 600 s (a jump mark)", "&t=600")):
        times = []
        for _ in range(3):
            d.get("about:blank")
            t0 = time.monotonic()
            d.get(base + "play?id=" + big.replace("/", "%2F") + "&file=channel-1.jsonl" + query)
            WebDriverWait(d, 60).until(lambda d: d.find_element(By.ID, "player").text.strip() != "")
            times.append((time.monotonic() - t0) * 1000)
        times.sort()
        print("browser, first text in the player %s: median %.0f ms (3 runs: %s)"
              % (label, times[1], ", ".join("%.0f" % t for t in times)))
    # The session page (its timeline's build kept from the requests above).
    d.get("about:blank")
    t0 = time.monotonic()
    d.get(base + "session?id=" + big.replace("/", "%2F"))
    loaded = time.monotonic() - t0
    WebDriverWait(d, 600).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline[data-state]"))
    print("browser, session page of the long recording: loaded %.0f ms, timeline complete %.0f ms (%d entries)"
          % (loaded * 1000, (time.monotonic() - t0) * 1000,
             len(d.find_elements(By.CSS_SELECTOR, "#timeline li"))))
finally:
    d.quit()
PY

# Memory while 20 browsers follow a live channel: an open copy of a small session, appended to.
live_dir=$central/host1.example.net/$(ls "$central/host1.example.net" | head -1)
live=$central/big.example.net/01ffffff-0000-7000-8000-000000000001
rm -rf "$live"; cp -r "$live_dir" "$live"
grep -v '"channel.end"' "$live_dir/channel-1.jsonl" > "$live/channel-1.jsonl"
grep -v '"logout"' "$live_dir/session.jsonl" > "$live/session.jsonl"
for _ in $(seq 20); do
    curl -s -N -b "$work/jar" -o /dev/null "http://$addr/follow?id=big.example.net/01ffffff-0000-7000-8000-000000000001&file=channel-1.jsonl" &
    echo $! >> "$work/followers.pids"
done
sleep 1
line=$(grep '"type":"io"' "$live/channel-1.jsonl" | tail -1)
for _ in $(seq 100); do echo "$line" >> "$live/channel-1.jsonl"; sleep 0.05; done
echo "console memory with 20 followers: $(grep -E 'VmRSS|VmHWM' /proc/$pid/status | tr -s ' \t' ' ' | tr '\n' ' ')(target <= 64 MB)"
rm -rf "$live"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "work directory: $work (remove when done)"
