# servers.sh - throwaway PostgreSQL, MariaDB and ClickHouse servers for tests (bash)
#
#   . "$top_srcdir/tests/lib/servers.sh"
#   trap stop_all EXIT
#   start_pg          # exports PG_DSN  (libpq conninfo: host 127.0.0.1, user postgres, db testdb)
#   start_mariadb     # exports MDB_PORT MDB_SOCK  (user test / testpw, db testdb, local_infile=1)
#   start_mariadb --local-infile=0   # the same with LOAD DATA LOCAL refused by the server
#   start_clickhouse  # exports CH_URL  (http://127.0.0.1:PORT/, user default, no password)
#                     # and CH_TCP_PORT (its native-protocol port)
#   stop_all          # stops every server started here and removes their dirs
#
# Each start_* returns non-zero (with the reason on stderr) when the server
# is not installed or does not come up; the caller decides whether that is a
# skip or, under CI=true, a failure. Every server gets its own temp dir, listens
# on 127.0.0.1 only, on a free port picked at start (tests may run in
# parallel; a port lost to a race is retried), runs in the foreground started
# with & and is stopped by its recorded pid. As root it runs as its package's
# account (postgres, mysql, clickhouse; nobody if missing) through setpriv; as
# any other user it runs as that user. DBT_TEST_KEEP=1 keeps the dirs (logs).
# Debian 12 packages: postgresql mariadb-server clickhouse-server curl.

: "${DBT_TEST_WAIT:=30}"        # seconds to wait for a server to get ready

_srv_log () { echo "servers.sh: $*" >&2; }

# The root dir of this shell's servers (traversable by the service accounts).
_srv_root () {
    if [ -z "${DBT_SRV_ROOT:-}" ] || [ ! -d "$DBT_SRV_ROOT" ]; then
        DBT_SRV_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/dbt-servers.XXXXXX") || return 1
        chmod 755 "$DBT_SRV_ROOT"
    fi
}

# A TCP port on 127.0.0.1 nobody listens on right now.
_srv_free_port () {
    local port n=0
    while [ $n -lt 200 ]; do
        port=$((10000 + RANDOM % 22000))     # below the ephemeral range (32768+)
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
        n=$((n + 1))
    done
    return 1
}

# The account a server runs as: its package account as root, else ourselves.
_srv_account () {
    if [ "$(id -u)" != 0 ]; then id -un
    elif id -u "$1" >/dev/null 2>&1; then echo "$1"
    else echo nobody; fi
}

# Replace this (sub)shell by a command run as account $1: use as
# `_srv_exec_as user cmd... &` so that $! is the server's own pid.
_srv_exec_as () {
    local user=$1; shift
    if [ "$(id -u)" != 0 ]; then exec "$@"; fi
    exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
}

# Run a command as account $1 and wait for it.
_srv_run_as () { ( _srv_exec_as "$@" ); }

# Create dir $2 owned by account $1.
_srv_mkdir_for () {
    mkdir -p "$2" || return 1
    if [ "$(id -u)" = 0 ]; then chown -R "$1:$(id -g "$1")" "$2"; fi
}

