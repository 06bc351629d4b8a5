#!/usr/bin/env bash
# Runs the commerce backing services as plain processes, for machines without
# a Docker engine: PostgreSQL 15, Redis 7, Kafka 4 (KRaft, one node) and
# OpenSearch 2.19 (one node), all bound to 127.0.0.1.
#
# Usage: stack.sh up|down|status [SERVICE...]
#        stack.sh env
# SERVICE is any of: postgres redis kafka opensearch (default: all four).
#
# Data, logs and pid files live in .stack/ at the repository root. Whatever is
# missing gets installed on first use: Debian packages with apt-get, Kafka and
# OpenSearch jars from Maven Central with mvn.
#
# Environment (defaults in brackets):
#   STACK_PG_PORT [25432]  STACK_REDIS_PORT [26379]
#   STACK_KAFKA_PORT [29092]  STACK_KAFKA_CONTROLLER_PORT [29093]
#   STACK_OPENSEARCH_PORT [29200]  STACK_OPENSEARCH_TRANSPORT_PORT [29300]
#   STACK_TIMEOUT [180]       seconds each service gets to become healthy
#   STACK_STOP_TIMEOUT [30]   seconds each service gets to exit before SIGKILL
#   STACK_DIR [<repo>/.stack]
#   STACK_KAFKA_HEAP_OPTS [-Xms256m -Xmx1g]
#   STACK_OPENSEARCH_HEAP_OPTS [-Xms512m -Xmx1g]
#   STACK_PG_BIN [/usr/lib/postgresql/15/bin]
#   STACK_PYTHON [python3]    interpreter for the Kafka and OpenSearch probes
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)
STACK_DIR=$(realpath -m "${STACK_DIR:-$REPO_DIR/.stack}")
LOG_DIR=$STACK_DIR/logs
RUN_DIR=$STACK_DIR/run

PG_PORT=${STACK_PG_PORT:-25432}
REDIS_PORT=${STACK_REDIS_PORT:-26379}
KAFKA_PORT=${STACK_KAFKA_PORT:-29092}
KAFKA_CONTROLLER_PORT=${STACK_KAFKA_CONTROLLER_PORT:-29093}
OPENSEARCH_PORT=${STACK_OPENSEARCH_PORT:-29200}
OPENSEARCH_TRANSPORT_PORT=${STACK_OPENSEARCH_TRANSPORT_PORT:-29300}
START_TIMEOUT=${STACK_TIMEOUT:-180}
STOP_TIMEOUT=${STACK_STOP_TIMEOUT:-30}
PG_BIN=${STACK_PG_BIN:-/usr/lib/postgresql/15/bin}
KAFKA_HEAP_OPTS=${STACK_KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}
OPENSEARCH_HEAP_OPTS=${STACK_OPENSEARCH_HEAP_OPTS:--Xms512m -Xmx1g}
PYTHON=${STACK_PYTHON:-python3}

ALL_SERVICES=(postgres redis kafka opensearch)
HOST=127.0.0.1
APT_UPDATED=0

# Command prefix that runs a program as the OS user owning the cluster. As
# root that is the postgres user, because postgres exits when started as
# root. setpriv execs in place, so a launched server keeps the pid that
# launch() recorded.
AS_POSTGRES=()
if ((EUID == 0)); then
    AS_POSTGRES=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi

# ---------------------------------------------------------------- helpers

log() {
    printf '[stack] %s\n' "$*"
}

fail() {
    printf '[stack] ERROR: %s\n' "$*" >&2
    exit 1
}

# Print the last lines of a log file to stderr, framed so CI output shows where it starts.
show_log_tail() {
    local log_file=$1
    if [[ -s $log_file ]]; then
        printf '[stack] ----- last 40 lines of %s -----\n' "$log_file" >&2
        tail -n 40 "$log_file" >&2
        printf '[stack] ----- end of %s -----\n' "$log_file" >&2
    else
        printf '[stack] %s is empty or missing\n' "$log_file" >&2
    fi
}

