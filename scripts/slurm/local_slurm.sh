#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for testing the workflow's
# SLURM profile (tests/workflow/test_slurm.py) and for trying it out by hand.
#
#   scripts/slurm/local_slurm.sh start    install (Debian packages) and start
#   scripts/slurm/local_slurm.sh status   show the daemons and the node
#   scripts/slurm/local_slurm.sh env      print `export SLURM_CONF=...` for eval
#   scripts/slurm/local_slurm.sh stop     cancel the jobs, stop what start started
#
# Runs as root on Debian, without systemd: munged, MariaDB, slurmdbd,
# slurmctld and slurmd are started directly as daemons whose configuration,
# sockets, pid files, logs, spool directories and database all live in one
# state directory (PYAMA_SLURM_DIR, default /tmp/pyama-slurm). Nothing under
# /etc is written and the system-wide munge and MariaDB services are neither
# used nor started. SLURM's commands find this cluster through SLURM_CONF, and
# while it runs also through the link /run/slurm/conf (see link_run_conf):
#
#   eval "$(scripts/slurm/local_slurm.sh env)"; sinfo; sacct
#
# `start` is idempotent: a daemon whose pid file names a live process is kept,
# a dead one is restarted, and the cluster, account and user are registered in
# the accounting database only when missing. `stop` ends exactly the processes
# named by the pid files in the state directory (after checking each process's
# name), never anything found by name.
#
# Accounting (slurmdbd + MariaDB) is not optional here: the Snakemake SLURM
# executor plugin reads job states with `sacct`, which fails without it, and
# the tests check with `sacct` that the jobs really ran as SLURM jobs.
#
# No cgroups (ProctrackType=proctrack/linuxproc, TaskPlugin=task/none), so it
# runs in containers; CPUs and memory of the node come from `slurmd -C`. Jobs
# run as the submitting user in the submitting directory: on one machine the
# workflow's working directory is trivially shared with slurmd.

set -euo pipefail

STATE_DIR="${PYAMA_SLURM_DIR:-/tmp/pyama-slurm}"
CLUSTER="${PYAMA_SLURM_CLUSTER:-pyama}"
PARTITION="${PYAMA_SLURM_PARTITION:-local}"
ACCOUNT="${PYAMA_SLURM_ACCOUNT:-pyama}"
# slurmctld listens on PORT, slurmd on PORT+1, slurmdbd on PORT+2 (SLURM's own
# defaults are 6817-6819); MariaDB on DB_PORT, 127.0.0.1 only.
PORT="${PYAMA_SLURM_PORT:-6817}"
DB_PORT="${PYAMA_SLURM_DB_PORT:-3316}"
# seconds to wait for each daemon, and for the node to become idle
WAIT="${PYAMA_SLURM_WAIT:-60}"

ETC="$STATE_DIR/etc"
RUN="$STATE_DIR/run"
LOG="$STATE_DIR/log"
SPOOL="$STATE_DIR/spool"
MUNGE_RUN="$STATE_DIR/munge"        # munged's socket: must be searchable by all
MUNGE_KEYDIR="$STATE_DIR/munge-key" # key and seed: root only
DB_DIR="$STATE_DIR/mysql"
export SLURM_CONF="$ETC/slurm.conf"
MUNGE_SOCKET="$MUNGE_RUN/munge.socket"
DB_SOCKET="$DB_DIR/mysqld.sock"
# where SLURM's commands look for slurm.conf when SLURM_CONF is unset and
# /etc/slurm/slurm.conf does not exist (see link_run_conf)
RUN_CONF_LINK=/run/slurm/conf
# only the local test database is protected by it (127.0.0.1, own port)
DB_PASS="pyama-local-slurm"

# Daemons in start order; stop goes backwards. Each name is also the process
# name that /proc/PID/comm must show, and names the pid file run/<name>.pid.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