# _srv_wait NAME PID CMD...: poll CMD every 0.1 s until it succeeds; fail when
# PID dies or DBT_TEST_WAIT seconds pass.
_srv_wait () {
    local name=$1 pid=$2 n=$((DBT_TEST_WAIT * 10)); shift 2
    while [ $n -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || return 2
        sleep 0.1
        n=$((n - 1))
    done
    _srv_log "$name not ready after ${DBT_TEST_WAIT}s"
    return 1
}

# Record a server pid (stop_all stops what is recorded) and forget one.
_srv_record () { echo "$2" > "$DBT_SRV_ROOT/$1.pid"; }

# Stop one recorded server: signal, wait up to 30 s, then KILL.
_srv_stop () {
    local file=$DBT_SRV_ROOT/$1.pid sig=$2 pid n
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill "-$sig" "$pid" 2>/dev/null
        n=300
        while kill -0 "$pid" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
        if kill -0 "$pid" 2>/dev/null; then
            _srv_log "$1 (pid $pid) ignored SIG$sig, killing it"
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    fi
    rm -f "$file"
}

# ---------------------------------------------------------------- PostgreSQL
# Start postgres on port PORT over the existing data dir; 2 = it died.
_srv_launch_pg () {
    local port=$1 bin user dir=$DBT_SRV_ROOT/pg pid
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    user=$(_srv_account postgres)
    _srv_exec_as "$user" "$bin/postgres" -D "$dir/data" -p "$port" -k "$dir" \
        -c listen_addresses="${DBT_PG_LISTEN:-127.0.0.1}" -c fsync=off -c synchronous_commit=off \
        -c full_page_writes=off -c shared_buffers=64MB -c max_connections=50 \
        >>"$dir/server.log" 2>&1 &
    pid=$!
    _srv_record pg "$pid"
    _srv_wait postgres "$pid" "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1
}

# Stop PostgreSQL (fast shutdown) and start it again on the same port.
restart_pg () {
    _srv_stop pg INT
    _srv_launch_pg "$PG_PORT"
}

start_pg () {
    _srv_root || return 1
    local bin user dir port pid try rc
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -z "$bin" ] || [ ! -x "$bin/postgres" ]; then
        _srv_log "postgresql is not installed (apt-get install postgresql)"
        return 1
    fi
    user=$(_srv_account postgres)
    dir=$DBT_SRV_ROOT/pg
    _srv_mkdir_for "$user" "$dir" || return 1
    if ! _srv_run_as "$user" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
            --no-locale --no-sync >"$dir/initdb.log" 2>&1; then
        _srv_log "initdb failed:"; tail -20 "$dir/initdb.log" >&2
        return 1
    fi
    #  DBT_PG_LISTEN: more addresses to listen on (the LAN test's bridge),
    #  with trust for them as for loopback.
    [ -n "${DBT_PG_LISTEN:-}" ] && echo "host all all 0.0.0.0/0 trust" >> "$dir/data/pg_hba.conf"
    for try in 1 2 3; do
        port=$(_srv_free_port) || return 1
        rc=0
        _srv_launch_pg "$port" || rc=$?
        [ $rc = 2 ] && continue     # died, most likely the port was taken meanwhile
        if [ $rc != 0 ]; then tail -20 "$dir/server.log" >&2; return 1; fi
        if ! "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres testdb; then
            _srv_log "createdb failed"
            return 1
        fi
        PG_DSN="host=127.0.0.1 port=$port user=postgres dbname=testdb"
        PG_PORT=$port
        export PG_DSN PG_PORT
        return 0
    done
    _srv_log "postgres did not start:"; tail -20 "$dir/server.log" >&2
    return 1
}

# ---------------------------------------------------------------- MariaDB
# Start mariadbd on port PORT over the existing data dir; 2 = it died.
_srv_launch_mariadb () {
    local port=$1 mariadbd user dir=$DBT_SRV_ROOT/mariadb pid
    mariadbd=$(command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd)
    user=$(_srv_account mysql)
    # Its own tmpdir: the caller's TMPDIR may not be writable by mysql.
    _srv_exec_as "$user" "$mariadbd" --no-defaults --datadir="$dir/data" \
        --socket="$dir/mysqld.sock" --port="$port" --bind-address=127.0.0.1 \
        --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" --skip-name-resolve \
        --skip-log-bin --performance-schema=OFF --innodb-flush-log-at-trx-commit=0 \
        --local-infile="${MDB_LOCAL_INFILE:-1}" --tmpdir="$dir" --innodb-log-file-size=8M \
        --innodb-buffer-pool-size=32M >>"$dir/stdout.log" 2>&1 &
    pid=$!
    _srv_record mariadb "$pid"
    _srv_wait mariadbd "$pid" mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -uroot ping
}

# Stop MariaDB and start it again on the same port.
restart_mariadb () {
    _srv_stop mariadb TERM
    _srv_launch_mariadb "$MDB_PORT"
}