fail_with_log() {
    local log_file=$1
    shift
    printf '[stack] ERROR: %s\n' "$*" >&2
    show_log_tail "$log_file"
    exit 1
}

validate_port() {
    local name=$1 value=$2
    if ! [[ $value =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then
        fail "invalid $name '$value': expected a TCP port number (1-65535)"
    fi
}

validate_settings() {
    validate_port STACK_PG_PORT "$PG_PORT"
    validate_port STACK_REDIS_PORT "$REDIS_PORT"
    validate_port STACK_KAFKA_PORT "$KAFKA_PORT"
    validate_port STACK_KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
    validate_port STACK_OPENSEARCH_PORT "$OPENSEARCH_PORT"
    validate_port STACK_OPENSEARCH_TRANSPORT_PORT "$OPENSEARCH_TRANSPORT_PORT"
    local name
    for name in STACK_TIMEOUT STACK_STOP_TIMEOUT; do
        if ! [[ ${!name:-1} =~ ^[0-9]+$ ]]; then
            fail "invalid $name '${!name}': expected a whole number of seconds"
        fi
    done
}

is_root() {
    ((EUID == 0))
}

port_in_use() {
    local port=$1
    timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$port" 2>/dev/null
}

pid_file_of() {
    printf '%s/%s.pid\n' "$RUN_DIR" "$1"
}

log_file_of() {
    printf '%s/%s.log\n' "$LOG_DIR" "$1"
}

# A text that the command line of the service's process contains. It guards
# against signalling an unrelated process that reused a stale pid.
process_marker() {
    case $1 in
        postgres) printf '%s\n' "$PG_BIN/postgres" ;;
        redis) printf 'redis-server\n' ;;
        kafka) printf 'kafka.Kafka\n' ;;
        opensearch) printf 'StackOpenSearch\n' ;;
    esac
}