log() { echo "local_slurm: $*" >&2; }
# apt-get, one at a time: the test files run on two pytest workers, and the
# Chromium install of the report test (scripts/report_screenshot.sh) takes the
# same lock; dpkg's own lock is waited for too instead of failing at once.
apt_get() {
    flock -w 1200 /var/lock/pyama-steps-apt.lock \
        apt-get -o DPkg::Lock::Timeout=600 "$@"
}

die() {
    log "ERROR: $*"
    exit 1
}

pidfile() { echo "$RUN/$1.pid"; }

# The pid of daemon $1 if its pid file names a live process of that name.
live_pid() {
    local f pid comm
    f="$(pidfile "$1")"
    [[ -s "$f" ]] || return 1
    # the daemon may remove its pid file while it exits
    pid="$(tr -dc '0-9' <"$f" 2>/dev/null)" || return 1
    [[ -n "$pid" && -r "/proc/$pid/comm" ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    # /proc/PID/comm is cut at 15 characters; a zombie no longer counts
    [[ "$comm" == "${1:0:15}" ]] || return 1
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]] || return 1
    echo "$pid"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds.
wait_for() {
    local seconds="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
    log "$what: ready"
}

# ----------------------------------------------------------------------------
# install
# ----------------------------------------------------------------------------

install_packages() {
    local missing=0 cmd
    for cmd in munged mungekey mariadbd mariadb-install-db mariadb mariadb-admin \
        slurmdbd slurmctld slurmd sbatch sacct sacctmgr sinfo scontrol; do
        command -v "$cmd" >/dev/null 2>&1 || missing=1
    done
    ((missing)) || return 0
    [[ $EUID -eq 0 ]] || die "SLURM is not installed and installing it needs root"
    local pkgs=(munge slurm-client slurmctld slurmd slurmdbd mariadb-server mariadb-client)
    log "installing ${pkgs[*]} (Debian packages)"
    # The packages' postinst scripts would start the system-wide services
    # (munged on /run/munge, MariaDB on port 3306) through their init scripts;
    # a policy-rc.d that denies every start keeps them from doing so, unless
    # the machine has its own policy-rc.d. Our daemons are started below.
    local policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n# local_slurm.sh: no service starts while installing\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        own_policy=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt_get install -y --no-install-recommends \
        "${pkgs[@]}" >"$LOG/apt-get.log" 2>&1; then
        # a fresh machine may have no package lists yet
        DEBIAN_FRONTEND=noninteractive apt_get update >>"$LOG/apt-get.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt_get install -y --no-install-recommends \
            "${pkgs[@]}" >>"$LOG/apt-get.log" 2>&1 || rc=$?
    fi
    if ((own_policy)); then
        rm -f "$policy"
    fi
    ((rc == 0)) || die "apt-get install failed; see $LOG/apt-get.log"
}

# ----------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------

# write_if_changed FILE MODE: stdin to FILE, only when the content differs, so a
# second `start` leaves the running daemons' configuration untouched; a change
# is noted in CHANGED, so that running daemons can be told to reread it.
CHANGED=()
write_if_changed() {
    local file="$1" mode="$2" tmp
    tmp="$(mktemp "$file.XXXXXX")"
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [[ -f "$file" ]] && cmp -s "$tmp" "$file"; then
        rm -f "$tmp"
    else
        mv -f "$tmp" "$file"
        CHANGED+=("$(basename "$file")")
    fi
}

write_config() {
    local host node
    host="$(hostname -s)"
    # `slurmd -C` prints this machine as a NodeName line (CPUs, sockets, cores,
    # RealMemory). RealMemory is lowered by 512 MB: a node that reports less
    # memory than configured is drained, and free memory shifts a little.
    node="$(slurmd -C | head -n 1 |
        awk '{for (i = 1; i <= NF; i++) if ($i ~ /^RealMemory=/) {
                split($i, m, "="); v = m[2] - 512; if (v < 1024) v = m[2];
                $i = "RealMemory=" v }
              print}')"
    [[ "$node" == NodeName=* ]] || die "unexpected 'slurmd -C' output: $node"

    write_if_changed "$ETC/slurm.conf" 0644 <<EOF