start_mariadb () {
    _srv_root || return 1
    local mariadbd user dir port pid try rc inno
    MDB_LOCAL_INFILE=1
    case "${1:-}" in
        --local-infile=0|--local-infile=1) MDB_LOCAL_INFILE=${1#--local-infile=} ;;
        "") ;;
        *) _srv_log "start_mariadb: unknown option '$1'"; return 1 ;;
    esac
    mariadbd=$(command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd)
    if [ ! -x "$mariadbd" ] || ! command -v mariadb-install-db >/dev/null; then
        _srv_log "mariadb is not installed (apt-get install mariadb-server)"
        return 1
    fi
    user=$(_srv_account mysql)
    dir=$DBT_SRV_ROOT/mariadb
    _srv_mkdir_for "$user" "$dir" || return 1
    # --no-defaults must come first, or /etc/mysql/*.cnf is read.
    inno="--innodb-log-file-size=8M --innodb-buffer-pool-size=32M"
    # shellcheck disable=SC2086
    if ! _srv_run_as "$user" mariadb-install-db --no-defaults --datadir="$dir/data" \
            --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
            $inno >"$dir/install.log" 2>&1; then
        _srv_log "mariadb-install-db failed:"; tail -20 "$dir/install.log" >&2
        return 1
    fi
    for try in 1 2 3; do
        port=$(_srv_free_port) || return 1
        rc=0
        _srv_launch_mariadb "$port" || rc=$?
        [ $rc = 2 ] && continue
        if [ $rc != 0 ]; then tail -20 "$dir/error.log" >&2; return 1; fi
        if ! mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot -e "
                CREATE DATABASE testdb;
                CREATE USER 'test'@'127.0.0.1' IDENTIFIED BY 'testpw';
                CREATE USER 'test'@'localhost' IDENTIFIED BY 'testpw';
                GRANT ALL ON testdb.* TO 'test'@'127.0.0.1';
                GRANT ALL ON testdb.* TO 'test'@'localhost';"; then
            _srv_log "cannot create the mariadb test user"
            return 1
        fi
        MDB_PORT=$port
        MDB_SOCK=$dir/mysqld.sock
        export MDB_PORT MDB_SOCK
        return 0
    done
    _srv_log "mariadbd did not start:"; tail -20 "$dir/error.log" >&2
    return 1
}

# ---------------------------------------------------------------- ClickHouse
_srv_ch_ping () { [ "$(curl -sS -m 2 "$1ping" 2>/dev/null)" = "Ok." ]; }

start_clickhouse () {
    _srv_root || return 1
    local user dir http tcp pid try rc
    if [ ! -x /usr/sbin/clickhouse-server ] || ! command -v curl >/dev/null; then
        _srv_log "clickhouse is not installed (apt-get install clickhouse-server curl)"
        return 1
    fi
    user=$(_srv_account clickhouse)
    dir=$DBT_SRV_ROOT/clickhouse
    mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/log" || return 1
    cat >"$dir/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
            <log_queries>1</log_queries>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
EOF
    for try in 1 2 3; do
        http=$(_srv_free_port) || return 1
        tcp=$(_srv_free_port) || return 1
        [ "$http" = "$tcp" ] && continue
        # No interserver_http_port: only the two ports above are opened.
        cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>10M</size><count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$http</http_port>
    <tcp_port>$tcp</tcp_port>
    <max_connections>256</max_connections>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>67108864</mark_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
EOF
        if [ "$(id -u)" = 0 ]; then chown -R "$user:$(id -g "$user")" "$dir"; fi
        ( cd "$dir" && _srv_exec_as "$user" /usr/sbin/clickhouse-server \
            --config-file="$dir/config.xml" ) >"$dir/stdout.log" 2>&1 &
        pid=$!
        _srv_record clickhouse "$pid"
        rc=0
        _srv_wait clickhouse "$pid" _srv_ch_ping "http://127.0.0.1:$http/" || rc=$?
        [ $rc = 2 ] && continue
        if [ $rc != 0 ]; then tail -20 "$dir/log/clickhouse-server.err.log" >&2; return 1; fi
        CH_URL="http://127.0.0.1:$http/"
        CH_TCP_PORT=$tcp
        export CH_URL CH_TCP_PORT
        return 0
    done
    _srv_log "clickhouse-server did not start:"
    tail -20 "$dir/log/clickhouse-server.err.log" "$dir/stdout.log" >&2
    return 1
}

# ---------------------------------------------------------------- stop
stop_all () {
    [ -n "${DBT_SRV_ROOT:-}" ] && [ -d "$DBT_SRV_ROOT" ] || return 0
    _srv_stop pg INT            # SIGINT = PostgreSQL's fast shutdown
    _srv_stop mariadb TERM
    _srv_stop clickhouse TERM
    if [ -n "${DBT_TEST_KEEP:-}" ]; then
        _srv_log "kept $DBT_SRV_ROOT"
    else
        rm -rf "$DBT_SRV_ROOT"
    fi
    DBT_SRV_ROOT=
    unset PG_DSN PG_PORT MDB_PORT MDB_SOCK CH_URL CH_TCP_PORT MDB_LOCAL_INFILE
}