# Succeed if any thread of PID is alive. A zombie counts as exited, because
# PID 1 of a container or VM may reap orphans late and `kill -0` succeeds on
# a zombie. Each thread is checked because a JVM's main thread can end while
# the other threads keep the process running.
pid_running() {
    local pid=$1 task_stat stat state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    for task_stat in /proc/"$pid"/task/*/stat; do
        stat=$(cat "$task_stat" 2>/dev/null) || continue
        state=${stat##*) }
        state=${state%% *}
        if [[ $state != Z && $state != X ]]; then
            return 0
        fi
    done
    return 1
}

# Print the pid of SERVICE if stack.sh started it and it is still running.
running_pid() {
    local service=$1 pid_file pid cmdline
    pid_file=$(pid_file_of "$service")
    [[ -s $pid_file ]] || return 1
    pid=$(<"$pid_file")
    pid_running "$pid" || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$(process_marker "$service")"* ]] || return 1
    printf '%s\n' "$pid"
}

prepare_dirs() {
    mkdir -p "$STACK_DIR" "$LOG_DIR" "$RUN_DIR"
    # The postgres OS user must be able to traverse .stack/ (see postgres_resolve_dir).
    chmod 755 "$STACK_DIR"
}

# Serialize up/down runs, so that two callers never start the same service twice.
take_lock() {
    exec 9>>"$STACK_DIR/stack.lock"
    if ! flock -w 600 9; then
        fail "timed out after 600 s waiting for another stack.sh run to release $STACK_DIR/stack.lock"
    fi
}

# Start a long-running command detached from this shell: new session, stdin
# from /dev/null, output appended to the log, and the lock fd closed, so the
# service neither holds the lock nor keeps a caller's pipe open. The inner
# shell writes its own pid and then execs the command, so the pid file names
# the service process itself. It also changes to /, because the postgres OS
# user may not be allowed into the caller's working folder. Every path that
# stack.sh passes is absolute.
launch() {
    local service=$1 pid_file log_file waited=0
    shift
    pid_file=$(pid_file_of "$service")
    log_file=$(log_file_of "$service")
    rm -f "$pid_file"
    service_ports "$service" >"$RUN_DIR/$service.ports"
    printf '\n===== %s started by stack.sh at %s =====\n' "$service" "$(date -u +%FT%TZ)" >>"$log_file"
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell.
    setsid bash -c 'cd / && echo $$ >"$0" && exec "$@"' "$pid_file" "$@" \
        </dev/null >>"$log_file" 2>&1 9>&- &
    while [[ ! -s $pid_file ]]; do
        if ((waited >= 50)); then
            fail_with_log "$log_file" "$service: the process did not start within 5 s"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

# ---------------------------------------------------------------- installs

apt_install() {
    local missing=() package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$package")
        fi
    done
    ((${#missing[@]})) || return 0

    is_root || fail "missing Debian packages: ${missing[*]}; install them (as root: apt-get install ${missing[*]}) and rerun"

    local apt_log=$LOG_DIR/apt.log
    if ((APT_UPDATED == 0)); then
        log "apt: updating package lists (log: $apt_log)"
        if ! DEBIAN_FRONTEND=noninteractive apt-get update >>"$apt_log" 2>&1; then
            fail_with_log "$apt_log" "apt-get update failed"
        fi
        APT_UPDATED=1
    fi

    # Debian's maintainer scripts would start postgresql on 5432 and
    # redis-server on 6379. While a policy-rc.d that exits 101 exists,
    # invoke-rc.d starts no service. An existing policy-rc.d is left as it is.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
    fi

    log "apt: installing ${missing[*]} (log: $apt_log)"
    local status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1 || status=$?
    if ((added_policy)); then
        rm -f "$policy"
    fi
    ((status == 0)) || fail_with_log "$apt_log" "apt-get install ${missing[*]} failed (exit $status)"
}

ensure_java_toolchain() {
    local tool missing_tool=0
    for tool in java javac mvn; do
        command -v "$tool" >/dev/null || missing_tool=1
    done
    if ((missing_tool)); then
        apt_install openjdk-17-jdk-headless maven
    fi
}

ensure_python() {
    command -v "$PYTHON" >/dev/null || apt_install python3
}

# Copy the runtime jars that POM resolves into LIB_DIR, unless LIB_DIR already
# contains the jars of this exact pom.
resolve_jars() {
    local service=$1 pom=$2 lib_dir=$3
    local stamp=$lib_dir.stamp want mvn_log=$LOG_DIR/maven-$service.log
    want=$(sha256sum "$pom" | cut -d' ' -f1)
    if [[ -f $stamp && $(<"$stamp") == "$want" && -d $lib_dir ]]; then
        log "$service: jars are up to date in $lib_dir"
        return 0
    fi
    log "$service: resolving jars from Maven Central (log: $mvn_log)"
    rm -rf "$lib_dir"
    if ! mvn -B -ntp -f "$pom" dependency:copy-dependencies "-Dstack.lib.dir=$lib_dir" >"$mvn_log" 2>&1; then
        fail_with_log "$mvn_log" "$service: mvn dependency:copy-dependencies failed"
    fi
    printf '%s\n' "$want" >"$stamp"
}

# ---------------------------------------------------------------- postgres

# Pick the folder for the cluster and set PG_DIR.
#
# As root, the server runs as the postgres OS user, which must be able to
# reach its data folder. That needs search (x) permission on every parent
# folder, and CI may clone the repository under a folder such as /root (mode
# 700). Changing the modes of folders outside the repository is not ours to
# do, so when .stack/postgres is out of reach the cluster lives in /var/tmp
# instead, in a folder named after a hash of the repository path. Logs stay in
# .stack/logs either way, because stack.sh opens the log file as root and
# hands it to the server.
postgres_resolve_dir() {
    local preferred=$STACK_DIR/postgres
    if ! is_root; then
        PG_DIR=$preferred
        mkdir -p "$PG_DIR"
        return 0
    fi

    id postgres >/dev/null 2>&1 || fail "the postgres OS user is missing; reinstall postgresql-15"
    mkdir -p "$preferred"
    chown postgres:postgres "$preferred"
    chmod 700 "$preferred"
    if "${AS_POSTGRES[@]}" test -w "$preferred" -a -x "$preferred"; then
        PG_DIR=$preferred
    else
        local key
        key=$(printf '%s' "$REPO_DIR" | sha256sum | cut -c1-12)
        PG_DIR=/var/tmp/commerce-stack-$key/postgres
        mkdir -p "$PG_DIR"
        chmod 755 "$(dirname "$PG_DIR")"
        chown postgres:postgres "$PG_DIR"
        chmod 700 "$PG_DIR"
        log "postgres: the postgres OS user cannot reach $preferred (a parent folder denies it), so the data lives in $PG_DIR"
    fi
    printf '%s\n' "$PG_DIR" >"$STACK_DIR/postgres-location"
}

postgres_prepare() {
    if [[ ! -x $PG_BIN/postgres ]]; then
        apt_install postgresql-15
        [[ -x $PG_BIN/postgres ]] || fail "postgres: $PG_BIN/postgres is still missing after installing postgresql-15; set STACK_PG_BIN"
    fi
}

postgres_init_cluster() {
    local data=$PG_DIR/data password_file=$PG_DIR/superuser-password log_file
    log_file=$(log_file_of postgres)
    [[ -f $data/PG_VERSION ]] && return 0

    log "postgres: initialising a new cluster in $data"
    # The superuser only runs the bootstrap SQL, over TCP, so it needs a
    # password. A random one keeps it apart from the app role.
    (umask 077 && head -c 32 /dev/urandom | sha256sum | cut -c1-32 >"$password_file")
    if is_root; then
        chown postgres:postgres "$password_file"
    fi
    rm -rf "$data"
    if ! (cd / && "${AS_POSTGRES[@]}" "$PG_BIN/initdb" --pgdata="$data" --username=postgres \
        --pwfile="$password_file" --auth-local=peer --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8) >>"$log_file" 2>&1; then
        fail_with_log "$log_file" "postgres: initdb failed"
    fi
}

postgres_start() {
    postgres_resolve_dir
    postgres_init_cluster
    log "postgres: starting on $HOST:$PG_PORT (data: $PG_DIR/data)"
    # Settings on the command line override postgresql.conf, so a changed
    # STACK_PG_PORT applies without editing the cluster. Logical decoding (the
    # CDC relay) needs wal_level=logical plus slots and WAL senders. The tests
    # open more than 50 connections at once. fsync=off trades safety for test
    # speed: a killed server loses nothing, because the OS page cache keeps
    # the writes, but a machine crash may corrupt the cluster.
    # The empty unix_socket_directories turns off the socket, whose default
    # folder /run/postgresql may not exist on a machine that never booted the
    # packaged service.
    launch postgres "${AS_POSTGRES[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" \
        -c listen_addresses="$HOST" \
        -c port="$PG_PORT" \
        -c unix_socket_directories= \
        -c max_connections=200 \
        -c wal_level=logical \
        -c max_replication_slots=20 \
        -c max_wal_senders=20 \
        -c fsync=off
}

postgres_check() {
    [[ -x $PG_BIN/pg_isready ]] || return 1
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 3
}

# Create the commerce and commerce_analytics roles and databases, or reset their attributes, as the superuser.
postgres_bootstrap() {
    local location_file=$STACK_DIR/postgres-location password_file log_file
    log_file=$(log_file_of postgres)
    [[ -f $location_file ]] || postgres_resolve_dir
    password_file=$(<"$location_file")/superuser-password
    [[ -r $password_file ]] || fail "postgres: $password_file is missing, so the bootstrap cannot log in; run 'stack.sh down postgres', delete $(<"$location_file") and run 'stack.sh up postgres'"

    if ! PGPASSWORD=$(<"$password_file") PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q \
        -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -f "$SCRIPT_DIR/../postgres/bootstrap.sql" >>"$log_file" 2>&1; then
        fail_with_log "$log_file" "postgres: bootstrap.sql failed"
    fi
    if ! PGPASSWORD=commerce PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -At \
        -h "$HOST" -p "$PG_PORT" -U commerce -d commerce -c 'SELECT 1' >/dev/null 2>>"$log_file"; then
        fail_with_log "$log_file" "postgres: the commerce role cannot log in to the commerce database"
    fi
    if ! PGPASSWORD=commerce_analytics PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -At \
        -h "$HOST" -p "$PG_PORT" -U commerce_analytics -d commerce_analytics -c 'SELECT 1' >/dev/null 2>>"$log_file"; then
        fail_with_log "$log_file" "postgres: the commerce_analytics role cannot log in to the commerce_analytics database"
    fi
    log "postgres: roles and databases 'commerce' and 'commerce_analytics' are ready"
}

# ---------------------------------------------------------------- redis

redis_prepare() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server redis-tools
    fi
}

redis_start() {
    mkdir -p "$STACK_DIR/redis"
    log "redis: starting on $HOST:$REDIS_PORT"
    # The default snapshot rules stay on, so a restarted Redis keeps the
    # Celery queue, as it does in docker-compose.
    launch redis redis-server \
        --bind "$HOST" \
        --port "$REDIS_PORT" \
        --protected-mode yes \
        --daemonize no \
        --dir "$STACK_DIR/redis" \
        --logfile ''
}

redis_check() {
    command -v redis-cli >/dev/null || return 1
    [[ $(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

# ---------------------------------------------------------------- kafka

KAFKA_HOME=$STACK_DIR/kafka

kafka_prepare() {
    resolve_jars kafka "$SCRIPT_DIR/kafka/pom.xml" "$KAFKA_HOME/lib"
}

kafka_write_config() {
    # Regenerated on every start, so changed ports apply. The static voter
    # list keeps the controller quorum out of the formatted metadata, which
    # is why a port change needs no reformat.
    cat >"$KAFKA_HOME/server.properties" <<EOF
# Written by compose/native/stack.sh on every start, so edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_HOME/data
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# One broker: consumers need not wait for more members before the first rebalance.
group.initial.rebalance.delay.ms=0
EOF
}

kafka_java_options() {
    local -a heap
    read -r -a heap <<<"$KAFKA_HEAP_OPTS"
    KAFKA_JAVA_OPTS=("${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
        "-Dlog4j2.configurationFile=$SCRIPT_DIR/kafka/log4j2.properties")
}

kafka_start() {
    local log_file cluster_id
    log_file=$(log_file_of kafka)
    mkdir -p "$KAFKA_HOME/data"
    kafka_write_config
    kafka_java_options

    if [[ ! -f $KAFKA_HOME/data/meta.properties ]]; then
        # A KRaft cluster id is 16 random bytes in URL-safe base64 without padding.
        cluster_id=$("$PYTHON" -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
        log "kafka: formatting storage in $KAFKA_HOME/data (cluster id $cluster_id)"
        if ! java "${KAFKA_JAVA_OPTS[@]}" -cp "$KAFKA_HOME/lib/*" kafka.tools.StorageTool format \
            --cluster-id "$cluster_id" --config "$KAFKA_HOME/server.properties" >>"$log_file" 2>&1; then
            fail_with_log "$log_file" "kafka: formatting the storage failed"
        fi
    fi

    log "kafka: starting on $HOST:$KAFKA_PORT (controller $HOST:$KAFKA_CONTROLLER_PORT)"
    launch kafka java "${KAFKA_JAVA_OPTS[@]}" -cp "$KAFKA_HOME/lib/*" \
        kafka.Kafka "$KAFKA_HOME/server.properties"
}

# A Metadata request that lists at least one broker, sent by probe.py with
# the standard library only, so it works before the project's .venv exists.
kafka_check() {
    "$PYTHON" "$SCRIPT_DIR/probe.py" kafka "$HOST" "$KAFKA_PORT" 3
}

# ---------------------------------------------------------------- opensearch

OPENSEARCH_HOME=$STACK_DIR/opensearch

opensearch_prepare() {
    local source=$SCRIPT_DIR/opensearch/StackOpenSearch.java
    local classes=$OPENSEARCH_HOME/classes want
    resolve_jars opensearch "$SCRIPT_DIR/opensearch/pom.xml" "$OPENSEARCH_HOME/lib"

    want=$(cat "$source" "$OPENSEARCH_HOME/lib.stamp" | sha256sum | cut -d' ' -f1)
    if [[ -f $classes.stamp && $(<"$classes.stamp") == "$want" && -f $classes/StackOpenSearch.class ]]; then
        return 0
    fi
    log "opensearch: compiling StackOpenSearch.java"
    rm -rf "$classes"
    mkdir -p "$classes"
    local javac_log=$LOG_DIR/javac-opensearch.log
    if ! javac -cp "$OPENSEARCH_HOME/lib/*" -d "$classes" "$source" >"$javac_log" 2>&1; then
        fail_with_log "$javac_log" "opensearch: javac failed"
    fi
    printf '%s\n' "$want" >"$classes.stamp"
}

opensearch_start() {
    local -a heap
    read -r -a heap <<<"$OPENSEARCH_HEAP_OPTS"
    mkdir -p "$OPENSEARCH_HOME/node" "$OPENSEARCH_HOME/tmp"
    log "opensearch: starting on $HOST:$OPENSEARCH_PORT (transport $HOST:$OPENSEARCH_TRANSPORT_PORT)"
    # The system properties mirror OpenSearch's own jvm.options: COMPAT locale
    # data keeps date parsing as in the packaged server, and log4j must not
    # shut down before the node logs its own shutdown.
    launch opensearch java "${heap[@]}" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
        -Djava.locale.providers=SPI,COMPAT \
        -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
        "-Djava.io.tmpdir=$OPENSEARCH_HOME/tmp" \
        -cp "$OPENSEARCH_HOME/classes:$OPENSEARCH_HOME/lib/*" \
        StackOpenSearch "$OPENSEARCH_HOME/node" "$OPENSEARCH_PORT" "$OPENSEARCH_TRANSPORT_PORT"
}

opensearch_check() {
    "$PYTHON" "$SCRIPT_DIR/probe.py" opensearch "http://$HOST:$OPENSEARCH_PORT" 3
}

# ---------------------------------------------------------------- services

service_port() {
    case $1 in
        postgres) printf '%s\n' "$PG_PORT" ;;
        redis) printf '%s\n' "$REDIS_PORT" ;;
        kafka) printf '%s\n' "$KAFKA_PORT" ;;
        opensearch) printf '%s\n' "$OPENSEARCH_PORT" ;;
    esac
}

# Every port that SERVICE listens on, client port first.
service_ports() {
    case $1 in
        kafka) printf '%s %s\n' "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" ;;
        opensearch) printf '%s %s\n' "$OPENSEARCH_PORT" "$OPENSEARCH_TRANSPORT_PORT" ;;
        *) service_port "$1" ;;
    esac
}

service_address() {
    case $1 in
        opensearch) printf 'http://%s:%s\n' "$HOST" "$OPENSEARCH_PORT" ;;
        *) printf '%s:%s\n' "$HOST" "$(service_port "$1")" ;;
    esac
}

# Wait until SERVICE passes its health check. Stops early when the process
# that stack.sh started exits, because then no amount of waiting helps,
# except after a failed bind (see below).
wait_healthy() {
    local service=$1 deadline=$2 log_file pid_file announced=0 bind_retries=0 port filter
    log_file=$(log_file_of "$service")
    pid_file=$(pid_file_of "$service")
    while true; do
        if "${service}_check" >/dev/null 2>&1; then
            log "$service: healthy at $(service_address "$service")"
            return 0
        fi
        if ((announced == 0)); then
            log "$service: waiting for it to become healthy (timeout ${START_TIMEOUT}s)"
            announced=1
        fi
        # pid_running, not running_pid: right after launch the process may
        # still be the wrapper shell, whose command line lacks the marker.
        if [[ -s $pid_file ]] && ! pid_running "$(<"$pid_file")"; then
            # The default ports sit below Linux's ephemeral range (32768-60999),
            # but a port chosen through STACK_*_PORT may not: then, while a
            # service is down, an outgoing client socket of another program can
            # take its port. The port frees up when that connection ends, plus
            # 60 s of TIME_WAIT if the client closed it first, so the start is
            # retried until the deadline.
            if ((SECONDS + 5 < deadline)) && tail -n 50 "$log_file" | grep -qi 'address already in use'; then
                bind_retries=$((bind_retries + 1))
                if ((bind_retries == 1)); then
                    filter=""
                    for port in $(service_ports "$service"); do
                        filter+="${filter:+ or }sport = :$port"
                    done
                    log "$service: a port is taken (Address already in use) by these sockets:"
                    ss -tanH "( $filter )" | sed 's/^/[stack]   /' || true
                fi
                log "$service: retrying the start in 5 s (attempt $((bind_retries + 1)))"
                sleep 5
                "${service}_start"
                continue
            fi
            fail_with_log "$log_file" "$service: the process exited before it became healthy"
        fi
        if ((SECONDS >= deadline)); then
            # A half-started server would hold its ports and make the next
            # `up` wait on it again, so it is stopped before reporting.
            log "$service: not healthy after ${START_TIMEOUT}s, stopping it"
            stop_service "$service"
            fail_with_log "$log_file" "$service: not healthy after ${START_TIMEOUT}s at $(service_address "$service")"
        fi
        sleep 0.5
    done
}

# Send SIGKILL to PID and wait up to 10 s for it to exit.
kill_hard() {
    local service=$1 pid=$2 waited=0
    log "$service: pid $pid still running after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while pid_running "$pid" && ((waited < 100)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    if pid_running "$pid"; then
        fail_with_log "$(log_file_of "$service")" "$service: pid $pid is still running 10 s after SIGKILL"
    fi
}

stop_service() {
    local service=$1 pid signal waited=0
    if ! pid=$(running_pid "$service"); then
        rm -f "$(pid_file_of "$service")"
        log "$service: not running (no live process started by stack.sh)"
        return 0
    fi

    # SIGINT is the postgres "fast" shutdown: it ends sessions instead of
    # waiting for them. The JVMs and Redis shut down cleanly on SIGTERM.
    signal=TERM
    [[ $service == postgres ]] && signal=INT
    log "$service: stopping pid $pid (SIG$signal)"
    kill "-$signal" "$pid" 2>/dev/null || true

    while pid_running "$pid"; do
        if ((waited >= STOP_TIMEOUT * 10)); then
            kill_hard "$service" "$pid"
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done

    rm -f "$(pid_file_of "$service")" "$RUN_DIR/$service.ports"
    log "$service: stopped"
}

parse_services() {
    local service candidate known
    SERVICES=()
    if (($# == 0)); then
        SERVICES=("${ALL_SERVICES[@]}")
        return 0
    fi
    for service in "$@"; do
        known=0
        for candidate in "${ALL_SERVICES[@]}"; do
            [[ $service == "$candidate" ]] && known=1
        done
        ((known)) || fail "unknown service '$service': expected one of ${ALL_SERVICES[*]}"
        SERVICES+=("$service")
    done
}

# ---------------------------------------------------------------- commands

print_env() {
    cat <<EOF
export DATABASE_URL=postgres://commerce:commerce@$HOST:$PG_PORT/commerce
export ANALYTICS_DATABASE_URL=postgres://commerce_analytics:commerce_analytics@$HOST:$PG_PORT/commerce_analytics
export REDIS_URL=redis://$HOST:$REDIS_PORT/0
export CELERY_BROKER_URL=redis://$HOST:$REDIS_PORT/1
export CELERY_RESULT_BACKEND=redis://$HOST:$REDIS_PORT/2
export KAFKA_BOOTSTRAP_SERVERS=$HOST:$KAFKA_PORT
export OPENSEARCH_URL=http://$HOST:$OPENSEARCH_PORT
EOF
}

cmd_up() {
    parse_services "$@"
    prepare_dirs
    take_lock
    ensure_python

    local service pid port running_ports to_start=() java_jobs=() prep_pid=""
    for service in "${SERVICES[@]}"; do
        if pid=$(running_pid "$service"); then
            running_ports=$(cat "$RUN_DIR/$service.ports" 2>/dev/null || true)
            if [[ -n $running_ports && $running_ports != "$(service_ports "$service")" ]]; then
                fail "$service: already running (pid $pid) on ports '$running_ports', but the settings ask for '$(service_ports "$service")'; run 'stack.sh down $service' first"
            fi
            log "$service: already running (pid $pid), left alone"
            continue
        fi
        for port in $(service_ports "$service"); do
            if port_in_use "$port"; then
                fail "$service: port $port on $HOST is in use by a process that stack.sh did not start; stop that process or choose another port with the STACK_*_PORT variables"
            fi
        done
        to_start+=("$service")
        [[ $service == kafka || $service == opensearch ]] && java_jobs+=("$service")
    done

    # Resolving jars takes a while on a cold machine, so it runs in the
    # background while apt installs PostgreSQL and Redis. Maven 3.8 does not
    # lock its local repository against concurrent writers, so the two
    # resolutions run one after the other inside that one job.
    if ((${#java_jobs[@]})); then
        ensure_java_toolchain
        (
            for service in "${java_jobs[@]}"; do
                "${service}_prepare"
            done
        ) &
        prep_pid=$!
    fi
    for service in "${to_start[@]}"; do
        case $service in
            postgres | redis) "${service}_prepare" ;;
        esac
    done
    if [[ -n $prep_pid ]] && ! wait "$prep_pid"; then
        fail "preparing ${java_jobs[*]} failed (see the error above)"
    fi

    declare -A deadline
    for service in "${SERVICES[@]}"; do
        deadline[$service]=$((SECONDS + START_TIMEOUT))
    done
    for service in "${to_start[@]}"; do
        "${service}_start"
        deadline[$service]=$((SECONDS + START_TIMEOUT))
    done

    for service in "${SERVICES[@]}"; do
        wait_healthy "$service" "${deadline[$service]}"
        [[ $service == postgres ]] && postgres_bootstrap
    done

    log "all requested services are up: ${SERVICES[*]}"
    log "app settings (eval \"\$(compose/native/stack.sh env)\"):"
    print_env
}

cmd_down() {
    parse_services "$@"
    prepare_dirs
    take_lock

    local service pids=() status=0
    # The services do not depend on each other, so they stop in parallel.
    for service in "${SERVICES[@]}"; do
        stop_service "$service" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || status=1
    done
    ((status == 0)) || fail "some services failed to stop (see above)"
}

cmd_status() {
    parse_services "$@"
    local service pid detail state owner down=0
    for service in "${SERVICES[@]}"; do
        if pid=$(running_pid "$service"); then
            owner="pid $pid, started by stack.sh"
        else
            owner="not started by stack.sh"
        fi
        if detail=$("${service}_check" 2>&1); then
            state="up"
        else
            state="DOWN"
            down=1
        fi
        detail=${detail//$'\n'/ }
        printf '%-11s %-24s %-5s (%s)%s\n' "$service" "$(service_address "$service")" "$state" "$owner" "${detail:+ $detail}"
    done
    if [[ -f $STACK_DIR/postgres-location ]]; then
        printf 'postgres data folder: %s/data\n' "$(<"$STACK_DIR/postgres-location")"
    fi
    return "$down"
}

# Print the comment block at the top of this file, without the comment marks.
usage() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"
}

main() {
    validate_settings
    local command=${1:-}
    (($#)) && shift
    case $command in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" ;;
        env) print_env ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
