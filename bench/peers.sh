#!/bin/bash
# ferry beside mbsync on the same generated corpus, against a private Dovecot
# on 127.0.0.1, in one run (these machines are noisy: compare within a run).
#
#   bench/peers.sh N            e.g. bench/peers.sh 20000
#
# Reuses the peer harness's helpers (PEER_BENCH, default ../shared/bench:
# dovecot.sh, gen_corpus.py, bench_util.py). For each tool, on a fresh
# hard-linked copy of the same corpus:
#   a-initial        first sync into an empty Maildir
#   b-noop           resync with nothing changed (NOOP_REPS runs; median)
#   c-flags1%srv     after toggling \Flagged on 1% of the messages on the server
#   d-flags1%local   after toggling F on 1% of the local files (a rename, as mutt does)
#   e-del1%local     after deleting 1% of the local files
# Each run is timed by /usr/bin/time -v (wall, user, sys, max RSS) and followed
# by a check that every folder has the same (messages, seen, flagged) on both
# sides. Output: $WORK/results.tsv and a table on stdout.
#
# Env: WORK (/tmp/ferry-bench-N)  PORT (14400)  COMPRESS (0 | 1: server offers
#      COMPRESS=DEFLATE; mbsync then always uses it, ferry not on loopback)
#      TOOLS ("ferry mbsync")  NOOP_REPS (3)  SEED (42)  FERRY (target/release/ferry)
set -euo pipefail

N=${1:?usage: bench/peers.sh N}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=$(cd "${PEER_BENCH:-$ROOT/../shared/bench}" && pwd)
WORK=${WORK:-/tmp/ferry-bench-$N}
PORT=${PORT:-14400}
COMPRESS=${COMPRESS:-0}
TOOLS=${TOOLS:-ferry mbsync}
NOOP_REPS=${NOOP_REPS:-3}
SEED=${SEED:-42}
FERRY=${FERRY:-$ROOT/target/release/ferry}
U="python3 $PEER/bench_util.py"

[[ -x $FERRY ]] || { echo "build ferry first: cargo build --release --bin ferry" >&2; exit 1; }
mkdir -p "$WORK/logs"
RES=$WORK/results-z$COMPRESS.tsv
printf 'N\ttool\tphase\twall_s\tuser_s\tsys_s\tmaxrss_MB\texit\tcheck\n' > "$RES"

PRISTINE=$WORK/pristine
if [[ ! -f $PRISTINE/.ok-$N-$SEED ]]; then
  rm -rf "$PRISTINE"
  python3 "$PEER/gen_corpus.py" "$N" "$PRISTINE/Maildir" --seed "$SEED" | sed 's/^/# /'
  touch "$PRISTINE/.ok-$N-$SEED"
fi

SRV=""
cleanup() { [[ -n $SRV ]] && "$PEER/dovecot.sh" stop "$SRV" >/dev/null 2>&1 || true; }
trap cleanup EXIT

# flag_local DIR PCT: toggle F on every k-th local file (sorted), by rename.
flag_local() {
  python3 - "$1" "$2" <<'PY'
import os, sys
root, pct = sys.argv[1], float(sys.argv[2])
k = max(1, round(100 / pct)); n = 0
for dp, dns, fns in sorted(os.walk(root)):
    if os.path.basename(dp) != "cur":
        continue
    for fn in sorted(fns)[k // 3::k]:
        base, _, info = fn.partition(":2,")
        info = info.replace("F", "") if "F" in info else "".join(sorted(info + "F"))
        os.rename(os.path.join(dp, fn), os.path.join(dp, f"{base}:2,{info}"))
        n += 1
print(f"toggled F on {n} local files")
PY
}

timed() {
  local tool=$1 phase=$2 tag="$1-$2-$(date +%s%N)"
  sleep 1.1
  /usr/bin/time -v -o "$WORK/logs/$tag.time" "${CMD[@]}" > "$WORK/logs/$tag.log" 2>&1 || true
  local tv chk
  tv=$($U timev "$WORK/logs/$tag.time")
  chk=$($U check "$PORT" "$LOCAL" | cut -f1 || echo ERROR)
  printf '%s\t%s\t%s\t%s\t%s\n' "$N" "$tool" "$phase" "$tv" "$chk" >> "$RES"
  tail -1 "$RES" | sed 's/^/  /'
}

for tool in $TOOLS; do
  SRV=$WORK/srv-$tool
  "$PEER/dovecot.sh" stop "$SRV" >/dev/null 2>&1 || true
  rm -rf "$SRV" "$WORK/$tool"
  mkdir -p "$SRV/mail/bench" "$WORK/$tool"
  cp -al "$PRISTINE/Maildir" "$SRV/mail/bench/Maildir"
  BENCH_NO_COMPRESS=$((1 - COMPRESS)) "$PEER/dovecot.sh" start "$SRV" "$PORT" | sed 's/^/# /'
  doveadm -c "$SRV/dovecot.conf" index -u bench '*'
  T=$WORK/$tool; LOCAL=$T/local; mkdir -p "$LOCAL"
  case $tool in
  ferry)
    cat > "$T/ferry.toml" <<TOML
state_dir = "$T/state"
[accounts.bench]
host = "127.0.0.1"
port = $PORT
tls = "none"
user = "bench"
password = "bench"
maildir = "$LOCAL"
TOML
    chmod 600 "$T/ferry.toml"
    CMD=("$FERRY" --config "$T/ferry.toml" sync -q)
    ;;
  mbsync)
    sed -e "s#@PORT@#$PORT#" -e "s#@SSLTYPE@#None#" -e "s#@CERTLINE@##" -e "s#@LOCAL@#$LOCAL#g" \
      "$PEER/mbsyncrc.in" > "$T/mbsyncrc"
    CMD=(mbsync -c "$T/mbsyncrc" -a)
    ;;
  *) echo "unknown tool $tool" >&2; exit 1 ;;
  esac
  timed "$tool" a-initial
  for _ in $(seq "$NOOP_REPS"); do timed "$tool" b-noop; done
  $U flag-server "$PORT" 1 | sed 's/^/# /'
  timed "$tool" c-flags1%srv
  flag_local "$LOCAL" 1 | sed 's/^/# /'
  timed "$tool" d-flags1%local
  $U delete-local "$LOCAL" 1 | sed 's/^/# /'
  timed "$tool" e-del1%local
  "$PEER/dovecot.sh" stop "$SRV" | sed 's/^/# /'
  SRV=""
done
echo
column -t -s $'\t' "$RES"
