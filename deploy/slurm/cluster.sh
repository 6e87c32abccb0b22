#!/usr/bin/env bash
# Starts or stops a one-node Slurm cluster on this machine (munged, slurmctld, slurmd), all state
# under $SLURM_RUN (default /tmp/smelt-slurm), config from deploy/slurm/slurm.conf.in, loopback
# only. Needs root (slurmd runs jobs as their users) and Debian's slurm-wlm and munge packages.
#   deploy/slurm/cluster.sh start    # then: export SLURM_CONF=$SLURM_RUN/slurm.conf
#   deploy/slurm/cluster.sh stop     # ends the three daemons by their pid files
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUN=${SLURM_RUN:-/tmp/smelt-slurm}
CPUS=${SLURM_CPUS:-$(nproc)}

stop_pid() {  # a daemon started here, by the pid it wrote
    local f=$1
    if [[ -f $f ]]; then
        local pid; pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$f"
    fi
}

case ${1:-} in
start)
    mkdir -p "$RUN"/{state,spool,munge}
    # munge: its own key, socket and pid under $RUN, run as the munge user.
    chown munge: "$RUN/munge"; chmod 0700 "$RUN/munge"
    if [[ ! -f $RUN/munge/munge.key ]]; then
        dd if=/dev/urandom of="$RUN/munge/munge.key" bs=1 count=1024 status=none
        chown munge: "$RUN/munge/munge.key"; chmod 0400 "$RUN/munge/munge.key"
    fi
    # The socket's directory must be reachable by the daemons and the job's users.
    chmod 0755 "$RUN/munge"
    runuser -u munge -- munged --key-file="$RUN/munge/munge.key" --socket="$RUN/munge/munge.socket" \
        --pid-file="$RUN/munge/munged.pid" --log-file="$RUN/munge/munged.log" --seed-file="$RUN/munge/munge.seed"
    MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
    sed -e "s|@RUN@|$RUN|g" -e "s|@CPUS@|$CPUS|g" -e "s|@MEM@|$MEM|g" -e "s|@USER@|root|g" \
        "$HERE/slurm.conf.in" > "$RUN/slurm.conf"
    export SLURM_CONF=$RUN/slurm.conf
    slurmctld -f "$RUN/slurm.conf" -i
    slurmd -f "$RUN/slurm.conf" -N localhost
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "slurm: one-node cluster up ($CPUS CPUs), SLURM_CONF=$RUN/slurm.conf"
            exit 0
        fi
        sleep 1
    done
    echo "slurm: the node did not come up; logs in $RUN" >&2
    sinfo >&2 || true
    tail -20 "$RUN/slurmctld.log" "$RUN/slurmd.log" >&2 || true
    exit 1
    ;;
stop)
    stop_pid "$RUN/slurmd.pid"
    stop_pid "$RUN/slurmctld.pid"
    stop_pid "$RUN/munge/munged.pid"
    echo "slurm: stopped"
    ;;
*)
    echo "usage: $0 start|stop" >&2; exit 64 ;;
esac
