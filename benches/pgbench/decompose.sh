#!/usr/bin/env bash
# Decomposes a verification's cost on PostgreSQL with pgbench (a C client, no Rust, no sqlx):
# how fast the server runs our read, our settling write (a TOTP step accepted: one conditional
# update of the user's state row), and the two in sequence, next to the
# single-row update that tools/src/bin/pg_load.rs compares against. This is the server-side ceiling
# of a two-statement verification on this machine (see BENCHMARKS.md).
#
# Usage: bash benches/pgbench/decompose.sh [fsync: on|off (default off)] [seconds (default 8)]
#        [pairs (default 7, odd)]
# Needs the PostgreSQL server binaries (initdb, pg_ctl, pgbench, psql); run as root or as a
# user that may run them. The throwaway cluster lives in /tmp and is removed at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fsync="${1:-off}"
secs="${2:-8}"
pairs="${3:-7}"
bin="$(pg_config --bindir 2>/dev/null || true)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
dir="$(mktemp -d /tmp/mfdec.XXXX)"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$dir"
  as_pg=(runuser -u postgres --)
fi
cleanup() {
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-k $dir -c listen_addresses='' -c fsync=$fsync -c shared_buffers=512MB -c max_connections=300" start >/dev/null
psql=("$bin/psql" -h "$dir" -U postgres -q -v ON_ERROR_STOP=1)
"${psql[@]}" -c "CREATE DATABASE mfa"
"${psql[@]}" -d mfa -f "$here/schema.sql"
# 3,000 users, each with a TOTP device (used once) and a 32-code backup set, and the state row
# a verification settles (synthetic bytes: the server does the same work whatever they are).
# A TOTP device's id is the 16 digits of 10^15 + the user's number, so that the scripts bind it
# as a value (`:d`), as the store does, rather than computing it in SQL at every use.
"${psql[@]}" -d mfa <<'SQL'
INSERT INTO mfa_devices (id, user_id, kind, name, created_at, confirmed, totp_algorithm, totp_digits,
                         totp_period, totp_secret)
SELECT convert_to((1000000000000000 + g)::text, 'UTF8'), 'user' || g, 'totp', 'Phone', 1, true, 'SHA1', 6, 30,
       decode(repeat(md5('s' || g), 5), 'hex')
FROM generate_series(1, 3000) g;
INSERT INTO mfa_devices (id, user_id, kind, name, created_at, confirmed, codes_salt, codes_length,
                         codes_hashes)
SELECT decode(md5('b' || g), 'hex'), 'user' || g, 'backup_codes', 'Codes', 2, true, decode(md5('x' || g), 'hex'), 12,
       decode(repeat(md5('h' || g), 64), 'hex')
FROM generate_series(1, 3000) g;
INSERT INTO mfa_user_state (user_id, version, totp_marks, codes_set, codes_unused)
SELECT 'user' || g, 1, convert_to((1000000000000000 + g)::text, 'UTF8') || int8send(1) || int8send(2),
       decode(md5('b' || g), 'hex'),
       4294967295
FROM generate_series(1, 3000) g;
VACUUM ANALYZE;
SQL
"$bin/pgbench" -h "$dir" -U postgres -i -s 10 -q mfa >/dev/null 2>&1
echo "fsync=$fsync, 8 clients, -j 2, -M prepared, ${secs} s each ($("$bin/postgres" --version))"
run() {
  "$bin/pgbench" -h "$dir" -U postgres -n -M prepared -c 8 -j 2 -T "$secs" -f "$here/$1.sql" mfa 2>&1 |
    awk '/^tps/ {print $3}'
}
# The settlement against pgbench's update in interleaved pairs (one run each is at the mercy
# of whatever else the machine does in those seconds: on this 2-core machine one pair ranges
# 0.7-1.0x), then the read and the two in sequence.
ratios=()
for pair in $(seq 1 "$pairs"); do
  base=$(run single_update)
  ours=$(run our_update)
  ratio=$(awk -v a="$ours" -v b="$base" 'BEGIN {printf "%.2f", a / b}')
  ratios+=("$ratio")
  printf '  pair %d: %-13s %8.0f tps   %-11s %8.0f tps   ratio %s\n' "$pair" single_update "$base" our_update "$ours" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(((pairs + 1) / 2))p")
mean=$(printf '%s\n' "${ratios[@]}" | awk '{s += $1} END {printf "%.2f", s / NR}')
echo "  our_update / single_update over $pairs pairs: median $median, mean $mean"
for script in our_read our_verification; do
  printf '  %-18s %10.0f tps\n' "$script" "$(run "$script")"
done
# The settling scripts must have accepted hits (a miss is cheaper): each writes step 1 back.
hits=$("${psql[@]}" -d mfa -At -c "SELECT COUNT(*) FROM mfa_user_state WHERE hit AND substring(totp_marks FROM 17 FOR 8) = int8send(2)")
echo "  users whose TOTP step a settlement accepted: $hits of 3000"
[ "$hits" -gt 2900 ] || { echo "decompose.sh: the settlement scripts did not accept their hits" >&2; exit 1; }