# Written by scripts/slurm/local_slurm.sh: a single-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
# every daemon runs as root, so no service account is needed
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$SPOOL/slurmctld
SlurmdSpoolDir=$SPOOL/slurmd
SlurmctldPidFile=$(pidfile slurmctld)
SlurmdPidFile=$(pidfile slurmd)
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
# no cgroups: works in containers and without systemd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
# jobs share the node by cores and memory (several 1-CPU jobs at once)
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a node that was down (e.g. after a restart) comes back once slurmd registers
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
# finished jobs leave slurmctld after 5 min; sacct (slurmdbd) keeps them
MinJobAge=300
# accounting: the executor plugin reads job states with sacct; the comment
# (rule and wildcards set by the plugin) is stored too, for inspection
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT + 2))
# connections to slurmdbd authenticate through this munged socket, not AuthInfo's
AccountingStoragePass=$MUNGE_SOCKET
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

    # slurmdbd refuses a configuration file readable by others (it holds the
    # database password)
    write_if_changed "$ETC/slurmdbd.conf" 0600 <<EOF
# Written by scripts/slurm/local_slurm.sh: accounting for the test cluster.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=$host
DbdAddr=127.0.0.1
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=$(pidfile slurmdbd)
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
}

# ----------------------------------------------------------------------------
# daemons
# ----------------------------------------------------------------------------

