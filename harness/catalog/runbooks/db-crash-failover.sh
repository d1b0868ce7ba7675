#!/usr/bin/env bash
# 数据库宕机 → 同城灾备接管: the technical group's failover script (the DBA owns it).
#
#   1. tell patients and staff first: the app banner, the emergency hotline, the hospital broadcast;
#   2. check that the same-city standby is a live standby, then promote it;
#   3. move the app's database address (the `db` link) to it, and check it takes writes.
#
# It reaches the hospital's tools through the drill's control surface ($HD_CTL, docs/ctl.md) and the
# databases themselves through psql ($HD_PG_BIN, the DSNs in docs/runbook-scripts.md). It says what it
# did on stdout as `hd: key=value` lines; anything wrong goes to stderr and ends it non-zero.
set -euo pipefail

STANDBY=${1:-pg-samecity}   # the plan's failover target: the same-city DR

die() { echo "failover: $*" >&2; exit 3; }
PSQL=${HD_PG_BIN:+$HD_PG_BIN/}psql   # the wheel's psql, else the one on PATH
psql_at() { "$PSQL" "$1" -X -qAt -v ON_ERROR_STOP=1 -c "$2"; }

# the standby's own address, from its name: pg-samecity → $HD_PG_SAMECITY_DIRECT_DSN
part=${STANDBY#pg-}; part=${part^^}; part=${part//-/_}
dsn_var="HD_PG_${part}_DIRECT_DSN"
dsn=${!dsn_var:-}
[ -n "$dsn" ] || die "$STANDBY: no such standby in this stack (standbys: $HD_PG_STANDBYS)"

# 1. patients and staff hear it from us before they find out themselves
$HD_CTL notice set "系统升级维护中，部分服务暂不可用，请稍后再试。线下就诊请到门诊扫码登记。"
$HD_CTL notify hotline 患者 "互联网医院暂时无法服务，复诊、开药请拨打应急热线，我们将为您线下安排。"
$HD_CTL notify broadcast 全院 "互联网医院系统故障，已启动一级响应，门诊转线下扫码接诊。"
echo "hd: notice=set"
echo "hd: notified=hotline,broadcast"

# 2. promote only a live standby: promoting a node that is down or already primary makes things worse
in_recovery=$(psql_at "$dsn" "SELECT pg_is_in_recovery()") \
  || die "$STANDBY does not answer at its own address"
[ "$in_recovery" = t ] || die "$STANDBY is not in recovery: it is no standby, not promoting it"
echo "hd: standby_replayed_lsn=$(psql_at "$dsn" "SELECT pg_last_wal_replay_lsn()")"

$HD_CTL promote "$STANDBY"
[ "$(psql_at "$dsn" "SELECT pg_is_in_recovery()")" = f ] || die "$STANDBY is still in recovery after promote"
echo "hd: promoted=$STANDBY"

# 3. the app's database address follows the new primary; the app must be able to write through it
$HD_CTL repoint db "$STANDBY"
[ "$(psql_at "$HD_DB_DSN" "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'")" = t ] \
  || die "the db address does not lead to a writable primary after the repoint"
echo "hd: db_link=$STANDBY"