munge_ok() { munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET"; }

start_munged() {
    live_pid munged >/dev/null && return 0
    # munged checks permissions: the key's directory root only, the socket's
    # directory searchable by everyone
    mkdir -p "$MUNGE_RUN" "$MUNGE_KEYDIR"
    chmod 0755 "$MUNGE_RUN"
    chmod 0700 "$MUNGE_KEYDIR"
    if [[ ! -s "$MUNGE_KEYDIR/munge.key" ]]; then
        mungekey --create --keyfile="$MUNGE_KEYDIR/munge.key"
    fi
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEYDIR/munge.key" \
        --pid-file="$(pidfile munged)" --seed-file="$MUNGE_KEYDIR/munged.seed" \
        --log-file="$LOG/munged.log" </dev/null >>"$LOG/munged.log" 2>&1 ||
        die "munged did not start; see $LOG/munged.log"
    wait_for "$WAIT" munged munge_ok || die "munged does not answer; see $LOG/munged.log"
}

db_sql() { mariadb --no-defaults --socket="$DB_SOCKET" -u root -e "$1"; }
db_ok() { mariadb-admin --no-defaults --socket="$DB_SOCKET" -u root ping; }

start_mariadb() {
    live_pid mariadbd >/dev/null && return 0
    mkdir -p "$DB_DIR"
    if [[ ! -d "$DB_DIR/data/mysql" ]]; then
        # root@localhost authenticates through the Unix socket (no password)
        mariadb-install-db --no-defaults --datadir="$DB_DIR/data" --user=root \
            --auth-root-authentication-method=socket --skip-test-db \
            >"$LOG/mariadb-install-db.log" 2>&1 ||
            die "mariadb-install-db failed; see $LOG/mariadb-install-db.log"
    fi
    # --no-defaults: /etc/mysql's configuration (socket in /run/mysqld, port
    # 3306) is not ours to use. mariadbd does not daemonize: setsid detaches it.
    setsid mariadbd --no-defaults --user=root --datadir="$DB_DIR/data" \
        --socket="$DB_SOCKET" --port="$DB_PORT" --bind-address=127.0.0.1 \
        --skip-name-resolve --pid-file="$(pidfile mariadbd)" \
        --log-error="$LOG/mariadb.log" --innodb-lock-wait-timeout=900 \
        </dev/null >>"$LOG/mariadb.log" 2>&1 &
    wait_for "$WAIT" mariadb db_ok || die "MariaDB does not answer; see $LOG/mariadb.log"
    # slurmdbd connects over TCP to 127.0.0.1 (its configuration has no socket)
    db_sql "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" ||
        die "could not create the database user 'slurm'"
}

dbd_ok() { sacctmgr -n -P list cluster format=cluster; }

start_slurmdbd() {
    if live_pid slurmdbd >/dev/null; then
        if [[ " ${CHANGED[*]} " == *" slurmdbd.conf "* ]]; then
            log "slurmdbd.conf changed: run '$0 stop' and '$0 start' to apply it"
        fi
        return 0
    fi
    slurmdbd </dev/null >>"$LOG/slurmdbd.log" 2>&1 ||
        die "slurmdbd did not start; see $LOG/slurmdbd.log"
    wait_for "$WAIT" slurmdbd dbd_ok || die "slurmdbd does not answer; see $LOG/slurmdbd.log"
}

# The cluster must be known to slurmdbd before slurmctld registers with it;
# the account and user give the profile's slurm_account something real to name.
register_accounting() {
    if [[ -z "$(sacctmgr -n -P list cluster "$CLUSTER" format=cluster)" ]]; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
        log "registered cluster '$CLUSTER' with slurmdbd"
    fi
    if [[ -z "$(sacctmgr -n -P list account "$ACCOUNT" format=account)" ]]; then
        sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" \
            description="pyama-steps test account" organization=pyama >/dev/null
        log "added account '$ACCOUNT'"
    fi
    local user
    user="$(id -un)"
    if [[ -z "$(sacctmgr -n -P list association cluster="$CLUSTER" account="$ACCOUNT" \
        user="$user" format=user)" ]]; then
        sacctmgr -i add user "$user" account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
        log "added user '$user' to account '$ACCOUNT'"
    fi
}

# The executor plugin's job step (snakemake-executor-plugin-slurm-jobstep)
# removes every SLURM_* variable, SLURM_CONF included, from the environment of
# the `srun` it runs inside each job. srun then reads /etc/slurm/slurm.conf or,
# where that is absent, /run/slurm/conf/slurm.conf, which is where a
# "configless" slurmd links its configuration. The same link to our etc/ lets
# srun (and any SLURM command on this machine) find the test cluster.
link_run_conf() {
    if [[ -e /etc/slurm/slurm.conf ]]; then
        die "/etc/slurm/slurm.conf exists: srun inside jobs would use that cluster; \
this test cluster needs a machine without a SLURM configuration of its own"
    fi
    if [[ -L "$RUN_CONF_LINK" ]]; then
        local target
        target="$(readlink "$RUN_CONF_LINK")"
        [[ "$target" == "$ETC" ]] && return 0
        # another state directory's link: replace it only when its cluster is down
        if PYAMA_SLURM_DIR="${target%/etc}" "$0" status >/dev/null 2>&1; then
            die "$RUN_CONF_LINK links to the running cluster in ${target%/etc}; stop it first"
        fi
        rm -f "$RUN_CONF_LINK"
    elif [[ -e "$RUN_CONF_LINK" ]]; then
        die "$RUN_CONF_LINK exists (a configless slurmd?); this test cluster cannot run beside it"
    fi
    mkdir -p "$(dirname "$RUN_CONF_LINK")"
    ln -s "$ETC" "$RUN_CONF_LINK"
}

unlink_run_conf() {
    if [[ -L "$RUN_CONF_LINK" && "$(readlink "$RUN_CONF_LINK")" == "$ETC" ]]; then
        rm -f "$RUN_CONF_LINK"
    fi
}

ctld_ok() { scontrol ping | grep -q UP; }

start_slurmctld() {
    if live_pid slurmctld >/dev/null; then
        # running with an older slurm.conf: slurmctld and slurmd reread it
        if [[ " ${CHANGED[*]} " == *" slurm.conf "* ]]; then
            log "slurm.conf changed: scontrol reconfigure"
            scontrol reconfigure || die "scontrol reconfigure failed"
        fi
        return 0
    fi
    # slurmctld and slurmd daemonize and write their pid files themselves
    slurmctld </dev/null >>"$LOG/slurmctld.log" 2>&1 ||
        die "slurmctld did not start; see $LOG/slurmctld.log"
    wait_for "$WAIT" slurmctld ctld_ok || die "slurmctld does not answer; see $LOG/slurmctld.log"
}

node_state() { sinfo -h -N -p "$PARTITION" -o %t | head -n 1; }
node_idle() { [[ "$(node_state)" =~ ^(idle|mix|alloc) ]]; }

start_slurmd() {
    if ! live_pid slurmd >/dev/null; then
        slurmd </dev/null >>"$LOG/slurmd.log" 2>&1 ||
            die "slurmd did not start; see $LOG/slurmd.log"
    fi
    # a node drained or down from an earlier run (e.g. killed daemons) is
    # returned to service; the state save of slurmctld remembers it otherwise
    if [[ "$(node_state)" =~ ^(drain|drng|down|fail) ]]; then
        scontrol update nodename="$(hostname -s)" state=resume || true
    fi
    wait_for "$WAIT" "node $(hostname -s)" node_idle ||
        die "the node is '$(node_state)', not idle; see $LOG/slurmd.log and $LOG/slurmctld.log"
}

cmd_start() {
    [[ $EUID -eq 0 ]] || die "must run as root (all daemons run as root)"
    mkdir -p "$ETC" "$RUN" "$LOG" "$SPOOL/slurmctld" "$SPOOL/slurmd"
    # munged refuses a socket below a directory that others cannot search
    chmod 0755 "$STATE_DIR"
    install_packages
    write_config
    link_run_conf
    start_munged
    start_mariadb
    start_slurmdbd
    register_accounting
    start_slurmctld
    start_slurmd
    log "cluster '$CLUSTER' is up: partition '$PARTITION', account '$ACCOUNT'"
    log "use it with: eval \"\$($0 env)\""
}

# ----------------------------------------------------------------------------
# stop, status, env
# ----------------------------------------------------------------------------

stop_daemon() {
    local name="$1" pid i
    if ! pid="$(live_pid "$name")"; then
        rm -f "$(pidfile "$name")"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        live_pid "$name" >/dev/null || break
        sleep 0.5
    done
    if live_pid "$name" >/dev/null; then
        log "$name (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    # a killed daemon stays a zombie until init reaps it: give init a moment,
    # so that a process listing right after `stop` shows nothing of ours
    for ((i = 0; i < 20; i++)); do
        [[ -e "/proc/$pid" ]] || break
        sleep 0.5
    done
    rm -f "$(pidfile "$name")"
    log "stopped $name (pid $pid)"
}

cmd_stop() {
    [[ -d "$STATE_DIR" ]] || return 0
    # Cancel the cluster's jobs first, so that no job step (slurmstepd, started
    # by our slurmd) outlives the daemons.
    if live_pid slurmctld >/dev/null; then
        local jobs i
        jobs="$(squeue -h -o %A 2>/dev/null || true)"
        if [[ -n "$jobs" ]]; then
            # shellcheck disable=SC2086 # one job id per word
            scancel $jobs 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do
                [[ -z "$(squeue -h -o %A 2>/dev/null)" ]] && break
                sleep 0.5
            done
        fi
    fi
    local i
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        stop_daemon "${DAEMONS[i]}"
    done
    unlink_run_conf
}

cmd_status() {
    local name pid rc=0
    for name in "${DAEMONS[@]}"; do
        if pid="$(live_pid "$name")"; then
            printf '%-10s running (pid %s)\n' "$name" "$pid"
        else
            printf '%-10s stopped\n' "$name"
            rc=1
        fi
    done
    if live_pid slurmctld >/dev/null; then
        sinfo -N -o '%N %P %t %c %m' || true
    fi
    return "$rc"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) echo "export SLURM_CONF=$(printf '%q' "$SLURM_CONF")" ;;
    *)
        echo "usage: $0 {start|stop|status|env}" >&2
        echo "state directory: $STATE_DIR (PYAMA_SLURM_DIR)" >&2
        exit 2
        ;;
esac
